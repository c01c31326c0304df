"""Classify MNIST digits over gRPC, from inside the image: smoke.sh feeds this file to the
image's own Python (``docker exec -i CONTAINER python - TARGET LABEL:HEX...``), whose grpcio and
service stubs are then proven too. Exits non-zero unless every digit gets its label."""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc

READY_SERVICE = "inference.GRPCInferenceService"


def main(target: str, digits: list[str]) -> int:
    labels = [int(digit.split(":")[0]) for digit in digits]
    pixels = b"".join(bytes.fromhex(digit.split(":")[1]) for digit in digits)
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=READY_SERVICE), timeout=10)
        if status.status != health_pb2.HealthCheckResponse.SERVING:
            raise SystemExit(f"grpc.health.v1 says {READY_SERVICE} is {status.status}")
        request = pb.ModelInferRequest(model_name="mnist_mlp", raw_input_contents=[pixels])
        request.inputs.add(name="image", datatype="UINT8", shape=[len(labels), 28, 28])
        answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    rows = memoryview(answer.raw_output_contents[0]).cast("f")
    predicted = [max(range(10), key=lambda k, i=i: rows[i * 10 + k]) for i in range(len(labels))]
    if predicted != labels:
        raise SystemExit(f"ModelInfer over gRPC answered {predicted}, expected {labels}")
    print(f"gRPC ModelInfer on {target}: {len(labels)} digits, all right: {predicted}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
