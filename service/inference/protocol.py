"""Open Inference Protocol (KServe V2) bodies, as pydantic models so /docs shows each of them."""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    WithJsonSchema,
)

from service.inference.model_card import TensorSpec

# Tensor data is checked by numpy, not pydantic: validating millions of list elements one by one
# would cost more than the inference.
TENSOR_DATA_SCHEMA = {
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 255},
            {"type": "array", "items": {}},
        ]
    },
    "description": "Row-major values, flat or nested following `shape`; omitted when the tensor "
    "is sent as binary data (`parameters.binary_data_size`).",
}
TensorData = Annotated[SkipValidation[list[Any] | None], WithJsonSchema(TENSOR_DATA_SCHEMA)]


def _whole_floats_to_int(shape: Any) -> Any:
    """orjson reads integers beyond 64 bits as floats: keep them integers, so the size limits
    (413) rather than a parse error answer an enormous shape."""
    if not isinstance(shape, list):
        return shape
    return [int(size) if isinstance(size, float) and size.is_integer() else size for size in shape]


Shape = Annotated[list[int], BeforeValidator(_whole_floats_to_int)]


class ServerMetadata(BaseModel):
    name: str = Field(examples=["mnist-mlp"])
    version: str = Field(examples=["1.0.0"])
    extensions: list[str] = Field(
        description="Protocol extensions served.", examples=[["binary_tensor_data"]]
    )


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ModelReadyResponse(BaseModel):
    name: str
    version: str
    ready: bool


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str = Field(examples=["onnx_onnxv1"])
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class InputParameters(BaseModel):
    """Per-input parameters; ``binary_data_size`` moves the data after the JSON header."""

    model_config = ConfigDict(extra="allow")

    binary_data_size: int | None = Field(
        None, ge=0, description="Bytes of this input's raw little-endian data after the header."
    )


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    binary_data: bool | None = Field(
        None, description="Return this output as raw bytes after the JSON header."
    )


class RequestParameters(BaseModel):
    """Request parameters; unknown ones (priority, timeout, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    binary_data_output: bool = Field(
        False, description="Return every output as binary data unless the output says otherwise."
    )


class RequestInput(BaseModel):
    name: str = Field(examples=["image"])
    shape: Shape = Field(examples=[[1, 28, 28]])
    datatype: str = Field(examples=["UINT8"])
    parameters: InputParameters = Field(default_factory=InputParameters)
    data: TensorData = None


class RequestOutput(BaseModel):
    name: str = Field(examples=["probabilities"])
    parameters: OutputParameters = Field(default_factory=OutputParameters)


class InferenceRequest(BaseModel):
    id: str | None = Field(None, description="Echoed in the response.")
    parameters: RequestParameters = Field(default_factory=RequestParameters)
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(
        None, description="Outputs to return; all of the model's when omitted."
    )


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size` when the data follows the JSON header."
    )
    data: list[float] | None = Field(None, description="Flat row-major values, unless binary.")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` substituted, for use inside ``openapi_extra``."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return substitute(definitions[reference.removeprefix("#/$defs/")])
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(item) for item in node]
        return node

    return substitute(schema)
