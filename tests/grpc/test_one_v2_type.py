"""REST and gRPC bring the same V2 request to the core: one ``InferRequest`` type, two adapters."""

import numpy as np
import orjson

from service.grpc.messages import read_infer_request
from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.tensors import infer_request_from_grpc, infer_response_to_grpc
from service.inference.binary_data import join_body
from service.inference.codec import RequestedOutput
from service.inference.model_card import TensorSpec
from service.inference.v2 import InferRequest, InferResponse

IMAGE = np.arange(784, dtype=np.uint8).reshape(1, 28, 28)
TENSOR = {"name": "image", "datatype": "UINT8", "shape": [1, 28, 28]}


def test_rest_json_rest_binary_and_grpc_raw_give_the_same_request() -> None:
    as_json = InferRequest.from_rest(
        orjson.dumps({"id": "a", "inputs": [TENSOR | {"data": IMAGE.ravel().tolist()}]}), None
    )
    header = orjson.dumps(
        {"id": "a", "inputs": [TENSOR | {"parameters": {"binary_data_size": 784}}]}
    )
    body, json_length = join_body(header, [IMAGE.tobytes()])
    as_binary = InferRequest.from_rest(body, str(json_length))
    message = pb.ModelInferRequest(id="a", raw_input_contents=[IMAGE.tobytes()])
    message.inputs.add(**TENSOR)
    as_grpc = infer_request_from_grpc(read_infer_request(message.SerializeToString()))
    for request in (as_json, as_binary, as_grpc):
        assert request.envelope.id == "a"
        assert [(t.name, t.datatype, t.shape) for t in request.envelope.inputs] == [
            ("image", "UINT8", [1, 28, 28])
        ]
    assert bytes(as_binary.raw_inputs["image"]) == bytes(as_grpc.raw_inputs["image"])
    assert as_json.envelope.inputs[0].data == IMAGE.ravel().tolist()


def test_one_response_written_for_rest_and_for_grpc() -> None:
    probabilities = np.full((1, 10), 0.1, dtype=np.float32)
    spec = TensorSpec(name="probabilities", datatype="FP32", shape=[-1, 10])
    response = InferResponse("mnist_mlp", "1", "a", [(RequestedOutput(spec, True), probabilities)])
    body, json_length = response.to_rest()
    header = orjson.loads(body[:json_length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 40}
    message = infer_response_to_grpc(response)
    assert message.raw_output_contents[0] == body[json_length:]
    assert (message.model_name, message.model_version, message.id) == ("mnist_mlp", "1", "a")
