"""Safe defaults: model control off unless asked for, and never open to the network without API
keys; the repository routes refuse what a web page could send through a browser (text/plain,
forms, a foreign Origin); MNIST_ALLOWED_HOSTS answers only the names it lists (JSON 400)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.__main__ import main
from service.rest.app import create_rest_app
from service.settings import Settings, is_loopback
from tests.support.live_server import live_server

UNLOAD = "/v2/repository/models/mnist_mlp/unload"
LOAD = "/v2/repository/models/mnist_mlp/load"


def test_by_default_nobody_can_unload_the_model(tiny_client: TestClient) -> None:
    """The issue's probe: an unload with no key, as a page in a browser would send it."""
    response = tiny_client.post(
        UNLOAD, content=b"{}", headers={"Content-Type": "text/plain", "Origin": "http://evil"}
    )
    assert response.status_code == 404
    assert tiny_client.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_model_control_without_keys_refuses_to_start_when_others_can_connect(host: str) -> None:
    with pytest.raises(ValidationError, match="model_control is on without API keys while"):
        Settings(model_control=True, host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_model_control_without_keys_is_allowed_on_loopback(host: str) -> None:
    assert is_loopback(host)
    assert Settings(model_control=True, host=host).model_control


def test_model_control_with_keys_may_listen_anywhere() -> None:
    assert Settings(model_control=True, host="0.0.0.0", api_keys=["k1"]).model_control


def test_the_command_says_why_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MNIST_MODEL_CONTROL", "true")
    assert main(["--host", "0.0.0.0", "--port", "18200"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("mnist-mlp-serve: invalid setting: ")
    assert "set MNIST_API_KEYS (or MNIST_API_KEYS_FILE), bind MNIST_HOST=127.0.0.1" in error


def test_a_list_setting_that_is_not_json_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MNIST_API_KEYS", "key-one,key-two")
    assert main(["--port", "18200"]) == 2
    assert capsys.readouterr().err == (
        "mnist-mlp-serve: invalid setting: MNIST_API_KEYS is not valid JSON; give a list as "
        'JSON, such as ["a", "b"]\n'
    )


@pytest.fixture
def control_client(tiny_model_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_path=tiny_model_path,
        access_log=False,
        model_control=True,
        cors_origins=["https://console.example"],
    )
    with TestClient(create_rest_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_bodies_a_page_may_send_cross_origin_are_refused(
    control_client: TestClient, content_type: str
) -> None:
    response = control_client.post(UNLOAD, content=b"{}", headers={"Content-Type": content_type})
    assert response.status_code == 415
    media_type = content_type.split(";")[0]
    assert response.json() == {
        "error": f"Content-Type {media_type!r} is not accepted here: send application/json, or "
        "no Content-Type"
    }
    assert control_client.get("/v2/health/ready").status_code == 200


def test_json_is_served(control_client: TestClient) -> None:
    assert control_client.post(UNLOAD, json={"parameters": {}}).status_code == 200
    assert control_client.post(LOAD, json={}).status_code == 200
    assert control_client.post("/v2/repository/index").status_code == 200


def test_tritonclient_unloads_and_loads_with_its_untyped_json(tiny_model_path: Path) -> None:
    """tritonclient sends its JSON with no Content-Type: still served."""
    settings = Settings(model_path=tiny_model_path, access_log=False, model_control=True)
    with live_server(create_rest_app(settings)) as url:
        client = triton.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            client.unload_model("mnist_mlp")
            assert not client.is_model_ready("mnist_mlp")
            client.load_model("mnist_mlp")
            assert client.is_model_ready("mnist_mlp")
        finally:
            client.close()


def test_a_browser_request_from_a_foreign_origin_is_refused(control_client: TestClient) -> None:
    foreign = control_client.post(UNLOAD, json={}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert foreign.json()["error"] == (
        "requests from the web origin 'http://evil.example' may not change the model "
        "repository; list it in MNIST_CORS_ORIGINS to allow it"
    )
    # A page can send a body with no Content-Type without a preflight too; it carries an Origin.
    untyped = control_client.post(UNLOAD, content=b"{}", headers={"Origin": "http://evil.example"})
    assert untyped.status_code == 403
    assert control_client.get("/v2/health/ready").status_code == 200
    listed = control_client.post(UNLOAD, json={}, headers={"Origin": "https://console.example"})
    assert listed.status_code == 200


@pytest.fixture
def hosts_client(tiny_model_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_path=tiny_model_path,
        access_log=False,
        allowed_hosts=["mnist.example", "*.internal.example", "[::1]"],
    )
    with TestClient(create_rest_app(settings), base_url="http://mnist.example") as client:
        yield client


@pytest.mark.parametrize(
    "host", ["mnist.example", "mnist.example:8000", "a.internal.example", "[::1]:8000"]
)
def test_listed_hosts_are_served(hosts_client: TestClient, host: str) -> None:
    response = hosts_client.get("/v2/models/mnist_mlp", headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "internal.example", "mnist.example.evil", ""])
def test_other_hosts_get_a_json_400(hosts_client: TestClient, host: str) -> None:
    response = hosts_client.get("/v2/models/mnist_mlp", headers={"Host": host})
    assert response.status_code == 400
    shown = host or "(none)"
    assert response.json() == {
        "error": f"the Host {shown!r} is not one this service answers to (MNIST_ALLOWED_HOSTS)"
    }
    metrics = hosts_client.get("/metrics").text
    assert 'mnist_rejected_inputs_total{reason="host_not_allowed"} 1.0' in metrics


def test_health_probes_answer_whatever_the_host(hosts_client: TestClient) -> None:
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert hosts_client.get(path, headers={"Host": "10.1.2.3:8000"}).status_code == 200
