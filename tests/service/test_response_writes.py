"""A response's head goes out with its body in one write, and every kind of response still
arrives whole: small, large, bodiless (HEAD), after ``100 Continue``."""

import gc
from pathlib import Path

import httpx
import numpy as np
from fastapi.testclient import TestClient

from service.app import create_app
from service.heap import YOUNG_COLLECTION_ALLOCATIONS
from service.rest.uvicorn_hooks import CONTINUE, HeadWithBody
from service.settings import Settings
from tests.support.images import mnist_like, png_bytes
from tests.support.live_server import live_service, start_upload
from tests.support.repositories import infer_body

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """What was written, one entry a ``write``; closed or not."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


def test_the_head_waits_for_the_body_and_both_go_in_one_write() -> None:
    transport = RecordingTransport()
    writer = HeadWithBody(transport)
    writer.write(CONTINUE)
    writer.write(HEAD)
    assert transport.writes == [CONTINUE]
    writer.write(b"{}")
    writer.write(b"more")
    assert transport.writes == [CONTINUE, HEAD + b"{}", b"more"]
    assert writer.get_extra_info("peername") == "extra peername"


def test_a_large_body_is_not_copied_behind_the_head() -> None:
    transport = RecordingTransport()
    writer = HeadWithBody(transport)
    body = bytes(1024 * 1024)
    writer.write(HEAD)
    writer.write(body)
    assert transport.writes == [HEAD, body]


def test_a_head_without_a_body_goes_out_on_flush_or_close() -> None:
    flushed, closed = RecordingTransport(), RecordingTransport()
    first = HeadWithBody(flushed)
    first.write(HEAD)
    first.flush()
    assert flushed.writes == [HEAD]
    second = HeadWithBody(closed)
    second.write(HEAD)
    second.close()
    assert (closed.writes, closed.closed) == ([HEAD], True)


def test_every_kind_of_response_arrives_whole_over_a_kept_connection(
    tiny_model_path: Path,
) -> None:
    with live_service(tiny_model_path) as service:
        connection = service.connect()
        # The route takes GET only: a 405 whose head declares a body that HEAD never writes.
        connection.send(b"HEAD /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = connection._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405") and b"content-length: " in head
        connection.send(b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert connection.read_response() == (200, b'{"ready":true}')
        connection.close()
        images = np.stack([mnist_like(seed) for seed in range(2048)])
        large = httpx.post(f"{service.url}/v2/models/mnist_mlp/infer", json=infer_body(images))
        assert large.status_code == 200 and len(large.content) > 64 * 1024
        assert len(large.json()["outputs"][0]["data"]) == 2048 * 10
        upload = start_upload(service, png_bytes(mnist_like(3)))
        upload.send(png_bytes(mnist_like(3)))
        status, answer = upload.read_response()
        upload.close()
    assert status == 200 and b'"predictions"' in answer


def test_the_served_app_freezes_its_start_up_heap_while_it_serves(tiny_model_path: Path) -> None:
    before = gc.get_threshold()
    app = create_app(Settings(model_path=tiny_model_path, grpc_enabled=False, access_log=False))
    with TestClient(app) as client:
        assert client.get("/v2/health/ready").status_code == 200
        serving = gc.get_threshold(), gc.get_freeze_count()
    assert serving[0] == (YOUNG_COLLECTION_ALLOCATIONS, *before[1:])
    assert serving[1] > 10_000
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
