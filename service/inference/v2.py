"""One V2 inference request and one response, whichever transport carries them.

``InferRequest`` is what the dataplane infers from and ``InferResponse`` what it answers. REST
reads and writes them with ``from_rest`` / ``to_rest`` (JSON, with Triton's binary tensor data
extension through ``binary_data``); gRPC with ``service.grpc.tensors`` (the core imports no
transport). Both validate through ``from_document``, so a request is refused in the same words
whichever way it came.
"""

from dataclasses import dataclass

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError

from service.inference.binary_data import cut_sections, join_body, split_body
from service.inference.codec import RequestedOutput, little_endian_bytes
from service.inference.errors import BadRequest, invalid_request
from service.inference.protocol import InferenceRequest

UNSERVED_PARAMETERS = {
    "classification": "the classification extension is not served; request 'probabilities' "
    "and take the most probable class",
    "shared_memory_region": "shared memory is not served; send the tensor as JSON or binary data",
}


# Built for every request: slots dataclasses are the cheapest to build.
@dataclass(slots=True)
class InferRequest:
    """A V2 inference request: the validated envelope (the inputs' names, datatypes, shapes,
    parameters and any JSON data; the outputs asked for), and the raw little-endian bytes of
    each input sent as binary data, by name."""

    envelope: InferenceRequest
    raw_inputs: dict[str, memoryview]

    @classmethod
    def from_document(
        cls, document: object, raw_inputs: dict[str, memoryview] | None = None
    ) -> "InferRequest":
        """A decoded JSON document (or one built from another transport's message) validated,
        or a 400 naming what is wrong."""
        if not isinstance(document, dict):
            raise BadRequest(
                "the inference request must be a JSON object with 'inputs'", "bad_json"
            )
        try:
            envelope = InferenceRequest.model_validate(document)
        except ValidationError as error:
            raise invalid_request(error) from None
        _refuse_unserved_extensions(envelope)
        return cls(envelope, raw_inputs or {})

    @classmethod
    def from_rest(cls, body: bytes, header_length: str | None) -> "InferRequest":
        """A REST body: JSON, or (with ``header_length``) a JSON header and binary sections."""
        json_header, binary = split_body(body, header_length)
        request = cls.from_document(_load_json(json_header))
        sizes = [
            (tensor.name, tensor.parameters.binary_data_size) for tensor in request.envelope.inputs
        ]
        request.raw_inputs = cut_sections(binary, sizes)
        return request


@dataclass(slots=True)
class InferResponse:
    """What an inference answers, before any transport encodes it: the outputs asked for."""

    model_name: str
    model_version: str
    id: str | None
    outputs: list[tuple[RequestedOutput, np.ndarray]]

    def to_rest(self) -> tuple[bytes, int | None]:
        """The REST body, and the JSON header's length when binary outputs follow it. JSON data
        stays a numpy array: orjson writes it itself, far faster than from Python floats."""
        entries, sections = [], []
        for output, array in self.outputs:
            entry: dict[str, object] = {
                "name": output.spec.name,
                "datatype": output.spec.datatype,
                "shape": list(array.shape),
            }
            if output.binary:
                raw = little_endian_bytes(array)
                entry["parameters"] = {"binary_data_size": len(raw)}
                sections.append(raw)
            else:
                entry["data"] = np.ascontiguousarray(array).reshape(-1)
            entries.append(entry)
        header: dict[str, object] = {
            "model_name": self.model_name,
            "model_version": self.model_version,
        }
        if self.id is not None:
            header["id"] = self.id
        header["outputs"] = entries
        return join_body(orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY), sections)


def _load_json(header: bytes) -> object:
    if not header:
        raise BadRequest("the body is empty: send a JSON inference request", "bad_json")
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the inference request is not valid JSON: {error}", "bad_json") from None


def _refuse_unserved_extensions(request: InferenceRequest) -> None:
    """Ignoring these parameters would answer something other than what was asked."""
    owners: list[tuple[str, str, BaseModel]] = [
        ("input", tensor.name, tensor.parameters) for tensor in request.inputs
    ]
    owners += [("output", output.name, output.parameters) for output in request.outputs or []]
    for kind, name, parameters in owners:
        extra = parameters.model_extra
        unserved = sorted(extra.keys() & UNSERVED_PARAMETERS.keys()) if extra else None
        if unserved:
            raise BadRequest(
                f"{kind} {name!r}: {UNSERVED_PARAMETERS[unserved[0]]}", "unserved_extension"
            )
