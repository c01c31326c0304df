"""The servicer works on a plain grpc.aio server, with no interceptor: it reads ModelInfer with
its own reader, checks keys and answers refusals itself; the interceptor only observes."""

from pathlib import Path

import grpc
import numpy as np
import pytest

from service.grpc.observer import CallObserver
from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from service.grpc.servicer import InferenceServicer
from service.inference.dataplane import DataPlane
from service.inference.metrics import Metrics
from service.inference.repository import open_repository
from service.settings import Settings
from tests.support.event_loop import run_on_own_thread

IMAGE = np.arange(784, dtype=np.uint8).reshape(1, 28, 28)


def infer_request(model: str = "mnist_mlp") -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model)
    message.inputs.add(name="image", datatype="UINT8", shape=[1, 28, 28])
    message.raw_input_contents.append(IMAGE.tobytes())
    return message


async def calls_to_a_bare_server(settings: Settings, metadata: tuple = ()) -> list:
    """ModelInfer, an unknown model and undecodable bytes; each answer, or its status code."""
    dataplane = DataPlane(settings)
    dataplane.serve_repository(open_repository(settings))
    server = grpc.aio.server()
    InferenceServicer(dataplane).add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    answers: list = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            raw = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
            calls = [
                lambda: stub.ModelInfer(infer_request(), metadata=metadata),
                lambda: stub.ModelInfer(infer_request("other"), metadata=metadata),
                lambda: raw(b"\xff\xff\xff\xff\x0f", metadata=metadata),
                lambda: stub.ServerLive(pb.ServerLiveRequest()),
            ]
            for call in calls:
                try:
                    answers.append(await call())
                except grpc.aio.AioRpcError as error:
                    answers.append((error.code(), error.details()))
    finally:
        await server.stop(None)
    return answers


def test_the_servicer_answers_without_the_interceptor(tiny_model_path: Path) -> None:
    settings = Settings(model_path=tiny_model_path, access_log=False)
    answer, unknown, undecodable, live = run_on_own_thread(calls_to_a_bare_server(settings))
    assert answer.outputs[0].name == "probabilities"
    assert np.frombuffer(answer.raw_output_contents[0], "<f4").shape == (10,)
    assert unknown[0] == grpc.StatusCode.NOT_FOUND
    assert undecodable[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid inference.ModelInferRequest" in undecodable[1]
    assert live.live


@pytest.mark.parametrize("key", [None, "secret"])
def test_the_servicer_checks_keys_without_the_interceptor(tiny_model_path: Path, key) -> None:
    settings = Settings(model_path=tiny_model_path, access_log=False, api_keys=["secret"])
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    answer, *_, live = run_on_own_thread(calls_to_a_bare_server(settings, metadata))
    if key is None:
        assert answer[0] == grpc.StatusCode.UNAUTHENTICATED
    else:
        assert answer.outputs[0].name == "probabilities"
    assert live.live  # health stays open


def test_the_interceptor_wraps_each_method_once() -> None:
    observer = CallObserver(Metrics(), access_log=False)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: None)

    async def continuation(details):
        return handler

    class Details:
        method = "/inference.GRPCInferenceService/ServerLive"

    async def twice():
        return [await observer.intercept_service(continuation, Details()) for _ in range(2)]

    first, second = run_on_own_thread(twice())
    assert first is second
    assert first is not handler
