"""Every request is counted under the route it was for, and a refusal says what was sent."""

import re

from fastapi.testclient import TestClient


def request_count(client: TestClient, route: str, method: str, status: int) -> float:
    text = client.get("/metrics").text
    pattern = r"^mnist_http_requests_total\{(.*)\} (\S+)$"
    for labels, value in re.findall(pattern, text, flags=re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found == {"route": route, "method": method, "status": str(status)}:
            return float(value)
    return 0.0


def test_the_openapi_document_is_counted_under_its_own_route(tiny_client: TestClient) -> None:
    assert tiny_client.get("/openapi.json").status_code == 200
    assert request_count(tiny_client, "/openapi.json", "GET", 200) == 1
    assert request_count(tiny_client, "unmatched", "GET", 200) == 0


def test_a_wrong_method_is_counted_under_its_route_and_an_unknown_path_as_unmatched(
    tiny_client: TestClient,
) -> None:
    assert tiny_client.get("/predict").status_code == 405
    assert tiny_client.get("/v2/models/mnist_mlp/infer").status_code == 405
    assert tiny_client.get("/no/such/route").status_code == 404
    assert request_count(tiny_client, "/predict", "GET", 405) == 1
    assert request_count(tiny_client, "/v2/models/{model_name}/infer", "GET", 405) == 1
    assert request_count(tiny_client, "unmatched", "GET", 404) == 1


def test_a_body_without_a_content_type_is_told_so(tiny_client: TestClient) -> None:
    response = tiny_client.post("/predict", content=b"\x89PNG", headers={"content-type": ""})
    assert response.status_code == 415
    assert response.json()["error"].startswith("the request has no Content-Type header: send ")
    metrics = tiny_client.get("/metrics").text
    assert 'mnist_rejected_inputs_total{reason="no_content_type"} 1.0' in metrics
