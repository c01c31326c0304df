"""An inference request body as it arrives: JSON, or a JSON header then raw tensor bytes.

Triton's binary tensor data extension: the ``Inference-Header-Content-Length`` header gives the
length of the JSON part; the bytes after it are the inputs with ``parameters.binary_data_size``,
concatenated in the order those inputs are listed.
"""

import zlib
from dataclasses import dataclass

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from service.v2_schemas import InferenceRequest

HEADER_LENGTH = "Inference-Header-Content-Length"
# zlib window bits per Content-Encoding, the two tritonclient can compress requests with.
CONTENT_ENCODING_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
UNSERVED_PARAMETERS = {
    "classification": "the classification extension is not served; request 'probabilities' "
    "and take the most probable class",
    "shared_memory_region": "shared memory is not served; send the tensor as JSON or binary data",
}


@dataclass(frozen=True)
class InferenceBody:
    """The validated JSON envelope, and the raw bytes of each input sent as binary data."""

    request: InferenceRequest
    binary_inputs: dict[str, memoryview]


def parse_inference_body(body: bytes, header_length: str | None) -> InferenceBody:
    """Split, parse and validate the envelope; tensor values are left to ``v2_tensors``."""
    json_length = len(body) if header_length is None else _parse_header_length(header_length, body)
    request = _validate(_load_json(body[:json_length]))
    binary_inputs = _binary_sections(request, memoryview(body)[json_length:])
    return InferenceBody(request=request, binary_inputs=binary_inputs)


def decode_content(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo a gzip or deflate Content-Encoding, never inflating past ``max_bytes`` (zip bombs)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in CONTENT_ENCODING_WBITS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity",
            "unsupported_content_encoding",
        )
    decompressor = zlib.decompressobj(CONTENT_ENCODING_WBITS[encoding])
    try:
        decoded = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise BadRequest(
            f"the body is not valid {encoding} data: {error}", "bad_encoding"
        ) from None
    if len(decoded) > max_bytes:
        raise PayloadTooLarge(
            f"the {encoding} body inflates beyond {max_bytes} bytes, the request limit",
            "body_too_large",
        )
    if not decompressor.eof:
        raise BadRequest(f"the {encoding} body is truncated", "bad_encoding")
    return decoded


def _parse_header_length(value: str, body: bytes) -> int:
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise BadRequest(
            f"{HEADER_LENGTH} must be the JSON header's length in bytes, got {value[:40]!r}",
            "bad_binary_header",
        )
    if length > len(body):
        raise BadRequest(
            f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes",
            "bad_binary_header",
        )
    return length


def _load_json(header: bytes) -> object:
    if not header:
        raise BadRequest("the body is empty: send a JSON inference request", "bad_json")
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the inference request is not valid JSON: {error}", "bad_json") from None


def _validate(document: object) -> InferenceRequest:
    """Refusals render like every other validation error (one handler, one message shape)."""
    if not isinstance(document, dict):
        raise BadRequest("the inference request must be a JSON object with 'inputs'", "bad_json")
    try:
        request = InferenceRequest.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_input=False)) from None
    _refuse_unserved_extensions(request)
    return request


def _refuse_unserved_extensions(request: InferenceRequest) -> None:
    """Ignoring these parameters would answer something other than what was asked."""
    owners: list[tuple[str, BaseModel]] = [
        (f"input {tensor.name!r}", tensor.parameters) for tensor in request.inputs
    ]
    owners += [(f"output {output.name!r}", output.parameters) for output in request.outputs or []]
    for owner, parameters in owners:
        unserved = sorted((parameters.model_extra or {}).keys() & UNSERVED_PARAMETERS.keys())
        if unserved:
            raise BadRequest(f"{owner}: {UNSERVED_PARAMETERS[unserved[0]]}", "unserved_extension")


def _binary_sections(request: InferenceRequest, binary: memoryview) -> dict[str, memoryview]:
    """Cut the bytes after the header into the inputs that declare ``binary_data_size``."""
    sections: dict[str, memoryview] = {}
    offset = 0
    for tensor in request.inputs:
        size = tensor.parameters.binary_data_size
        if size is None:
            continue
        if offset + size > len(binary):
            raise BadRequest(
                f"input {tensor.name!r} declares binary_data_size {size} but only "
                f"{len(binary) - offset} bytes follow the JSON header for it "
                f"(is {HEADER_LENGTH} set?)",
                "bad_binary_size",
            )
        sections[tensor.name] = binary[offset : offset + size]
        offset += size
    if offset != len(binary):
        raise BadRequest(
            f"{len(binary)} bytes follow the JSON header but the inputs' binary_data_size add up "
            f"to {offset}",
            "bad_binary_size",
        )
    return sections
