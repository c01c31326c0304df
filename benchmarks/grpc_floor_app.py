"""The gRPC floor: ModelInfer on grpc.aio through the generated servicer, with no checks at all.

One raw UINT8 input in (``raw_input_contents``, as tritonclient sends it), the service's
onnxruntime call, the probabilities out as raw bytes. No interceptor, admission, time bound,
validation, batching, metrics or log: this is what Python, grpc.aio and onnxruntime cost for the
job, the bound on what the service's gRPC path can add nothing to. Like the service, it runs on
uvloop when uvloop is installed. Started by benchmarks/unary.py as
``python -m benchmarks.grpc_floor_app`` with the model path in ``BENCH_MODEL_PATH`` and the port
in ``BENCH_PORT``.
"""

import asyncio
import os

import grpc
import numpy as np
import onnxruntime

from benchmarks.servers import HOST, service_session_options
from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc


class FloorServicer(pb_grpc.GRPCInferenceServiceServicer):
    """ModelInfer alone; every other method answers UNIMPLEMENTED (the generated default)."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session

    async def ModelInfer(self, request, context) -> pb.ModelInferResponse:
        tensor = request.inputs[0]
        image = np.frombuffer(request.raw_input_contents[0], np.uint8).reshape(tensor.shape)
        probabilities = self.session.run(["probabilities"], {"image": image})[0]
        response = pb.ModelInferResponse(
            model_name=request.model_name, raw_output_contents=[probabilities.tobytes()]
        )
        response.outputs.add(name="probabilities", datatype="FP32", shape=probabilities.shape)
        return response


async def serve(model_path: str, port: int) -> None:
    session = onnxruntime.InferenceSession(
        model_path, sess_options=service_session_options(), providers=["CPUExecutionProvider"]
    )
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(FloorServicer(session), server)
    server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    await server.wait_for_termination()


def _loop_factory():
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(os.environ["BENCH_MODEL_PATH"], int(os.environ["BENCH_PORT"])))
