"""The gRPC clients of ``benchmarks/bulk.py``: ModelInfer built with the service's stubs and
through tritonclient.grpc, each on one channel kept for the whole run, as a client keeps one.

A channel is opened once because a fresh one pays for itself on its first large call (connect,
HTTP/2 settings, flow-control windows growing: ~1-2 ms more for a 3.2 MB message), which is not
what a batch costs a client that keeps its connection, as every pass's HTTP connection is kept.
"""

import time
from collections.abc import Callable
from contextlib import ExitStack

import grpc
import numpy as np
import tritonclient.grpc as triton_grpc

from service.grpc.messages import read_infer_request
from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc

UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
Pass = Callable[[np.ndarray, int], tuple[float, np.ndarray]]


def grpc_passes(clients: ExitStack, target: str, model_name: str) -> list[tuple[str, Pass]]:
    """Both gRPC modes on channels that live as long as ``clients``."""
    channel = clients.enter_context(grpc.insecure_channel(target, options=UNLIMITED))
    infer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer
    triton = clients.enter_context(triton_grpc.InferenceServerClient(target))

    def stubs(images: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
        return grpc_pass(infer, model_name, images, batch)

    def tritonclient(images: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
        return tritonclient_grpc_pass(triton, model_name, images, batch)

    return [("gRPC raw", stubs), ("gRPC tritonclient", tritonclient)]


def grpc_pass(infer: grpc.UnaryUnaryMultiCallable, model_name: str, images: np.ndarray, batch: int):
    """ModelInfer with raw contents, messages built with the service's stubs."""
    digits = []
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        message = pb.ModelInferRequest(model_name=model_name, raw_input_contents=[chunk.tobytes()])
        message.inputs.add(name="image", datatype="UINT8", shape=chunk.shape)
        answer = infer(message, timeout=120)
        probabilities = np.frombuffer(answer.raw_output_contents[0], dtype=np.float32)
        digits.append(probabilities.reshape(-1, 10).argmax(axis=1))
    return time.perf_counter() - started, np.concatenate(digits)


def tritonclient_grpc_pass(
    client: triton_grpc.InferenceServerClient, model_name: str, images: np.ndarray, batch: int
):
    """The same calls through tritonclient.grpc, as its users make them."""
    digits = []
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        tensor = triton_grpc.InferInput("image", list(chunk.shape), "UINT8")
        tensor.set_data_from_numpy(chunk)
        answer = client.infer(model_name, [tensor], client_timeout=120)
        digits.append(answer.as_numpy("probabilities").argmax(axis=1))
    return time.perf_counter() - started, np.concatenate(digits)


def read_microseconds(images: np.ndarray, batch: int, repeats: int = 50) -> tuple[float, float]:
    """Median µs to read one ModelInferRequest of ``batch`` images and reach its raw contents:
    protobuf's generated parser (what a stock gRPC servicer gets), then the service's reader."""
    message = pb.ModelInferRequest(raw_input_contents=[images[:batch].tobytes()])
    message.inputs.add(name="image", datatype="UINT8", shape=images[:batch].shape)
    data = message.SerializeToString()
    readers = (
        lambda: pb.ModelInferRequest.FromString(data).raw_input_contents[0],
        lambda: read_infer_request(data).raw_input_contents[0],
    )
    medians = []
    for read in readers:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            read()
            times.append(time.perf_counter() - started)
        medians.append(1e6 * float(np.median(times)))
    return medians[0], medians[1]
