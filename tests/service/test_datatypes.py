"""The one datatype table: every V2 datatype, each under names its tools really have."""

import pytest
from onnx import TensorProto

from service.grpc.proto import grpc_service_pb2, model_config_pb2
from service.inference.datatypes import (
    DATATYPES,
    Datatype,
    contents_field,
    triton_type,
    v2_name_of_onnx_type,
)

# The Open Inference Protocol's tensor datatypes, and Triton's BF16.
V2_DATATYPES = {
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES", "BF16",
}  # fmt: skip
CONTENTS = grpc_service_pb2.InferTensorContents.DESCRIPTOR.fields_by_name


def test_the_table_has_every_v2_datatype_once() -> None:
    names = [datatype.name for datatype in DATATYPES]
    assert sorted(names) == sorted(V2_DATATYPES)


@pytest.mark.parametrize("datatype", DATATYPES, ids=lambda datatype: datatype.name)
def test_each_name_is_one_its_tool_has(datatype: Datatype) -> None:
    onnx_name = datatype.onnx_type.removeprefix("tensor(").removesuffix(")")
    assert TensorProto.DataType.Value(onnx_name.upper()) != TensorProto.UNDEFINED
    assert model_config_pb2.DataType.Value(datatype.triton_type) != model_config_pb2.TYPE_INVALID
    if datatype.contents_field is not None:
        assert CONTENTS[datatype.contents_field].is_repeated


def test_names_the_table_lacks_are_said_as_such() -> None:
    assert v2_name_of_onnx_type("tensor(float)") == "FP32"
    assert v2_name_of_onnx_type("tensor(complex64)") == "tensor(complex64)"
    assert (triton_type("BYTES"), triton_type("COMPLEX")) == ("TYPE_STRING", "TYPE_INVALID")
    assert (contents_field("INT16"), contents_field("FP16"), contents_field("X")) == (
        "int_contents",
        None,
        None,
    )
