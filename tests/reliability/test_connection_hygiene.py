"""Connections that always end, on a live server over real sockets (issue 20's probes).

After an answer given before the body was in (404, 401, one given instead of 100 Continue) the
rest of the body is read and discarded, then the connection closes: at once when the client
stops (MNIST_LINGER_TIMEOUT, here 1 s), at MNIST_LINGER_SECONDS (here 2 s) when it trickles on,
and a client that sends all of it reads the whole answer (never a reset). Headers are bounded
(JSON 431), a Content-Length over the limit is a 413 at once, uvicorn's own 400 is JSON, and
access-log lines escape what the client controls.
"""

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.payloads import INFER
from tests.support.live_server import LiveService, live_service, request_head
from tests.support.tcp import held_ports, seconds_until_released

LINGER_TIMEOUT = 1.0
LINGER_SECONDS = 2.0
# Room for a loaded machine between a bound and the close the client sees.
SLACK_SECONDS = 2.0
KEY = "hygiene-key"


@pytest.fixture(scope="module")
def service(model_path: Path) -> Iterator[LiveService]:
    with live_service(
        model_path,
        linger_timeout=str(LINGER_TIMEOUT),
        linger_seconds=str(LINGER_SECONDS),
        api_keys=json.dumps([KEY]),
        access_log="true",
    ) as running:
        yield running


def connect(service: LiveService) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=30.0)


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes, bytes]:
    """One response (status, headers, JSON body) and whatever bytes came after it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before a full response: {received!r}"
        received += chunk
    head, rest = received.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = connection.recv(65536)
        assert chunk, "closed in the middle of a response body"
        rest += chunk
    return int(lines[0].split(" ", 2)[1]), headers, rest[:length], rest[length:]


def seconds_until_closed(connection: socket.socket) -> float:
    """How long until the server closes the connection (reading and dropping what it sends)."""
    started = time.monotonic()
    while connection.recv(65536):
        pass
    return time.monotonic() - started


def early_answered(service: LiveService, path: str, length: int = 100_000) -> socket.socket:
    """A POST answered before its body: it expects 100 Continue, and gets its answer instead."""
    connection = connect(service)
    head = request_head(path, "application/json", content_length=str(length))
    connection.sendall(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
    return connection


def keyed_health(service: LiveService) -> int:
    connection = connect(service)
    connection.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, _, _ = read_response(connection)
    connection.close()
    return status


@pytest.mark.parametrize("path", [INFER, "/no/such/route"], ids=["401", "404"])
def test_a_client_that_goes_quiet_after_an_early_answer_is_closed(
    service: LiveService, path: str
) -> None:
    connection = early_answered(service, path)
    status, headers, body, _ = read_response(connection)
    assert status in (401, 404)
    assert headers["content-type"] == "application/json"
    assert "error" in json.loads(body)
    connection.sendall(b"x" * 107)  # a few bytes of the body, then nothing
    client_port = connection.getsockname()[1]
    assert client_port in held_ports(service.port)  # lingering over the rest
    released = seconds_until_released(service.port, {client_port}, 10)
    assert LINGER_TIMEOUT - 0.2 <= released < LINGER_TIMEOUT + SLACK_SECONDS
    assert keyed_health(service) == 200


def test_a_client_that_trickles_on_is_closed_at_the_linger_bound(service: LiveService) -> None:
    connection = early_answered(service, INFER)
    status, _, _, _ = read_response(connection)
    assert status == 401
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < LINGER_SECONDS + SLACK_SECONDS + 1:
        try:
            connection.sendall(b"x")
        except OSError:
            closed = True
            break
        time.sleep(LINGER_TIMEOUT / 4)
    lingered = time.monotonic() - started
    assert closed
    assert LINGER_SECONDS - 0.5 <= lingered < LINGER_SECONDS + SLACK_SECONDS + 1


def test_a_client_that_sends_its_whole_body_reads_the_whole_answer(service: LiveService) -> None:
    """Connection: close and 2 MiB sent after the answer: closing at once would reset the
    connection under the client's feet; lingering lets it finish and read the 401."""
    body = b"x" * (2 * 1024 * 1024)
    connection = connect(service)
    head = request_head(INFER, "application/json", content_length=str(len(body)))
    connection.sendall(head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + body)
    status, _, answer, _ = read_response(connection)
    assert status == 401
    assert json.loads(answer)["error"]
    assert seconds_until_closed(connection) < SLACK_SECONDS


def test_a_declared_length_over_the_limit_is_a_413_at_once(service: LiveService) -> None:
    """Not the 408 after the read timeout that a request held until its body is in would get."""
    connection = connect(service)
    head = request_head(
        INFER, "application/json", content_length=str(10**10), authorization=f"Bearer {KEY}"
    )
    connection.sendall(head + b'{"inputs": [')
    connection.settimeout(SLACK_SECONDS + 1)
    status, _, body, _ = read_response(connection)
    assert status == 413
    assert json.loads(body)["error"].startswith("the request body is 10000000000 bytes")
    assert seconds_until_closed(connection) < LINGER_TIMEOUT + SLACK_SECONDS


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (b"X-Big: " + b"a" * (16 * 1024 * 1024) + b"\r\n", "larger than 32768 bytes"),
        (b"".join(b"X-%d: 1\r\n" % n for n in range(200)), "more than 100 header lines"),
        (b"X-Big: " + b"a" * 40_000 + b"\r\n", "larger than 32768 bytes"),
    ],
    ids=["16 MB header", "200 headers", "40 KB header in one piece"],
)
def test_headers_over_bounds_get_a_json_431_and_the_connection_closes(
    service: LiveService, extra: bytes, expected: str
) -> None:
    connection = connect(service)
    # The server may close while the rest is still being sent: its answer was written first.
    with contextlib.suppress(OSError):
        connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    status, headers, body, _ = read_response(connection)
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert expected in json.loads(body)["error"]
    assert seconds_until_closed(connection) < SLACK_SECONDS
    assert keyed_health(service) == 200


def test_a_request_uvicorn_cannot_parse_gets_a_json_400(service: LiveService) -> None:
    connection = connect(service)
    connection.sendall(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body, _ = read_response(connection)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "the request is not valid HTTP/1.1; it was not processed"}


def test_access_log_lines_escape_line_breaks_and_terminal_escapes(service: LiveService) -> None:
    connection = connect(service)
    connection.sendall(
        b"GET /forged%0aGET%20/v2/health/live%20200%1b[31m HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, _, _, _ = read_response(connection)
    assert status == 401
    deadline = time.monotonic() + 5
    while "/forged" not in service.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    (line,) = [line for line in service.log if "/forged" in line]
    assert "GET /forged%0AGET /v2/health/live 200%1B[31m 401" in line
    assert "\x1b" not in service.log_text()


def test_lingering_outlasts_the_keep_alive_timeout(model_path: Path) -> None:
    """uvicorn arms its 5 s keep-alive timer when a response completes: it must not cut a
    client of ``Connection: close`` that is still sending its body, at a byte a second, within
    the linger bounds (defaults: 5 s without a byte, 30 s in all)."""
    with live_service(model_path, api_keys=json.dumps([KEY])) as service:
        connection = connect(service)
        head = request_head(INFER, "application/json", content_length="100000")
        extra = b"\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        connection.sendall(head.replace(b"\r\n\r\n", extra))
        status, _, _, _ = read_response(connection)
        assert status == 401
        started = time.monotonic()
        while time.monotonic() - started < 6.5:
            connection.sendall(b"x")
            time.sleep(1.0)
        assert connection.getsockname()[1] in held_ports(service.port)
        connection.close()
