"""The committed stubs are the vendored protos', those protos are the ones README.md names, and
the stubs share a process with tritonclient.grpc (whose Triton proto defines the same names)."""

import hashlib
import re
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from service.grpc.proto import grpc_service_pb2, model_config_pb2

PROTO_DIR = Path(pb.__file__).resolve().parent
PROTO = PROTO_DIR / "grpc_predict_v2.proto"


@pytest.mark.parametrize("stub", [pb, grpc_service_pb2, model_config_pb2])
def test_the_stubs_describe_exactly_the_vendored_proto(stub: ModuleType, tmp_path: Path) -> None:
    descriptor_set = tmp_path / "descriptors.pb"
    proto = PROTO_DIR / stub.DESCRIPTOR.name
    arguments = ["protoc", f"-I{PROTO_DIR}", f"--descriptor_set_out={descriptor_set}", str(proto)]
    assert protoc.main(arguments) == 0
    (compiled,) = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    committed = descriptor_pb2.FileDescriptorProto.FromString(stub.DESCRIPTOR.serialized_pb)
    assert committed == without_json_names(compiled)


def without_json_names(
    file: descriptor_pb2.FileDescriptorProto,
) -> descriptor_pb2.FileDescriptorProto:
    """protoc's descriptor sets spell out each field's JSON name; gencode leaves it implied."""
    messages = list(file.message_type)
    while messages:
        message = messages.pop()
        for field in message.field:
            field.ClearField("json_name")
        messages.extend(message.nested_type)
    return file


def test_the_vendored_proto_is_the_published_one() -> None:
    readme = (PROTO_DIR / "README.md").read_text(encoding="utf-8")
    named = re.search(r"sha256 of the file \| `([0-9a-f]{64})`", readme)
    assert named is not None
    assert hashlib.sha256(PROTO.read_bytes()).hexdigest() == named[1]
    assert "Apache License" in (PROTO_DIR / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("proto", ["grpc_service.proto", "model_config.proto"])
def test_the_vendored_triton_protos_are_the_published_ones(proto: str) -> None:
    readme = (PROTO_DIR / "README.md").read_text(encoding="utf-8")
    named = re.search(rf"sha256 of `{re.escape(proto)}` \| `([0-9a-f]{{64}})`", readme)
    assert named is not None
    assert hashlib.sha256((PROTO_DIR / proto).read_bytes()).hexdigest() == named[1]
    licence = (PROTO_DIR / "LICENSE.triton").read_text(encoding="utf-8")
    assert "Redistribution and use in source and binary forms" in licence


def test_the_stubs_and_tritonclient_grpc_live_in_one_process() -> None:
    import tritonclient.grpc.service_pb2 as triton

    ours = pb.ModelInferRequest(model_name="mnist_mlp", raw_input_contents=[b"\x00" * 784])
    ours.inputs.add(name="image", datatype="UINT8", shape=[1, 28, 28])
    theirs = triton.ModelInferRequest.FromString(ours.SerializeToString())
    assert (theirs.model_name, list(theirs.inputs[0].shape)) == ("mnist_mlp", [1, 28, 28])
    assert pb.DESCRIPTOR.pool is pb.POOL
    assert grpc_service_pb2.DESCRIPTOR.pool is model_config_pb2.POOL is not pb.POOL
    config = triton.ModelConfigResponse.FromString(
        grpc_service_pb2.ModelConfigResponse(
            config=model_config_pb2.ModelConfig(name="mnist_mlp", max_batch_size=8)
        ).SerializeToString()
    )
    assert (config.config.name, config.config.max_batch_size) == ("mnist_mlp", 8)
    assert hasattr(pb_grpc, "add_GRPCInferenceServiceServicer_to_server")
