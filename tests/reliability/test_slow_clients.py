"""Slow, stalled and vanishing clients on a live server, over real sockets.

A stall past ``MNIST_READ_TIMEOUT`` (here 0.5 s) gets a JSON 408 and a closed connection; a
client that keeps sending, however slowly, is served; a client that hangs up mid-request is a
499 in the access log and the metrics, never a 500 or a traceback.
"""

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.payloads import INFER, valid_infer_json, valid_png
from tests.support.live_server import LiveService, live_service, request_head

READ_TIMEOUT = 0.5
KEEP_ALIVE_TIMEOUT = 5.0  # uvicorn's default
ROUTES = [("/predict", "image/png", valid_png()), (INFER, "application/json", valid_infer_json())]
TEMPLATES = {"/predict": "/predict", INFER: "/v2/models/{model_name}/infer"}  # metric labels


@pytest.fixture(scope="module")
def service(model_path: Path) -> Iterator[LiveService]:
    with live_service(model_path, read_timeout=str(READ_TIMEOUT), access_log="true") as running:
        yield running


def connect(service: LiveService) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=30.0)


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, body = response.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers, body


def metric(service: LiveService, name: str, **labels: str) -> float:
    """The value of one sample of the server's /metrics (0 when absent)."""
    text = httpx.get(f"{service.url}/metrics").text
    total = 0.0
    for match in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, flags=re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[1]))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match[2])
    return total


def server_errors(service: LiveService) -> float:
    text = httpx.get(f"{service.url}/metrics").text
    return sum(
        float(value)
        for value in re.findall(
            r'^mnist_http_requests_total\{.*status="5\d\d".*\} (\S+)$', text, re.M
        )
    )


def test_stalled_headers_get_a_json_408_and_the_connection_closes(service: LiveService) -> None:
    before = metric(service, "mnist_http_requests_total", status="408")
    with connect(service) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ima")
        started = time.monotonic()
        status, headers, body = parse(read_until_closed(connection))
        waited = time.monotonic() - started
    assert status == 408 and headers["connection"] == "close"
    assert "read timeout" in json.loads(body)["error"]
    assert READ_TIMEOUT - 0.05 <= waited < READ_TIMEOUT + 2.0  # libuv timers have 1 ms steps
    assert metric(service, "mnist_http_requests_total", status="408") == before + 1
    assert metric(service, "mnist_rejected_inputs_total", reason="read_timeout") >= 1


@pytest.mark.parametrize(("path", "content_type", "body"), ROUTES, ids=["predict", "infer"])
def test_a_stalled_body_gets_a_json_408_and_the_connection_closes(
    service: LiveService, path: str, content_type: str, body: bytes
) -> None:
    before = metric(service, "mnist_http_requests_total", route=TEMPLATES[path], status="408")
    with connect(service) as connection:
        connection.sendall(request_head(path, content_type, content_length=str(len(body))))
        connection.sendall(body[:10])
        status, headers, answer = parse(read_until_closed(connection))
    assert status == 408 and headers["connection"] == "close"
    assert "stalled for longer than the read timeout after 10 bytes" in json.loads(answer)["error"]
    assert (
        metric(service, "mnist_http_requests_total", route=TEMPLATES[path], status="408")
        == before + 1
    )
    assert server_errors(service) == 0


def test_a_body_trickled_faster_than_the_timeout_is_served(service: LiveService) -> None:
    image = valid_png()
    piece = len(image) // 4 + 1
    connection = service.connect()
    try:
        connection.send(request_head("/predict", "image/png", content_length=str(len(image))))
        for start in range(0, len(image), piece):
            time.sleep(READ_TIMEOUT / 2)
            connection.send(image[start : start + piece])
        status, answer = connection.read_response()
    finally:
        connection.close()
    assert status == 200, answer
    assert (len(image) // piece + 1) * READ_TIMEOUT / 2 > READ_TIMEOUT  # longer than a timeout


@pytest.mark.parametrize(("path", "content_type", "body"), ROUTES, ids=["predict", "infer"])
def test_a_client_that_hangs_up_mid_body_is_a_499_not_an_error(
    service: LiveService, path: str, content_type: str, body: bytes
) -> None:
    before = metric(service, "mnist_http_requests_total", route=TEMPLATES[path], status="499")
    with connect(service) as connection:
        connection.sendall(request_head(path, content_type, content_length=str(len(body))))
        connection.sendall(body[:10])
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while (
        metric(service, "mnist_http_requests_total", route=TEMPLATES[path], status="499") == before
    ):
        assert time.monotonic() < deadline, service.log_text()
        time.sleep(0.05)
    assert metric(service, "mnist_rejected_inputs_total", reason="client_closed_request") >= 1
    assert server_errors(service) == 0
    service.wait_for_log(f"INFO service.access: POST {path} 499 ")
    assert "Traceback" not in service.log_text()
    assert "unhandled" not in service.log_text()


def test_idle_connections_are_closed_after_the_keep_alive_timeout(service: LiveService) -> None:
    """One that never sent a byte, and one idle after a response: both closed, neither answered."""
    image = valid_png()
    served = service.connect()
    with connect(service) as silent:
        served.send(request_head("/predict", "image/png", content_length=str(len(image))) + image)
        assert served.read_response()[0] == 200
        started = time.monotonic()
        assert read_until_closed(silent) == b""
        assert read_until_closed(served.socket) == b""
        waited = time.monotonic() - started
    served.close()
    assert KEEP_ALIVE_TIMEOUT - 0.5 <= waited < KEEP_ALIVE_TIMEOUT + 2.0


BIG_BODY = 256 * 1024  # over uvicorn's 64 KiB buffer: the app reads this body as it streams


@pytest.mark.parametrize("then", ["hang-up", "stall"])
def test_a_streamed_body_that_stops_is_refused_by_the_app_as_well(
    service: LiveService, then: str
) -> None:
    """Once the app reads a large body, it answers the stall (408) or the hang-up (499) itself."""
    status = "499" if then == "hang-up" else "408"
    before = metric(service, "mnist_http_requests_total", route="/predict", status=status)
    with connect(service) as connection:
        head = request_head("/predict", "image/png", content_length=str(BIG_BODY))
        connection.sendall(head + valid_png() + bytes(128 * 1024))
        if then == "stall":
            code, headers, answer = parse(read_until_closed(connection))
            assert code == 408 and headers["connection"] == "close"
            assert "stalled for longer than the read timeout" in json.loads(answer)["error"]
    deadline = time.monotonic() + 10
    while metric(service, "mnist_http_requests_total", route="/predict", status=status) == before:
        assert time.monotonic() < deadline, service.log_text()
        time.sleep(0.05)
    assert server_errors(service) == 0
    assert "Traceback" not in service.log_text()
