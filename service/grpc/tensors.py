"""The gRPC adapters of the core's one V2 request and response: ModelInferRequest in, an
``InferRequest``; an ``InferResponse`` out, a ModelInferResponse.

The request's envelope becomes the same document a REST client sends, validated by
``InferRequest.from_document`` as REST's is, so both are refused in the same words; raw contents
are the request's raw inputs, typed contents its ``data``. Outputs always answer in
``raw_output_contents``.
"""

import operator
from collections.abc import Mapping

from service.grpc.messages import ReceivedModelInfer
from service.grpc.proto import grpc_service_pb2 as pb
from service.inference.codec import little_endian_bytes
from service.inference.datatypes import contents_field
from service.inference.errors import BadRequest
from service.inference.v2 import InferRequest, InferResponse

NAME = operator.attrgetter("name")


def infer_request_from_grpc(received: ReceivedModelInfer) -> InferRequest:
    """The request as the core's validated envelope plus each raw input's bytes."""
    request, raw = received.message, received.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: give "
            "one per input, in the order of 'inputs'",
            "bad_raw_contents",
        )
    inputs = [_input_document(tensor, bool(raw)) for tensor in request.inputs]
    document: dict[str, object] = {
        "id": request.id or None,
        "parameters": parameters(request.parameters) if request.parameters else {},
        "inputs": inputs,
    }
    if request.outputs:
        document["outputs"] = [
            {"name": output.name, "parameters": parameters(output.parameters)}
            for output in request.outputs
        ]
    binary = dict(zip(map(NAME, request.inputs), raw, strict=True)) if raw else {}
    return InferRequest.from_document(document, binary)


def _input_document(tensor: pb.ModelInferRequest.InferInputTensor, raw: bool) -> dict:
    document: dict[str, object] = {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
        "parameters": parameters(tensor.parameters) if tensor.parameters else {},
    }
    # ListFields names only the non-empty fields: one call, rather than reading each of the
    # eight repeated fields.
    fields = tensor.contents.ListFields()
    if raw:
        if fields:
            raise BadRequest(
                f"input {tensor.name!r} has both {fields[0][0].name} and raw_input_contents: "
                "send one",
                "bad_tensor_data",
            )
        return document
    given = [field.name for field, _ in fields]
    expected = contents_field(tensor.datatype)
    if expected is not None and any(name != expected for name in given):
        other = next(name for name in given if name != expected)
        raise BadRequest(
            f"input {tensor.name!r} is {tensor.datatype}: its values go in contents.{expected}, "
            f"not contents.{other}",
            "bad_tensor_data",
        )
    if not given:
        raise BadRequest(
            f"input {tensor.name!r} has no values: send them in raw_input_contents or in "
            f"contents.{expected or 'uint_contents'}",
            "bad_tensor_data",
        )
    document["data"] = list(getattr(tensor.contents, given[0]))
    return document


def parameters(entries: Mapping[str, pb.InferParameter]) -> dict[str, object]:
    """Protocol parameters as plain values; a kind this proto does not know is left out."""
    values: dict[str, object] = {}
    for key, parameter in entries.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            values[key] = getattr(parameter, choice)
    return values


def infer_response_to_grpc(result: InferResponse) -> pb.ModelInferResponse:
    """Every output's little-endian bytes in ``raw_output_contents``, in the order asked."""
    response = pb.ModelInferResponse(
        model_name=result.model_name, model_version=result.model_version, id=result.id or ""
    )
    for output, array in result.outputs:
        response.outputs.add(
            name=output.spec.name, datatype=output.spec.datatype, shape=list(array.shape)
        )
        response.raw_output_contents.append(little_endian_bytes(array))
    return response


def repository_model_name(
    request: pb.RepositoryModelLoadRequest | pb.RepositoryModelUnloadRequest,
) -> str:
    """The model a load or unload names, whether the client spoke Triton's shape (the name in
    field 2, ``model_name``; field 1 is ``repository_name``) or KServe's (the name in field 1,
    which this proto reads as ``repository_name``): same method names on the wire."""
    return request.model_name or request.repository_name
