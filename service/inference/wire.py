"""Triton's binary tensor data extension: the one module that knows its byte layout.

A request or response is a JSON header, then the raw little-endian bytes of each tensor whose
``parameters.binary_data_size`` is set, concatenated in the order those tensors are listed; the
``Inference-Header-Content-Length`` header gives the JSON's length when anything follows it.
"""

from dataclasses import dataclass

import orjson

from service.inference.codec import InferenceResult, output_entry, parse_request
from service.inference.errors import BadRequest
from service.inference.protocol import InferenceRequest

HEADER_LENGTH = "Inference-Header-Content-Length"


# Built for every request: a slots dataclass costs ~100 ns to build, a frozen one ~370 ns.
@dataclass(slots=True)
class InferenceBody:
    """The validated JSON envelope, and the raw bytes of each input sent as binary data."""

    request: InferenceRequest
    binary_inputs: dict[str, memoryview]


@dataclass(slots=True)
class EncodedResponse:
    """The response bytes, and the JSON header's length when binary outputs follow it."""

    body: bytes
    json_length: int | None


def parse_inference_body(body: bytes, header_length: str | None) -> InferenceBody:
    """Split, parse and validate the envelope; tensor values are left to the codec."""
    json_length = _json_length(body, header_length)
    request = parse_request(_load_json(body[:json_length]))
    binary_inputs = _binary_sections(request, memoryview(body)[json_length:])
    return InferenceBody(request=request, binary_inputs=binary_inputs)


def json_header(body: bytes, header_length: str | None) -> bytes:
    """The body's JSON: all of it, or its first ``header_length`` bytes (binary data follows)."""
    return body if header_length is None else body[: _json_length(body, header_length)]


def _json_length(body: bytes, header_length: str | None) -> int:
    return len(body) if header_length is None else _parse_header_length(header_length, body)


def encode_response(result: InferenceResult) -> EncodedResponse:
    """JSON alone, or (when any output is binary) a JSON header followed by the raw outputs."""
    entries = [output_entry(output, array) for output, array in result.outputs]
    header: dict[str, object] = {
        "model_name": result.model_name,
        "model_version": result.model_version,
    }
    if result.id is not None:
        header["id"] = result.id
    header["outputs"] = [entry for entry, _ in entries]
    json_header = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    binary_parts = [raw for _, raw in entries if raw is not None]
    if not binary_parts:
        return EncodedResponse(json_header, None)
    return EncodedResponse(b"".join([json_header, *binary_parts]), len(json_header))


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
