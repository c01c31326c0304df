"""ModelInfer messages no honest client sends, built with the service's own stubs: each gets a
clear status (never UNKNOWN or INTERNAL), and the server keeps serving."""

from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.support.grpc_servers import Served, grpc_settings, inference_stub, served
from tests.support.models import write_model

MODEL = "mnist_mlp"
IMAGE = np.arange(784, dtype=np.uint8).reshape(1, 28, 28)
INVALID = grpc.StatusCode.INVALID_ARGUMENT
TOO_LARGE = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    model_path = write_model(tmp_path_factory.mktemp("hostile-grpc"))
    with served(grpc_settings(model_path)) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server: Served) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with inference_stub(server.target) as grpc_stub:
        yield grpc_stub


def request(
    shape: list[int], datatype: str = "UINT8", raw: list[bytes] | None = None, **contents: list
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=MODEL)
    tensor = message.inputs.add(name="image", datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    message.raw_input_contents.extend(raw or [])
    return message


def raw_image(count: int = 1) -> list[bytes]:
    return [np.repeat(IMAGE, count, axis=0).tobytes()]


HOSTILE = {
    "truncated raw contents": (request([1, 28, 28], raw=[IMAGE.tobytes()[:500]]), INVALID),
    "raw contents longer than the shape": (request([1, 28, 28], raw=raw_image(2)), INVALID),
    "typed contents shorter than the shape": (
        request([1, 28, 28], uint_contents=list(range(200))),
        INVALID,
    ),
    "typed values over 255": (request([1, 28, 28], uint_contents=[256] * 784), INVALID),
    "contents in the wrong field": (
        request([1, 28, 28], fp32_contents=[0.5] * 784),
        INVALID,
    ),
    "raw and typed contents at once": (
        request([1, 28, 28], raw=raw_image(), uint_contents=[0] * 784),
        INVALID,
    ),
    "no contents at all": (request([1, 28, 28]), INVALID),
    "two raw sections for one input": (
        request([1, 28, 28], raw=[*raw_image(), b"\x00"]),
        INVALID,
    ),
    "wrong datatype": (request([1, 28, 28], "FP32", raw=[b"\x00" * 784 * 4]), INVALID),
    "unknown datatype": (request([1, 28, 28], "COMPLEX128", raw=raw_image()), INVALID),
    "huge declared batch": (request([2**62, 28, 28], raw=raw_image()), TOO_LARGE),
    "huge declared image side": (request([1, 2**40, 28], raw=raw_image()), INVALID),
    "negative batch": (request([-5, 28, 28], raw=raw_image()), INVALID),
    "zero batch": (request([0, 28, 28], raw=[b""]), INVALID),
    "rank 2": (request([28, 28], raw=raw_image()), INVALID),
    "no inputs": (pb.ModelInferRequest(model_name=MODEL), INVALID),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_message_gets_a_clear_status_and_the_server_keeps_serving(
    stub: pb_grpc.GRPCInferenceServiceStub, case: str
) -> None:
    message, code = HOSTILE[case]
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(message, timeout=10)
    assert caught.value.code() == code, caught.value.details()
    assert len(caught.value.details()) > 10
    answer = stub.ModelInfer(request([1, 28, 28], raw=raw_image()), timeout=10)
    assert answer.outputs[0].shape == [1, 10]


def test_an_unknown_input_name_and_a_duplicate_input_are_refused(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    renamed = request([1, 28, 28], raw=raw_image())
    renamed.inputs[0].name = "pixels"
    doubled = request([1, 28, 28], raw=raw_image())
    doubled.inputs.add(name="image", datatype="UINT8", shape=[1, 28, 28])
    doubled.raw_input_contents.extend(raw_image())
    for message, words in ((renamed, "unknown input 'pixels'"), (doubled, "given 2 times")):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(message, timeout=10)
        assert caught.value.code() == INVALID and words in caught.value.details()


def test_typed_contents_answer_what_raw_contents_answer(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    typed = stub.ModelInfer(request([1, 28, 28], uint_contents=IMAGE.ravel().tolist()))
    raw = stub.ModelInfer(request([1, 28, 28], raw=raw_image()))
    assert typed.raw_output_contents == raw.raw_output_contents
    assert typed.outputs[0].datatype == "FP32"


def test_bytes_that_are_not_a_message_are_an_invalid_argument(
    server: Served, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff\xff\xff\xff\x0f", timeout=10)
    assert caught.value.code() == INVALID
    assert "not a valid inference.ModelInferRequest" in caught.value.details()
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
