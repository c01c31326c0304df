"""The in-flight budget over REST: a body is charged when it is read and given back after its
answer; over the budget a request waits, then gets 503 + Retry-After; a JSON body is charged
for what parsing it costs before it is parsed, and one that costs more than the whole budget
is a 413 without being parsed (gzipped or not)."""

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from service.inference.costs import json_parse_bytes
from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.v2_bodies import binary_infer_body

INFER = "/v2/models/mnist_mlp/infer"
MiB = 1024 * 1024


@pytest.fixture
def client(tiny_model_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_path=tiny_model_path,
        access_log=False,
        max_inflight_bytes=16 * MiB,
        max_request_bytes=4 * MiB,
        max_image_bytes=MiB,
        max_image_decode_bytes=4 * MiB,
        inflight_wait_seconds=0.2,
    )
    with TestClient(create_rest_app(settings)) as client:
        yield client


def test_a_body_is_given_back_once_answered(client: TestClient) -> None:
    body, headers = binary_infer_body(500)
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200
    assert client.app.state.dataplane.inflight.in_use == 0


def test_over_the_budget_a_request_waits_then_gets_503_with_retry_after(
    client: TestClient,
) -> None:
    inflight = client.app.state.dataplane.inflight
    body, headers = binary_infer_body(500)  # 392,000 bytes and more, held twice while read
    client.portal.call(inflight.acquire, 15 * MiB)
    try:
        response = client.post(INFER, content=body, headers=headers)
        metrics = client.get("/metrics").text
        assert f"mnist_inflight_bytes {float(15 * MiB):.6e}" in metrics
    finally:
        inflight.release(15 * MiB)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"].startswith("the service is busy: ")
    assert 'mnist_rejected_inputs_total{reason="overloaded"} 1.0' in metrics
    assert inflight.in_use == 0
    assert client.post(INFER, content=body, headers=headers).status_code == 200
    assert "mnist_inflight_bytes 0.0" in client.get("/metrics").text


def test_a_small_request_is_served_with_the_budget_full(client: TestClient) -> None:
    """A body of at most 64 KiB, handled on the event loop, is not charged and never waits."""
    inflight = client.app.state.dataplane.inflight
    body, headers = binary_infer_body(10)
    client.portal.call(inflight.acquire, 16 * MiB)
    try:
        response = client.post(INFER, content=body, headers=headers)
    finally:
        inflight.release(16 * MiB)
    assert response.status_code == 200


def test_a_chunked_body_is_charged_as_it_arrives(client: TestClient) -> None:
    inflight = client.app.state.dataplane.inflight
    body, headers = binary_infer_body(500)  # 392,000 bytes and more, sent in 50,000-byte chunks

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 50_000):
            yield body[start : start + 50_000]

    client.portal.call(inflight.acquire, 16 * MiB - 256 * 1024)
    try:
        response = client.post(INFER, content=chunks(), headers=headers)
    finally:
        inflight.release(16 * MiB - 256 * 1024)
    assert response.status_code == 503
    assert client.post(INFER, content=chunks(), headers=headers).status_code == 200
    assert inflight.in_use == 0


def test_a_request_answered_without_its_body_holds_nothing(client: TestClient) -> None:
    inflight = client.app.state.dataplane.inflight
    client.portal.call(inflight.acquire, 16 * MiB)
    try:
        response = client.post("/v2/models/no_such_model/infer", content=b"{" * 100_000)
    finally:
        inflight.release(16 * MiB)
    assert response.status_code == 404


EMPTY_LISTS = b"[" + b"[]," * 200_000 + b"[]]"  # 600 KB of JSON, over 16 MiB to parse


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_json_that_costs_more_to_parse_than_the_budget_is_refused_unparsed(
    client: TestClient, compressed: bool
) -> None:
    cost = json_parse_bytes(EMPTY_LISTS)
    assert cost > 16 * MiB
    body = gzip.compress(EMPTY_LISTS) if compressed else EMPTY_LISTS
    headers = {"Content-Encoding": "gzip"} if compressed else {}
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == (
        f"parsing this {len(EMPTY_LISTS)}-byte JSON body takes about {cost} bytes of memory, "
        f"more than the {16 * MiB} the service holds for requests in flight; send large batches "
        "as binary tensor data"
    )
    metrics = client.get("/metrics").text
    assert 'mnist_rejected_inputs_total{reason="json_too_costly"} 1.0' in metrics


@pytest.mark.parametrize(
    "document",
    [
        EMPTY_LISTS,
        b"[" + b"0," * 500_000 + b"0]",
        b"[" + b"1000," * 200_000 + b"1]",
        b"[" + b"1.5," * 200_000 + b"1]",
        b"[" + b'"ab",' * 200_000 + b'"ab"]',
        b"[" + b'{"a":[]},' * 100_000 + b"{}]",
    ],
    ids=["empty lists", "digits", "large ints", "floats", "strings", "objects"],
)
def test_the_cost_of_parsing_json_bounds_what_orjson_takes(document: bytes) -> None:
    """The figures behind ``json_parse_bytes``: the Python objects orjson builds (tracemalloc
    sees them), plus its own document beneath them (16 bytes a value, and the text)."""
    import tracemalloc

    values = document.count(b",") + document.count(b":") + document.count(b"[") + 1
    tracemalloc.start()
    parsed = orjson.loads(document)
    python_objects, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del parsed
    assert python_objects + 16 * values + len(document) <= json_parse_bytes(document)
