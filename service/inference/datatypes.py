"""The Open Inference Protocol's tensor datatypes, and what each is called where the service
meets it: onnxruntime's type of a graph's tensor, Triton's model configuration
(``model_config.proto``'s ``DataType``) and gRPC's typed contents (``InferTensorContents``,
whose comments in ``grpc_service.proto`` say which field holds which datatype; FP16 and BF16
have none and travel only as raw bytes). One table, so that the three never disagree."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Datatype:
    """One V2 datatype (``name``) under its other names."""

    name: str
    onnx_type: str
    triton_type: str
    contents_field: str | None


DATATYPES = (
    Datatype("BOOL", "tensor(bool)", "TYPE_BOOL", "bool_contents"),
    Datatype("UINT8", "tensor(uint8)", "TYPE_UINT8", "uint_contents"),
    Datatype("UINT16", "tensor(uint16)", "TYPE_UINT16", "uint_contents"),
    Datatype("UINT32", "tensor(uint32)", "TYPE_UINT32", "uint_contents"),
    Datatype("UINT64", "tensor(uint64)", "TYPE_UINT64", "uint64_contents"),
    Datatype("INT8", "tensor(int8)", "TYPE_INT8", "int_contents"),
    Datatype("INT16", "tensor(int16)", "TYPE_INT16", "int_contents"),
    Datatype("INT32", "tensor(int32)", "TYPE_INT32", "int_contents"),
    Datatype("INT64", "tensor(int64)", "TYPE_INT64", "int64_contents"),
    Datatype("FP16", "tensor(float16)", "TYPE_FP16", None),
    Datatype("FP32", "tensor(float)", "TYPE_FP32", "fp32_contents"),
    Datatype("FP64", "tensor(double)", "TYPE_FP64", "fp64_contents"),
    Datatype("BF16", "tensor(bfloat16)", "TYPE_BF16", None),
    Datatype("BYTES", "tensor(string)", "TYPE_STRING", "bytes_contents"),
)
BY_NAME = {datatype.name: datatype for datatype in DATATYPES}
BY_ONNX_TYPE = {datatype.onnx_type: datatype for datatype in DATATYPES}


def v2_name_of_onnx_type(onnx_type: str) -> str:
    """The V2 name of an onnxruntime tensor type; a type the protocol lacks keeps its own name
    (``tensor(complex64)``), which no card declares, so that the signature check names it."""
    datatype = BY_ONNX_TYPE.get(onnx_type)
    return onnx_type if datatype is None else datatype.name


def triton_type(name: str) -> str:
    """Triton's ``DataType`` of a V2 datatype; ``TYPE_INVALID`` for a name it does not know."""
    datatype = BY_NAME.get(name)
    return "TYPE_INVALID" if datatype is None else datatype.triton_type


def contents_field(name: str) -> str | None:
    """The ``InferTensorContents`` field of a V2 datatype; None where it has none."""
    datatype = BY_NAME.get(name)
    return None if datatype is None else datatype.contents_field
