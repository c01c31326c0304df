"""Triton's binary tensor data extension: the one module that knows its byte layout, and only
splits and joins bytes.

A request or response is a JSON header, then the raw little-endian bytes of each tensor whose
``parameters.binary_data_size`` is set, concatenated in the order those tensors are listed; the
``Inference-Header-Content-Length`` header gives the JSON's length when anything follows it.
"""

from collections.abc import Sequence

from service.inference.errors import BadRequest

HEADER_LENGTH = "Inference-Header-Content-Length"


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header of a body, and the bytes that follow it."""
    json_length = len(body) if header_length is None else _parse_header_length(header_length, body)
    return body[:json_length], memoryview(body)[json_length:]


def cut_sections(
    binary: memoryview, sizes: Sequence[tuple[str, int | None]]
) -> dict[str, memoryview]:
    """The bytes after the header cut into the tensors that declare a size, by name."""
    sections: dict[str, memoryview] = {}
    offset = 0
    for name, size in sizes:
        if size is None:
            continue
        if offset + size > len(binary):
            raise BadRequest(
                f"input {name!r} declares binary_data_size {size} but only "
                f"{len(binary) - offset} bytes follow the JSON header for it "
                f"(is {HEADER_LENGTH} set?)",
                "bad_binary_size",
            )
        sections[name] = binary[offset : offset + size]
        offset += size
    if offset != len(binary):
        raise BadRequest(
            f"{len(binary)} bytes follow the JSON header but the inputs' binary_data_size add up "
            f"to {offset}",
            "bad_binary_size",
        )
    return sections


def join_body(json_header: bytes, sections: Sequence[bytes]) -> tuple[bytes, int | None]:
    """A body of the JSON header and the sections after it, and the header's length (None when
    nothing follows the JSON)."""
    if not sections:
        return json_header, None
    return b"".join([json_header, *sections]), len(json_header)


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
