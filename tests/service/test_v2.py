"""The Open Inference Protocol (KServe V2) routes on the real app and the tiny real model."""

import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import orjson
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.inference.protocol import InferenceResponse, ModelMetadata, ServerMetadata
from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.models import write_model

INFER = "/v2/models/mnist_mlp/infer"
HEADER_LENGTH = "Inference-Header-Content-Length"
Body = tuple[bytes, dict[str, Any]]


def random_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def reference(model_path: Path, images: np.ndarray) -> np.ndarray:
    """What onnxruntime itself answers, with no service code in between."""
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"image": images})[0]


def image_input(images: np.ndarray, data: Any = None, **overrides: Any) -> dict[str, Any]:
    tensor = {"name": "image", "shape": list(images.shape), "datatype": "UINT8"}
    tensor["data"] = images.reshape(-1).tolist() if data is None else data
    return tensor | overrides


def json_body(document: Any) -> Body:
    """The standard library's encoder, which (unlike orjson) writes integers of any size."""
    return json.dumps(document).encode(), {"content-type": "application/json"}


def binary_body(
    images: np.ndarray, header: dict[str, Any] | None = None, raw: bytes | None = None
) -> Body:
    """The binary tensor data extension: a JSON header, then the raw input bytes."""
    raw = images.tobytes() if raw is None else raw
    document = header or {
        "inputs": [
            {
                "name": "image",
                "shape": list(images.shape),
                "datatype": "UINT8",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    json_part = orjson.dumps(document)
    return json_part + raw, {HEADER_LENGTH: str(len(json_part))}


def post(client: TestClient, body: Body, path: str = INFER) -> Response:
    content, headers = body
    return client.post(path, content=content, headers=headers)


def probabilities_of(response: Response) -> np.ndarray:
    """The ``probabilities`` output, JSON or binary, as the client would read it."""
    assert response.status_code == 200, response.text
    header_length = response.headers.get(HEADER_LENGTH)
    content = response.content
    header = orjson.loads(content if header_length is None else content[: int(header_length)])
    InferenceResponse.model_validate(header)
    outputs = header["outputs"]
    sizes = [output.get("parameters", {}).get("binary_data_size", 0) for output in outputs]
    if header_length is not None:
        assert sum(sizes) == len(content) - int(header_length)
    # The shipped model has a second output, digit_score; every output comes when none is named.
    position = [output["name"] for output in outputs].index("probabilities")
    output = outputs[position]
    assert output["datatype"] == "FP32"
    if "data" in output:
        values = np.array(output["data"], dtype=np.float32)
    else:
        start = int(header_length) + sum(sizes[:position])
        values = np.frombuffer(content[start : start + sizes[position]], dtype="<f4")
    return values.reshape(output["shape"])


def assert_still_serves(client: TestClient, model_path: Path) -> None:
    images = random_images(2, seed=7)
    response = post(client, json_body({"inputs": [image_input(images)]}))
    np.testing.assert_array_equal(probabilities_of(response), reference(model_path, images))


# --- metadata and health -------------------------------------------------------------------


def test_server_metadata_lists_the_binary_extension(tiny_client: TestClient) -> None:
    response = tiny_client.get("/v2")
    assert response.status_code == 200
    metadata = ServerMetadata.model_validate(response.json())
    assert metadata.name == "mnist-mlp"
    assert "binary_tensor_data" in metadata.extensions


def test_health_live_and_ready(tiny_client: TestClient) -> None:
    assert tiny_client.get("/v2/health/live").json() == {"live": True}
    assert tiny_client.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("path", ["/v2/models/mnist_mlp", "/v2/models/mnist_mlp/versions/1"])
def test_model_metadata_comes_from_the_card(tiny_client: TestClient, path: str) -> None:
    response = tiny_client.get(path)
    assert response.status_code == 200
    metadata = ModelMetadata.model_validate(response.json())
    assert (metadata.name, metadata.versions, metadata.platform) == (
        "mnist_mlp",
        ["1"],
        "onnx_onnxv1",
    )
    assert response.json()["inputs"] == [
        {"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}
    ]
    assert response.json()["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
    ]


def test_model_metadata_uses_the_cards_name_and_version(tmp_path: Path) -> None:
    model_path = write_model(tmp_path, name="digits", version="7")
    with TestClient(create_rest_app(Settings(model_path=model_path, access_log=False))) as client:
        assert client.get("/v2/models/digits/versions/7").json()["versions"] == ["7"]
        assert client.get("/v2/models/mnist_mlp").status_code == 404
        images = random_images(1)
        response = post(
            client, json_body({"inputs": [image_input(images)]}), "/v2/models/digits/infer"
        )
        assert response.json()["model_version"] == "7"


@pytest.mark.parametrize(
    "path", ["/v2/models/mnist_mlp/ready", "/v2/models/mnist_mlp/versions/1/ready"]
)
def test_model_ready(tiny_client: TestClient, path: str) -> None:
    response = tiny_client.get(path)
    assert response.status_code == 200
    assert response.json() == {"name": "mnist_mlp", "version": "1", "ready": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/health/ready"),
        ("GET", "/v2/models/mnist_mlp"),
        ("GET", "/v2/models/mnist_mlp/ready"),
        ("POST", INFER),
    ],
)
def test_before_the_model_loads_the_model_routes_answer_503(
    tiny_settings: Settings, method: str, path: str
) -> None:
    client = TestClient(create_rest_app(tiny_settings))  # no lifespan: the model is never loaded
    assert client.get("/v2/health/live").status_code == 200
    response = client.request(method, path, content=b"{}")
    assert response.status_code == 503
    assert "not loaded" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v2/models/resnet", "unknown model 'resnet'; this server serves 'mnist_mlp'"),
        ("/v2/models/resnet/ready", "unknown model 'resnet'"),
        ("/v2/models/mnist_mlp/versions/2", "has no version '2'; its versions: '1'"),
        ("/v2/models/mnist_mlp/versions/2/ready", "has no version '2'"),
    ],
)
def test_unknown_model_or_version_is_404(
    tiny_client: TestClient, tiny_model_path: Path, path: str, fragment: str
) -> None:
    response = tiny_client.get(path)
    assert response.status_code == 404
    assert fragment in response.json()["error"]
    assert_still_serves(tiny_client, tiny_model_path)


# --- inference ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 100])
@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_json_inference_equals_onnxruntime(
    tiny_client: TestClient, tiny_model_path: Path, count: int, layout: str
) -> None:
    images = random_images(count)
    data = images.tolist() if layout == "nested" else images.reshape(-1).tolist()
    response = post(tiny_client, json_body({"inputs": [image_input(images, data)]}))
    assert response.headers["content-type"] == "application/json"
    np.testing.assert_array_equal(probabilities_of(response), reference(tiny_model_path, images))


@pytest.mark.parametrize("count", [1, 100])
@pytest.mark.parametrize("binary_output", [True, False])
def test_binary_inference_equals_onnxruntime(
    tiny_client: TestClient, tiny_model_path: Path, count: int, binary_output: bool
) -> None:
    images = random_images(count, seed=count)
    content, headers = binary_body(images)
    document = orjson.loads(content[: int(headers[HEADER_LENGTH])])
    document["outputs"] = [{"name": "probabilities", "parameters": {"binary_data": binary_output}}]
    response = post(tiny_client, binary_body(images, document))
    assert (HEADER_LENGTH in response.headers) is binary_output
    np.testing.assert_array_equal(probabilities_of(response), reference(tiny_model_path, images))


def test_binary_data_output_applies_to_every_output_not_asking_otherwise(
    tiny_client: TestClient, tiny_model_path: Path
) -> None:
    images = random_images(3)
    document = {"inputs": [image_input(images)], "parameters": {"binary_data_output": True}}
    response = post(tiny_client, json_body(document))
    assert response.headers["content-type"] == "application/octet-stream"
    np.testing.assert_array_equal(probabilities_of(response), reference(tiny_model_path, images))
    document["outputs"] = [{"name": "probabilities", "parameters": {"binary_data": False}}]
    assert HEADER_LENGTH not in post(tiny_client, json_body(document)).headers


def test_versioned_inference_echoes_the_id_and_accepts_parameters(
    tiny_client: TestClient, tiny_model_path: Path
) -> None:
    images = random_images(4)
    document = {
        "id": "request-42",
        "parameters": {"priority": 1, "custom": "anything"},
        "inputs": [image_input(images, parameters={"note": "ignored"})],
        "outputs": [{"name": "probabilities"}],
    }
    response = post(tiny_client, json_body(document), "/v2/models/mnist_mlp/versions/1/infer")
    body = response.json()
    assert (body["id"], body["model_name"], body["model_version"]) == (
        "request-42",
        "mnist_mlp",
        "1",
    )
    np.testing.assert_array_equal(probabilities_of(response), reference(tiny_model_path, images))
    without_id = post(tiny_client, json_body({"inputs": [image_input(images)]}))
    assert "id" not in without_id.json()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_requests_are_inflated(
    tiny_client: TestClient, tiny_model_path: Path, encoding: str
) -> None:
    images = random_images(5)
    content, headers = binary_body(images)
    compress = gzip.compress if encoding == "gzip" else zlib.compress
    response = post(tiny_client, (compress(content), headers | {"Content-Encoding": encoding}))
    np.testing.assert_array_equal(probabilities_of(response), reference(tiny_model_path, images))


def test_inference_is_counted_in_the_metrics(tiny_client: TestClient) -> None:
    content, headers = binary_body(random_images(6))
    assert post(tiny_client, (content, headers)).status_code == 200
    text = tiny_client.get("/metrics").text
    assert 'mnist_inference_batch_size_count{model="mnist_mlp",version="1"} 1.0' in text
    counted = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("mnist_predictions")
    ]
    assert sum(counted) == 6


def test_the_batch_limit_is_inclusive(tiny_model_path: Path) -> None:
    settings = Settings(model_path=tiny_model_path, access_log=False, max_batch_size=8)
    with TestClient(create_rest_app(settings)) as client:
        assert post(client, binary_body(random_images(8))).status_code == 200
        response = post(client, binary_body(random_images(9)))
        assert response.status_code == 413
        assert "9 images; at most 8" in response.json()["error"]


def test_infer_is_documented_with_its_request_and_response_models(
    tiny_client: TestClient,
) -> None:
    paths = tiny_client.get("/openapi.json").json()["paths"]
    operation = paths["/v2/models/{model_name}/infer"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "inputs" in request_schema["properties"]
    assert "$ref" not in orjson.dumps(request_schema).decode()
    # The one body type it takes; the binary extension (framed by a header) is told in words.
    assert list(operation["requestBody"]["content"]) == ["application/json"]
    assert "Inference-Header-Content-Length" in operation["requestBody"]["description"]
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/InferenceResponse")
    assert set(operation["responses"]) >= {"400", "404", "413", "415", "503"}


# --- refusals -------------------------------------------------------------------------------

IMAGES = random_images(2)
FLAT = IMAGES.reshape(-1).tolist()


def with_input(**overrides: Any) -> Body:
    return json_body({"inputs": [image_input(IMAGES, **overrides)]})


def with_values(values: list) -> Body:
    return with_input(data=values + FLAT[len(values) :])


def binary_with_header_length(length: str | bytes) -> Body:
    content, headers = binary_body(IMAGES)
    return content, headers | {HEADER_LENGTH: length}


def without_data(**overrides: Any) -> dict[str, Any]:
    tensor = image_input(IMAGES, **overrides)
    del tensor["data"]
    return tensor


def binary_declaring(size: int, raw: bytes) -> Body:
    tensor = without_data(parameters={"binary_data_size": size})
    return binary_body(IMAGES, {"inputs": [tensor]}, raw)


REFUSALS: dict[str, tuple[Callable[[], Body], int, str]] = {
    "bad JSON": (lambda: (b'{"inputs": [', {}), 400, "not valid JSON"),
    "empty body": (lambda: (b"", {}), 400, "the body is empty"),
    "JSON array": (lambda: json_body([1, 2]), 400, "must be a JSON object"),
    "missing inputs": (lambda: json_body({"id": "x"}), 400, "inputs: Field required"),
    "no inputs": (lambda: json_body({"inputs": []}), 400, "inputs: List should have at least 1"),
    "shape not a list": (lambda: with_input(shape="2x28x28"), 400, "inputs.0.shape"),
    "unknown input name": (
        lambda: json_body({"inputs": [image_input(IMAGES, name="pixels")]}),
        400,
        "unknown input 'pixels'; model 'mnist_mlp' takes one input, 'image'",
    ),
    "input twice": (
        lambda: json_body({"inputs": [image_input(IMAGES), image_input(IMAGES)]}),
        400,
        "input 'image' is given 2 times",
    ),
    "wrong datatype": (
        lambda: with_input(datatype="FP32"),
        400,
        "has datatype 'FP32'; the model takes UINT8",
    ),
    "wrong rank": (lambda: with_input(shape=[2, 784]), 400, "the model takes [N, 28, 28]"),
    "wrong fixed dimension": (lambda: with_input(shape=[2, 28, 27]), 400, "shape [2, 28, 27]"),
    "negative shape": (lambda: with_input(shape=[-2, 28, 28]), 400, "N must be at least 1"),
    "negative fixed dimension": (lambda: with_input(shape=[2, -28, 28]), 400, "[N, 28, 28]"),
    "zero images": (lambda: with_input(shape=[0, 28, 28], data=[]), 400, "N must be at least 1"),
    "too many images": (
        lambda: with_input(shape=[16385, 28, 28]),
        413,
        "16385 images; at most 16384",
    ),
    "enormous shape": (lambda: with_input(shape=[10**30, 28, 28]), 413, "at most 16384"),
    "data shorter than shape": (
        lambda: with_input(data=FLAT[:-1]),
        400,
        "has 1567 values but shape [2, 28, 28] needs 1568",
    ),
    "value above 255": (lambda: with_values([256]), 400, "values must be from 0 to 255"),
    "negative value": (lambda: with_values([-1]), 400, "values must be from 0 to 255"),
    "huge value": (lambda: with_values([2**80]), 400, "UINT8 values must be"),
    "float value": (lambda: with_values([1.5]), 400, "values must be integers ('float'"),
    "string value": (lambda: with_values(["7"]), 400, "values must be integers ('str'"),
    "null value": (lambda: with_values([None]), 400, "values must be integers"),
    "data not a list": (lambda: with_input(data="0" * 1568), 400, "'data' must be a list"),
    "no data": (lambda: json_body({"inputs": [without_data()]}), 400, "has no data"),
    "nested too shallow": (
        lambda: with_input(data=IMAGES.reshape(2, 784).tolist()),
        400,
        "lists of 28 at nesting level 2",
    ),
    "nested ragged": (
        lambda: with_input(data=[IMAGES[0].tolist(), IMAGES[1].tolist()[:27]]),
        400,
        "lists of 28 at nesting level 2",
    ),
    "nested too deep": (
        lambda: with_input(data=IMAGES[..., np.newaxis].tolist()),
        400,
        "deeper than shape [2, 28, 28]",
    ),
    "nested with the wrong count": (
        lambda: with_input(data=IMAGES[:1].tolist()),
        400,
        "lists of 2 at nesting level 1",
    ),
    "unknown output": (
        lambda: json_body({"inputs": [image_input(IMAGES)], "outputs": [{"name": "logits"}]}),
        400,
        "unknown output 'logits'; model 'mnist_mlp' gives: probabilities",
    ),
    "output twice": (
        lambda: json_body(
            {"inputs": [image_input(IMAGES)], "outputs": [{"name": "probabilities"}] * 2}
        ),
        400,
        "requested twice",
    ),
    "classification extension": (
        lambda: json_body(
            {
                "inputs": [image_input(IMAGES)],
                "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}],
            }
        ),
        400,
        "classification extension is not served",
    ),
    "shared memory": (
        lambda: with_input(parameters={"shared_memory_region": "r"}),
        400,
        "shared memory is not served",
    ),
    "binary header length beyond the body": (
        lambda: binary_with_header_length("999999"),
        400,
        "Inference-Header-Content-Length is 999999 but the body has only",
    ),
    "binary header length negative": (
        lambda: binary_with_header_length("-5"),
        400,
        "Inference-Header-Content-Length must be the JSON header's length",
    ),
    "binary header length not a number": (
        lambda: binary_with_header_length(b"\xb2"),
        400,
        "Inference-Header-Content-Length must be the JSON header's length",
    ),
    "binary size not matching the shape": (
        lambda: binary_declaring(100, bytes(100)),
        400,
        "binary_data_size 100 but shape [2, 28, 28] UINT8 needs 1568 bytes",
    ),
    "binary size beyond the bytes sent": (
        lambda: binary_declaring(1568, bytes(1000)),
        400,
        "declares binary_data_size 1568 but only 1000 bytes follow",
    ),
    "bytes after the header nobody declares": (
        lambda: binary_body(IMAGES, {"inputs": [image_input(IMAGES)]}, bytes(10)),
        400,
        "10 bytes follow the JSON header but the inputs' binary_data_size add up to 0",
    ),
    "binary size without the header": (
        lambda: (binary_declaring(1568, b"")[0], {}),
        400,
        "only 0 bytes follow the JSON header for it (is Inference-Header-Content-Length set?)",
    ),
    "both data and binary": (
        lambda: binary_body(
            IMAGES,
            {"inputs": [image_input(IMAGES, parameters={"binary_data_size": 1568})]},
            IMAGES.tobytes(),
        ),
        400,
        "has both 'data' and binary_data_size",
    ),
    "unsupported content encoding": (
        lambda: (with_input()[0], {"Content-Encoding": "br"}),
        415,
        "Content-Encoding 'br' is not supported",
    ),
    "corrupt gzip": (
        lambda: (b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}),
        400,
        "not valid gzip data",
    ),
    "truncated gzip": (
        lambda: (gzip.compress(with_input()[0])[:-20], {"Content-Encoding": "gzip"}),
        400,
        "the gzip body is truncated",
    ),
    "gzip bomb": (
        lambda: (gzip.compress(bytes(40 * 1024 * 1024), 1), {"Content-Encoding": "gzip"}),
        413,
        "inflates beyond",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_bad_requests_are_refused_and_the_service_goes_on(
    tiny_client: TestClient, tiny_model_path: Path, case: str
) -> None:
    make_body, status, fragment = REFUSALS[case]
    response = post(tiny_client, make_body())
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert_still_serves(tiny_client, tiny_model_path)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v2/models/resnet/infer", "unknown model 'resnet'"),
        ("/v2/models/mnist_mlp/versions/3/infer", "has no version '3'"),
    ],
)
def test_inference_on_an_unknown_model_or_version_is_404(
    tiny_client: TestClient, tiny_model_path: Path, path: str, fragment: str
) -> None:
    response = post(tiny_client, with_input(), path)
    assert response.status_code == 404
    assert fragment in response.json()["error"]
    assert_still_serves(tiny_client, tiny_model_path)


def test_a_body_over_the_byte_limit_is_413(tiny_model_path: Path) -> None:
    settings = Settings(
        model_path=tiny_model_path,
        access_log=False,
        max_request_bytes=64 * 1024,
        max_image_bytes=64 * 1024,
    )
    with TestClient(create_rest_app(settings)) as client:
        response = post(client, binary_body(random_images(100)))
        assert response.status_code == 413
        assert "at most 65536 bytes" in response.json()["error"]
        assert_still_serves(client, tiny_model_path)


def test_refusals_are_counted_by_reason(tiny_client: TestClient) -> None:
    post(tiny_client, with_values([300]))
    assert 'mnist_rejected_inputs_total{reason="values_out_of_range"} 1.0' in (
        tiny_client.get("/metrics").text
    )


@pytest.mark.parametrize("binary", [True, False])
def test_the_shipped_model_answers_like_onnxruntime(
    shipped_client: TestClient, shipped_model_path: Path, binary: bool
) -> None:
    images = random_images(32, seed=11)
    body = binary_body(images) if binary else json_body({"inputs": [image_input(images)]})
    response = post(shipped_client, body)
    np.testing.assert_array_equal(probabilities_of(response), reference(shipped_model_path, images))
