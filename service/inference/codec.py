"""The V2 tensor codec: input tensors to numpy, the outputs asked for, output bytes.

Only UINT8 inputs are decoded, which is all the served signature takes. JSON values go through
``bytes(list)``: one C loop that both converts and refuses anything but integers 0-255, several
times faster than ``np.array`` on a list of Python ints.
"""

import math
from dataclasses import dataclass
from itertools import chain

import numpy as np

from service.inference.errors import BadRequest, PayloadTooLarge
from service.inference.model_card import ModelCard, TensorSpec
from service.inference.protocol import InferenceRequest, RequestInput

SUPPORTED_DATATYPES = {"UINT8": np.dtype(np.uint8)}


# Built for every request: slots dataclasses are the cheapest to build.
@dataclass(slots=True)
class RequestedOutput:
    """An output to return, and whether as raw bytes after the JSON header."""

    spec: TensorSpec
    binary: bool


def decode_input(
    tensor: RequestInput, spec: TensorSpec, binary: memoryview | None, max_batch_size: int
) -> np.ndarray:
    """The input as an array of ``spec``'s datatype and ``tensor``'s shape, or a 4xx error."""
    if spec.datatype not in SUPPORTED_DATATYPES:
        raise ValueError(f"cannot decode {spec.datatype} tensors; only {list(SUPPORTED_DATATYPES)}")
    if tensor.datatype != spec.datatype:
        raise BadRequest(
            f"input {tensor.name!r} has datatype {tensor.datatype!r}; the model takes "
            f"{spec.datatype}",
            "wrong_datatype",
        )
    check_shape(tensor, spec, max_batch_size)
    if binary is not None:
        if tensor.data is not None:
            raise BadRequest(
                f"input {tensor.name!r} has both 'data' and binary_data_size: send one of them",
                "bad_tensor_data",
            )
        flat = _from_binary(tensor, binary)
    else:
        flat = _from_json(tensor)
    return flat.reshape(tensor.shape)


def check_shape(tensor: RequestInput, spec: TensorSpec, max_batch_size: int) -> None:
    """Fixed dimensions must match the card's; the batch dimension (-1) must fit the limit."""
    if len(tensor.shape) != len(spec.shape) or any(
        declared not in (-1, size) for size, declared in zip(tensor.shape, spec.shape, strict=True)
    ):
        expected = ", ".join("N" if size == -1 else str(size) for size in spec.shape)
        raise BadRequest(
            f"input {tensor.name!r} has shape {tensor.shape}; the model takes [{expected}]",
            "wrong_shape",
        )
    for size, declared in zip(tensor.shape, spec.shape, strict=True):
        if declared == -1:
            _check_batch(tensor, size, max_batch_size)


def _check_batch(tensor: RequestInput, size: int, max_batch_size: int) -> None:
    if size < 1:
        raise BadRequest(
            f"input {tensor.name!r} has shape {tensor.shape}: N must be at least 1", "wrong_shape"
        )
    if size > max_batch_size:
        raise PayloadTooLarge(
            f"input {tensor.name!r} has {size} images; at most {max_batch_size} are allowed per "
            "request",
            "too_many_images",
        )


def _from_binary(tensor: RequestInput, binary: memoryview) -> np.ndarray:
    dtype = SUPPORTED_DATATYPES[tensor.datatype]
    expected = math.prod(tensor.shape) * dtype.itemsize
    if len(binary) != expected:
        raise BadRequest(
            f"input {tensor.name!r} has binary_data_size {len(binary)} but shape {tensor.shape} "
            f"{tensor.datatype} needs {expected} bytes",
            "bad_binary_size",
        )
    return np.frombuffer(binary, dtype=dtype.newbyteorder("<"))


def _from_json(tensor: RequestInput) -> np.ndarray:
    data = tensor.data
    if data is None:
        raise BadRequest(
            f"input {tensor.name!r} has no data: give 'data', or binary_data_size with the bytes "
            "after the JSON header",
            "bad_tensor_data",
        )
    if not isinstance(data, list):
        raise BadRequest(f"input {tensor.name!r}: 'data' must be a list", "bad_tensor_data")
    values = _flatten(tensor, data) if data and isinstance(data[0], list) else data
    expected = math.prod(tensor.shape)
    if len(values) != expected:
        raise BadRequest(
            f"input {tensor.name!r} has {len(values)} values but shape {tensor.shape} needs "
            f"{expected}",
            "wrong_data_length",
        )
    try:
        return np.frombuffer(bytes(values), dtype=np.uint8)
    except ValueError:
        raise BadRequest(
            f"input {tensor.name!r}: {tensor.datatype} values must be from 0 to 255",
            "values_out_of_range",
        ) from None
    except TypeError as error:
        raise BadRequest(
            f"input {tensor.name!r}: {tensor.datatype} values must be integers ({error})",
            "non_integer_values",
        ) from None


def _flatten(tensor: RequestInput, data: list) -> list:
    """Nested data must follow the shape exactly: its depth and every list's length."""
    rows = [data]
    for depth, size in enumerate(tensor.shape):
        if any(not isinstance(row, list) or len(row) != size for row in rows):
            raise BadRequest(
                f"input {tensor.name!r}: nested data must follow shape {tensor.shape}, with lists "
                f"of {size} at nesting level {depth + 1}; or send the values flat",
                "wrong_nesting",
            )
        rows = list(chain.from_iterable(rows))
    if rows and isinstance(rows[0], list):
        raise BadRequest(
            f"input {tensor.name!r}: nested data is deeper than shape {tensor.shape}",
            "wrong_nesting",
        )
    return rows


def requested_outputs(request: InferenceRequest, card: ModelCard) -> list[RequestedOutput]:
    """The outputs asked for, in the order asked; every output of the card when none are."""
    default_binary = request.parameters.binary_data_output
    if request.outputs is None:
        return [RequestedOutput(spec, default_binary) for spec in card.outputs]
    available = {spec.name: spec for spec in card.outputs}
    selected: dict[str, RequestedOutput] = {}
    for output in request.outputs:
        if output.name not in available:
            raise BadRequest(
                f"unknown output {output.name!r}; model {card.name!r} gives: "
                f"{', '.join(available)}",
                "unknown_output",
            )
        if output.name in selected:
            raise BadRequest(f"output {output.name!r} is requested twice", "duplicate_output")
        binary = output.parameters.binary_data
        selected[output.name] = RequestedOutput(
            available[output.name], default_binary if binary is None else binary
        )
    return list(selected.values())


def little_endian_bytes(array: np.ndarray) -> bytes:
    """An output's raw bytes, as both transports send them: row-major, little-endian."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
