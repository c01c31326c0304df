"""The in-flight memory budget on a live server: 64 concurrent maximal requests over REST (the
largest batch as binary data, a 31 MiB batch too large, 31 MiB of JSON that is costly to parse,
the same gzipped to 32 KB, /predict with 64 large PNGs) keep the server's resident memory under
its baseline plus MNIST_MAX_INFLIGHT_BYTES plus a stated margin; every request gets 200, 413
or 503 + Retry-After; liveness answers throughout; memory returns near the baseline after.
"""

import asyncio
import contextlib
import gzip
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.support.event_loop import run_on_own_thread
from tests.support.images import png_bytes
from tests.support.live_server import LiveService, live_service
from tests.support.memory import PeakSampler, resident_kib
from tests.support.multipart import multipart
from tests.support.probes import Prober

MiB = 1024 * 1024
BUDGET = 192 * MiB  # MNIST_MAX_INFLIGHT_BYTES's default
# What the budget does not count: each waiting connection's buffered head and first 64 KiB of
# body in uvicorn, the allocator's slack, worker threads' stacks.
MARGIN = 64 * MiB
# Freed memory the allocator keeps for the next requests once the flood has passed.
SETTLED_MARGIN = 48 * MiB
CONCURRENT = 64
INFER = "/v2/models/mnist_mlp/infer"


def raw_request(path: str, body: bytes, content_type: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def binary_infer(count: int) -> bytes:
    size = count * 784
    tensor = {"name": "image", "shape": [count, 28, 28], "datatype": "UINT8"}
    header = orjson.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": size}}]})
    body = header + np.zeros(size, dtype=np.uint8).tobytes()
    return raw_request(
        INFER, body, "application/json", inference_header_content_length=str(len(header))
    )


def maximal_requests() -> dict[str, bytes]:
    """The kinds of maximal request, each at most MNIST_MAX_REQUEST_BYTES (32 MiB)."""
    empty_lists = b"[" + b"[]," * (31 * MiB // 3) + b"[]]"
    noise = np.random.default_rng(0).integers(0, 256, size=(700, 700), dtype=np.uint8)
    image = png_bytes(noise)  # ~490 KB that do not compress; 1.5 MB to decode
    upload, headers = multipart([("files", f"{n}.png", image) for n in range(64)])
    return {
        "largest batch": binary_infer(16_384),
        "batch too large": binary_infer(31 * MiB // 784),
        "costly json": raw_request(INFER, empty_lists, "application/json"),
        "gzipped json": raw_request(
            INFER, gzip.compress(empty_lists), "application/json", content_encoding="gzip"
        ),
        "64 images": raw_request("/predict", upload, headers["content-type"]),
    }


def _small_upload() -> tuple[bytes, str]:
    """A normal client's request: one 28x28 PNG."""
    body, headers = multipart([("file", "digit.png", png_bytes(np.zeros((28, 28), np.uint8)))])
    return body, headers["content-type"]


async def exchange(port: int, request: bytes) -> tuple[int, str | None]:
    """Send one request and read its answer to the end: the status and any Retry-After; status
    0 (and what went wrong) when the connection broke before an answer arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    response = b""
    broken = None
    try:
        writer.write(request)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        while chunk := await reader.read(65536):
            response += chunk
    except ConnectionError as error:
        broken = repr(error)
    finally:
        writer.close()
    if not response.startswith(b"HTTP/1.1 "):
        return 0, f"{broken}, {len(response)} bytes: {response[:40]!r}"
    head = response.split(b"\r\n\r\n", 1)[0]
    retry_after = re.search(rb"(?im)^retry-after: *(\S+)", head)
    return int(head.split(b" ", 2)[1]), retry_after[1].decode() if retry_after else None


async def flood(port: int, requests: list[bytes]) -> Counter:
    answers = await asyncio.gather(*(exchange(port, request) for request in requests))
    assert all(retry == "1" for status, retry in answers if status == 503)
    assert [broken for status, broken in answers if status == 0] == []
    return Counter(status for status, _ in answers)


@pytest.fixture(scope="module")
def service(shipped_model_path: Path) -> Iterator[LiveService]:
    with live_service(shipped_model_path) as service:
        yield service


def test_64_concurrent_maximal_requests_stay_within_the_budget(service: LiveService) -> None:
    kinds = maximal_requests()
    pid = service.process.pid
    for request in kinds.values():  # one of each first: what stays allocated is the baseline
        run_on_own_thread(exchange(service.port, request))
    baseline = resident_kib(pid) * 1024
    requests = [request for request in kinds.values() for _ in range(CONCURRENT // len(kinds))]
    requests += list(kinds.values())[: CONCURRENT - len(requests)]
    small = ("/predict", *_small_upload())
    prober = Prober(service.url, ["/v2/health/live"], posts=[small])
    with PeakSampler(pid) as sampler, prober as probe:
        statuses = run_on_own_thread(flood(service.port, requests))
    peak = sampler.peak_kib * 1024
    time.sleep(1.0)
    settled = resident_kib(pid) * 1024
    grown = (peak - baseline) / MiB
    print(
        f"\nbaseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB (+{grown:.0f} MiB; "
        f"budget {BUDGET / MiB:.0f} MiB), settled {settled / MiB:.0f} MiB; statuses "
        f"{dict(statuses)}; liveness and a small /predict: {len(probe.latencies)} answers, slowest "
        f"{max(probe.latencies) * 1000:.0f} ms, failures {probe.failures}"
    )
    assert set(statuses) <= {200, 413, 503}
    assert statuses[200] >= 1
    assert probe.failures == []
    assert peak - baseline <= BUDGET + MARGIN
    assert settled - baseline <= SETTLED_MARGIN
