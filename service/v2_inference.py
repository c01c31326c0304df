"""One V2 inference: body in, response out, with a single model call for the whole batch."""

import numpy as np
from fastapi import Response

from service.classifier import Classifier
from service.errors import BadRequest
from service.metrics import Metrics
from service.settings import Settings
from service.v2_body import decode_content, parse_inference_body
from service.v2_response import encode_response, requested_outputs
from service.v2_schemas import InferenceRequest, RequestInput
from service.v2_tensors import decode_input


def run_inference(
    classifier: Classifier,
    body: bytes,
    content_encoding: str | None,
    header_length: str | None,
    settings: Settings,
    metrics: Metrics,
) -> Response:
    """Synchronous on purpose: the router runs large bodies off the event loop."""
    body = decode_content(body, content_encoding, settings.max_request_bytes)
    parsed = parse_inference_body(body, header_length)
    request = parsed.request
    tensor = _image_input(request, classifier)
    binary = parsed.binary_inputs.get(tensor.name)
    images = decode_input(tensor, classifier.card.inputs[0], binary, settings.max_batch_size)
    outputs = requested_outputs(request, classifier.card)
    # The probabilities always run, in the same call, so that the metrics count every inference.
    names = list(dict.fromkeys([classifier.output_name, *(output.spec.name for output in outputs)]))
    arrays = dict(zip(names, classifier.run(names, images), strict=True))
    _observe(metrics, classifier, arrays[classifier.output_name])
    results = [(output, arrays[output.spec.name]) for output in outputs]
    return encode_response(classifier.card, request.id, results)


def _image_input(request: InferenceRequest, classifier: Classifier) -> RequestInput:
    """Exactly the card's one input, by name."""
    expected = classifier.input_name
    names = [tensor.name for tensor in request.inputs]
    for name in names:
        if name != expected:
            raise BadRequest(
                f"unknown input {name!r}; model {classifier.card.name!r} takes one input, "
                f"{expected!r}",
                "unknown_input",
            )
    if len(names) > 1:
        raise BadRequest(f"input {expected!r} is given {len(names)} times", "duplicate_input")
    return request.inputs[0]


def _observe(metrics: Metrics, classifier: Classifier, probabilities: np.ndarray) -> None:
    labels = np.asarray(classifier.card.labels)
    metrics.observe_inference(labels[probabilities.argmax(axis=1)].tolist())
