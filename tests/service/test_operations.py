"""What operators rely on: metrics, the access log, the OpenAPI docs and CORS settings."""

import logging

import pytest
from fastapi.testclient import TestClient

from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.images import mnist_like, png_bytes


def metric_value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starts with {line_start!r}")


def test_metrics_count_requests_latency_batches_digits_and_rejections(tiny_client) -> None:
    files = [("files", (f"{i}.png", png_bytes(mnist_like(i)), "image/png")) for i in range(3)]
    digits = [p["digit"] for p in tiny_client.post("/predict", files=files).json()["predictions"]]
    tiny_client.post("/predict", content=b"text", headers={"content-type": "image/png"})
    tiny_client.post("/predict", params={"invert": "sometimes"})
    response = tiny_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        metric_value(text, 'mnist_http_requests_total{method="POST",route="/predict",status="200"}')
        == 1
    )
    assert (
        metric_value(text, 'mnist_http_requests_total{method="POST",route="/predict",status="415"}')
        == 1
    )
    assert metric_value(text, 'mnist_http_request_duration_seconds_count{route="/predict"}') == 3
    model = 'model="mnist_mlp",version="1"'
    assert metric_value(text, f'mnist_inference_batch_size_bucket{{le="4.0",{model}}}') == 1
    assert metric_value(text, f'mnist_inference_batch_size_bucket{{le="2.0",{model}}}') == 0
    for digit in set(digits):
        counted = metric_value(text, f'mnist_predictions_total{{digit="{digit}",{model}}}')
        assert counted == digits.count(digit)
    assert metric_value(text, 'mnist_rejected_inputs_total{reason="not_an_image"}') == 1
    assert metric_value(text, 'mnist_rejected_inputs_total{reason="invalid_request"}') == 1


def test_one_access_log_line_per_request(tiny_model_path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_rest_app(Settings(model_path=tiny_model_path))
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="service.access"):
        client.get("/v2/health/ready")
        client.get("/missing")
    lines = [record.getMessage() for record in caplog.records if record.name == "service.access"]
    assert len(lines) == 2
    method, path, status, latency = lines[0].split()
    assert (method, path, status) == ("GET", "/v2/health/ready", "200")
    assert latency.endswith("ms") and float(latency[:-2]) >= 0
    assert lines[1].startswith("GET /missing 404 ")


def test_docs_page_loads_swagger_ui_from_this_service(tiny_client) -> None:
    html = tiny_client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in html and "cdn." not in html
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert tiny_client.get(f"/docs/assets/{name}").status_code == 200
    missing = tiny_client.get("/docs/assets/secrets.txt")
    assert missing.status_code == 404 and "secrets.txt" in missing.json()["error"]


def test_docs_list_every_route_with_its_models(tiny_client) -> None:
    schema = tiny_client.get("/openapi.json").json()
    predict = schema["paths"]["/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PredictResponse"
    )
    assert predict["responses"]["415"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorBody"
    )
    assert {"/", "/predict", "/metrics", "/v2/health/ready"} <= set(schema["paths"])


def test_cors_is_off_unless_configured(tiny_model_path) -> None:
    preflight = {"origin": "https://example.org", "access-control-request-method": "POST"}
    with TestClient(create_rest_app(Settings(model_path=tiny_model_path))) as client:
        assert (
            "access-control-allow-origin"
            not in client.options("/predict", headers=preflight).headers
        )
    settings = Settings(model_path=tiny_model_path, cors_origins=["https://example.org"])
    with TestClient(create_rest_app(settings)) as client:
        response = client.options("/predict", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://example.org"
