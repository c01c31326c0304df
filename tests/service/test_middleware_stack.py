"""Every route, the hot ones included, passes through the app's one middleware stack."""

from pathlib import Path
from typing import ClassVar

from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from service.app import create_app
from service.settings import Settings
from tests.support.images import mnist_like, png_bytes

INFER_BODY = {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8"}]}
INFER_BODY["inputs"][0]["data"] = [0] * 784


class Recorder:
    """Standard ASGI middleware that records each request's method, path and status."""

    seen: ClassVar[list[tuple[str, str, int]]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording_send(message) -> None:
            if message["type"] == "http.response.start":
                Recorder.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recording_send)


def test_a_middleware_added_to_the_app_sees_every_route(tiny_model_path: Path) -> None:
    app = create_app(Settings(model_path=tiny_model_path, access_log=False, grpc_enabled=False))
    app.add_middleware(Recorder)
    Recorder.seen.clear()
    files = {"file": ("a.png", png_bytes(mnist_like()), "image/png")}
    with TestClient(app) as client:
        client.post("/predict", files=files)
        client.post("/predict?invert=sideways", files=files)
        client.post("/v2/models/mnist_mlp/infer", json=INFER_BODY)
        client.post("/v2/models/mnist_mlp/versions/1/infer", json=INFER_BODY)
        client.get("/")
    assert Recorder.seen == [
        ("POST", "/predict", 200),
        ("POST", "/predict", 400),
        ("POST", "/v2/models/mnist_mlp/infer", 200),
        ("POST", "/v2/models/mnist_mlp/versions/1/infer", 200),
        ("GET", "/", 200),
    ]


def test_the_hot_routes_are_documented_once_with_their_parameters(tiny_client: TestClient) -> None:
    paths = tiny_client.get("/openapi.json").json()["paths"]
    expected = {
        "/predict": {"invert", "version"},
        "/v2/models/{model_name}/infer": {"model_name"},
        "/v2/models/{model_name}/versions/{model_version}/infer": {"model_name", "model_version"},
    }
    for path, parameters in expected.items():
        operation = paths[path]["post"]
        assert operation["requestBody"]["required"] is True
        assert {parameter["name"] for parameter in operation["parameters"]} == parameters
        assert "200" in operation["responses"]
