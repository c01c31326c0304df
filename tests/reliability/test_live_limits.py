"""The body size limit on a live server, from raw sockets: it applies while the body is read,
and a declared length over it is refused before the client sends a byte of the body.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.reliability.payloads import INFER, valid_infer_json, valid_png
from tests.support.live_server import LiveService, live_service, request_head

LIMIT = Settings.model_fields["max_request_bytes"].default
CHUNK = 1024 * 1024
ROUTES = [("/predict", "image/png"), (INFER, "application/json")]


@pytest.fixture(scope="module")
def service(model_path: Path) -> Iterator[LiveService]:
    """One live server with the default limits for the module."""
    with live_service(model_path) as running:
        yield running


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def exchange(service: LiveService, *pieces: bytes) -> tuple[int, bytes]:
    """Send the pieces on a fresh connection, then read the first response."""
    connection = service.connect()
    try:
        for piece in pieces:
            connection.send(piece)
        return connection.read_response()
    finally:
        connection.close()


def assert_still_serving(service: LiveService) -> None:
    predicted = httpx.post(
        f"{service.url}/predict", content=valid_png(), headers={"content-type": "image/png"}
    )
    assert predicted.status_code == 200, predicted.text
    inferred = httpx.post(f"{service.url}{INFER}", content=valid_infer_json())
    assert inferred.status_code == 200, inferred.text


@pytest.mark.parametrize(("path", "content_type"), ROUTES)
def test_a_chunked_body_is_refused_once_past_the_limit_before_it_ends(
    service: LiveService, path: str, content_type: str
) -> None:
    """The body never ends, so a 413 can only come from counting bytes as they arrive."""
    head = request_head(path, content_type, transfer_encoding="chunked")
    status, body = exchange(service, head, *[chunk(bytes(CHUNK))] * (LIMIT // CHUNK + 1))
    assert status == 413
    assert f"at most {LIMIT} bytes".encode() in body
    assert_still_serving(service)


@pytest.mark.parametrize(("path", "content_type"), ROUTES)
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    service: LiveService, path: str, content_type: str
) -> None:
    """With ``Expect: 100-continue`` the server must answer 413 instead of inviting the body."""
    declared = 10 * 1024**3
    head = request_head(path, content_type, content_length=str(declared), expect="100-continue")
    status, body = exchange(service, head)
    assert status == 413
    assert f"the request body is {declared} bytes".encode() in body
    assert_still_serving(service)
