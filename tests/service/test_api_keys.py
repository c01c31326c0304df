"""API keys: ``MNIST_API_KEYS`` / ``MNIST_API_KEYS_FILE`` guard every route but health, the page
and the docs; a missing or wrong key is a JSON 401 with a Bearer challenge; keys are never shown.
"""

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.inference.auth import ApiKeys, Unauthorized
from service.rest.api_keys import ApiKeyGuard
from service.rest.app import create_rest_app
from service.settings import Settings
from tests.service.test_model_loading import run_service
from tests.support.images import png_bytes

KEY = "k3y-for-tests"
OTHER_KEY = "another-key"
WRONG_KEY = "wrong-key-that-must-never-be-logged"
INFER = "/v2/models/mnist_mlp/infer"
INFER_BODY = {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8",
                          "data": [0] * 784}]}  # fmt: skip
OPEN_ROUTES = ["/", "/static/page.js", "/docs", "/openapi.json", "/v2/health/live",
               "/v2/health/ready", "/v2/models/mnist_mlp/ready"]  # fmt: skip
GUARDED_GETS = ["/metrics", "/v2", "/v2/models/mnist_mlp", "/v2/models/mnist_mlp/versions/1"]
MANAGEMENT = ["/v2/repository/index", "/v2/repository/models/mnist_mlp/load"]


@pytest.fixture
def keyed_client(tiny_model_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_path=tiny_model_path, api_keys=[KEY, OTHER_KEY])
    with TestClient(create_rest_app(settings)) as client:
        yield client


def predict(client: TestClient, **headers: str):
    image = png_bytes(np.zeros((28, 28), dtype=np.uint8))
    return client.post("/predict", files={"file": ("a.png", image)}, headers=headers)


def assert_refused(response, reason_text: str, invalid_token: bool = False) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert reason_text in response.json()["error"]
    challenge = 'Bearer realm="mnist-mlp"' + (', error="invalid_token"' if invalid_token else "")
    assert response.headers["www-authenticate"] == challenge


def test_inference_without_a_key_is_a_401_saying_how_to_send_one(keyed_client) -> None:
    assert_refused(predict(keyed_client), "Authorization: Bearer <key>")
    assert_refused(keyed_client.post(INFER, json=INFER_BODY), "Authorization: Bearer <key>")


@pytest.mark.parametrize(
    ("authorization", "message", "invalid_token"),
    [
        (f"Bearer {WRONG_KEY}", "not one of this service's", True),
        (f"Basic {KEY}", "not a Bearer key", False),
        ("Bearer ", "not a Bearer key", False),
        (KEY, "not a Bearer key", False),
    ],
    ids=["wrong-key", "basic-scheme", "empty-token", "no-scheme"],
)
def test_a_wrong_or_malformed_key_is_a_401(
    keyed_client, authorization: str, message: str, invalid_token: bool
) -> None:
    assert_refused(predict(keyed_client, authorization=authorization), message, invalid_token)


def test_every_key_is_accepted_as_a_bearer_token(keyed_client) -> None:
    for key in (KEY, OTHER_KEY):
        assert predict(keyed_client, authorization=f"Bearer {key}").status_code == 200
        answer = keyed_client.post(
            INFER, json=INFER_BODY, headers={"authorization": f"bearer {key}"}
        )
        assert answer.status_code == 200


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_health_the_page_and_the_docs_stay_open(keyed_client, path: str) -> None:
    assert keyed_client.get(path).status_code == 200


@pytest.mark.parametrize("path", GUARDED_GETS)
def test_metadata_and_metrics_need_the_key(keyed_client, path: str) -> None:
    assert_refused(keyed_client.get(path), "needs an API key")
    assert keyed_client.get(path, headers={"authorization": f"Bearer {KEY}"}).status_code == 200


def test_refusals_are_counted_and_the_key_is_never_logged(
    keyed_client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        predict(keyed_client, authorization=f"Bearer {WRONG_KEY}")
        predict(keyed_client)
        predict(keyed_client, authorization=f"Bearer {KEY}")
    metrics = keyed_client.get("/metrics", headers={"authorization": f"Bearer {KEY}"}).text
    assert 'mnist_rejected_inputs_total{reason="invalid_api_key"} 1.0' in metrics
    assert 'mnist_rejected_inputs_total{reason="missing_api_key"} 1.0' in metrics
    assert 'route="/predict",status="401"} 2.0' in metrics
    assert WRONG_KEY not in caplog.text and KEY not in caplog.text
    assert KEY not in repr(keyed_client.app.state.dataplane.settings)


def test_a_cors_preflight_needs_no_key(tiny_model_path: Path) -> None:
    origin = "https://digits.example"
    settings = Settings(model_path=tiny_model_path, api_keys=[KEY], cors_origins=[origin])
    with TestClient(create_rest_app(settings)) as client:
        preflight = client.options(
            "/predict",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization",
            },
        )
        refused = predict(client, origin=origin)
    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == origin


def test_without_keys_the_guard_is_not_in_the_stack(tiny_client: TestClient) -> None:
    layer = tiny_client.app.middleware_stack
    while layer is not None:
        assert not isinstance(layer, ApiKeyGuard)
        layer = getattr(layer, "app", None)
    assert predict(tiny_client).status_code == 200


def test_keys_come_from_the_environment_and_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# rotated monthly\nfile-key-1\n\n  file-key-2  \n")
    monkeypatch.setenv("MNIST_API_KEYS", f'["{KEY}"]')
    monkeypatch.setenv("MNIST_API_KEYS_FILE", str(key_file))
    assert Settings().all_api_keys == (KEY, "file-key-1", "file-key-2")


def test_an_unreadable_key_file_stops_the_service_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent-keys"
    result = run_service(environment={"MNIST_API_KEYS_FILE": str(missing)})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"api_keys_file {missing}: No such file or directory" in line


@pytest.mark.parametrize("keys", [[], [""], ["with space"]], ids=["none", "empty", "space"])
def test_the_core_check_refuses_unusable_keys(keys: list[str]) -> None:
    with pytest.raises(ValueError, match="key"):
        ApiKeys(keys)


def test_the_core_check_never_shows_a_key() -> None:
    keys = ApiKeys([KEY])
    assert KEY not in repr(keys)
    with pytest.raises(Unauthorized) as refused:
        keys.check(f"Bearer {WRONG_KEY}")
    assert WRONG_KEY not in refused.value.message and refused.value.status_code == 401


def test_the_openapi_document_says_which_routes_need_the_key(keyed_client) -> None:
    document = keyed_client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    predict_operation = document["paths"]["/predict"]["post"]
    assert predict_operation["security"] == [{"apiKey": []}]
    assert "401" in predict_operation["responses"]
    assert "security" in document["paths"]["/metrics"]["get"]
    assert "security" not in document["paths"]["/v2/health/ready"]["get"]
    assert "security" not in document["paths"]["/v2/models/{model_name}/ready"]["get"]


def test_without_keys_the_document_declares_no_security(tiny_client: TestClient) -> None:
    document = tiny_client.get("/openapi.json").json()
    assert "securitySchemes" not in document.get("components", {})


@pytest.mark.parametrize("path", MANAGEMENT)
def test_the_model_repository_routes_need_the_key(keyed_client, path: str) -> None:
    assert_refused(keyed_client.post(path), "needs an API key")
    authorized = keyed_client.post(path, headers={"authorization": f"Bearer {KEY}"})
    assert authorized.status_code == 200, authorized.text
