"""ModelInferRequest off the wire with its raw contents left where they arrived.

protobuf (upb) copies a bytes field when it parses a message, copies the whole message again
for ``ByteSize`` and copies the field once more each time it is read: a large batch was copied
three times before the model saw it (``python -m benchmarks.grpc_bulk`` measures it). Here the
top-level fields are walked once: each ``raw_input_contents``
entry becomes a view of the received bytes, and every other field goes through protobuf as
usual, so what is validated is exactly what was sent.
"""

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from service.grpc.proto import grpc_service_pb2 as pb

RAW_INPUT_CONTENTS = pb.ModelInferRequest.DESCRIPTOR.fields_by_name["raw_input_contents"].number
# Protobuf wire types, and the bytes a fixed-size one takes.
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
FIXED_SIZES = {FIXED64: 8, FIXED32: 4}
CORRUPT = (
    f"Error parsing message with type '{pb.ModelInferRequest.DESCRIPTOR.full_name}': "
    "Wire format was corrupt"
)


# Built for every request: slots dataclasses are the cheapest to build.
@dataclass(slots=True)
class ReceivedModelInfer:
    """A received ModelInferRequest: ``message`` holds every field but the raw contents, which
    are views of the received bytes, in the order sent; ``size`` is the message's length."""

    message: pb.ModelInferRequest
    raw_input_contents: list[memoryview]
    size: int


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it."""
    value = shift = 0
    while shift < 64:
        if position >= len(data):
            raise DecodeError(CORRUPT)
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
    raise DecodeError(CORRUPT)


def _field_end(data: bytes, wire_type: int, position: int) -> tuple[int, int] | None:
    """Where a field's value starts (after any length) and ends; None for a group."""
    if wire_type == VARINT:
        return position, _varint(data, position)[1]
    if wire_type == LENGTH_DELIMITED:
        length, start = _varint(data, position)
        return start, start + length
    if wire_type in FIXED_SIZES:
        return position, position + FIXED_SIZES[wire_type]
    return None


def read_infer_request(data: bytes) -> ReceivedModelInfer:
    """The request deserializer for ModelInfer; ``DecodeError`` where protobuf's raises."""
    view = memoryview(data)
    others: list[memoryview] = []
    raw: list[memoryview] = []
    position = 0
    size = len(data)
    while position < size:
        tag = data[position]
        if tag < 0x80 and tag & 7 == LENGTH_DELIMITED and position + 1 < size:
            # The common field, inline: a one-byte tag and a one-byte length.
            length = data[position + 1]
            start, end = position + 2, position + 2 + length
            if length >= 0x80:
                length, start = _varint(data, position + 1)
                end = start + length
        else:
            tag, value_start = _varint(data, position)
            span = _field_end(data, tag & 7, value_start)
            if span is None:
                return _parsed_by_protobuf(data)
            start, end = span
        if end > size:
            raise DecodeError(CORRUPT)
        if tag >> 3 == RAW_INPUT_CONTENTS and tag & 7 == LENGTH_DELIMITED:
            raw.append(view[start:end])
        else:
            others.append(view[position:end])
        position = end
    message = pb.ModelInferRequest.FromString(b"".join(others))
    return ReceivedModelInfer(message=message, raw_input_contents=raw, size=len(data))


def _parsed_by_protobuf(data: bytes) -> ReceivedModelInfer:
    """Groups (which proto3 has none of, yet protobuf skips as unknown fields) and invalid wire
    types are left to protobuf, copies and all, so that both accept and refuse the same bytes."""
    message = pb.ModelInferRequest.FromString(data)
    raw = [memoryview(contents) for contents in message.raw_input_contents]
    del message.raw_input_contents[:]
    return ReceivedModelInfer(message=message, raw_input_contents=raw, size=len(data))
