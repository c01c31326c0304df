"""The hot routes answer the same whether the lean layer or FastAPI's router reaches them."""

from unittest import mock

import pytest
from fastapi.testclient import TestClient

from service.rest.app import HOT_ROUTES
from service.rest.raw import HotRoutes
from tests.support.images import mnist_like, png_bytes

PNG = png_bytes(mnist_like())
JSON = {"content-type": "application/json"}
INFER_BODY = {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8"}]}
INFER_BODY["inputs"][0]["data"] = [0] * 784
REQUESTS = [
    ("/predict", {"files": {"file": ("a.png", PNG, "image/png")}}),
    ("/predict?invert=sideways", {"files": {"file": ("a.png", PNG, "image/png")}}),
    ("/predict", {"content": b"text", "headers": {"content-type": "text/plain"}}),
    ("/v2/models/mnist_mlp/infer", {"json": INFER_BODY}),
    ("/v2/models/mnist_mlp/versions/1/infer", {"json": INFER_BODY}),
    ("/v2/models/mnist_mlp/versions/9/infer", {"json": INFER_BODY}),
    ("/v2/models/other/infer", {"json": INFER_BODY}),
    ("/v2/models/mnist_mlp/infer", {"content": b"{", "headers": JSON}),
]


def _through_fastapi(self: HotRoutes, scope, receive, send):
    return self.app(scope, receive, send)


@pytest.mark.parametrize(("path", "request_options"), REQUESTS)
def test_the_same_answer_by_either_path(
    tiny_client: TestClient, path: str, request_options: dict
) -> None:
    with mock.patch.object(HotRoutes, "__call__", _through_fastapi):
        through_fastapi = tiny_client.post(path, **request_options)
    direct = tiny_client.post(path, **request_options)
    assert (direct.status_code, direct.content) == (
        through_fastapi.status_code,
        through_fastapi.content,
    )
    assert direct.headers["content-type"] == through_fastapi.headers["content-type"]


def test_every_hot_route_is_documented(tiny_client: TestClient) -> None:
    paths = tiny_client.get("/openapi.json").json()["paths"]
    for route in HOT_ROUTES:
        operation = paths[route.path]["post"]
        assert operation["requestBody"]["required"] is True
        documented = {parameter["name"] for parameter in operation.get("parameters", [])}
        assert set(route.param_convertors) <= documented
