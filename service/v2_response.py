"""Which outputs a V2 request asked for, and the response carrying them: JSON or binary."""

from dataclasses import dataclass

import numpy as np
import orjson
from fastapi import Response

from service.errors import BadRequest
from service.model_card import ModelCard, TensorSpec
from service.v2_body import HEADER_LENGTH
from service.v2_schemas import InferenceRequest


@dataclass(frozen=True)
class RequestedOutput:
    """An output to return, and whether as raw bytes after the JSON header."""

    spec: TensorSpec
    binary: bool


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


def encode_response(
    card: ModelCard, request_id: str | None, results: list[tuple[RequestedOutput, np.ndarray]]
) -> Response:
    """JSON alone, or (when any output is binary) a JSON header followed by the raw outputs."""
    entries = [_output_entry(output, array) for output, array in results]
    header: dict[str, object] = {"model_name": card.name, "model_version": card.version}
    if request_id is not None:
        header["id"] = request_id
    header["outputs"] = [entry for entry, _ in entries]
    json_header = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    binary_parts = [raw for _, raw in entries if raw is not None]
    if not binary_parts:
        return Response(json_header, media_type="application/json")
    return Response(
        b"".join([json_header, *binary_parts]),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(json_header))},
    )


def _output_entry(output: RequestedOutput, array: np.ndarray) -> tuple[dict, bytes | None]:
    """orjson writes numpy arrays itself, far faster than going through Python floats."""
    entry: dict[str, object] = {
        "name": output.spec.name,
        "datatype": output.spec.datatype,
        "shape": list(array.shape),
    }
    if not output.binary:
        entry["data"] = np.ascontiguousarray(array).reshape(-1)
        return entry, None
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    entry["parameters"] = {"binary_data_size": len(raw)}
    return entry, raw
