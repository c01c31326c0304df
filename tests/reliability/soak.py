"""Soak test, run on demand (not part of the test suite): ``python -m tests.reliability.soak``.

Starts ``python -m service`` on 127.0.0.1 and keeps 64 connections busy for 60 s with a mix of
valid and hostile requests, while a few slow clients trickle their bodies during the middle third.
Prints requests served, status counts, connection errors, resident memory at the start and end,
and the latency of normal clients with and without the trickle. Exits 1 when a 5xx, a
connection error, an unexpected status or memory growth of 10% or more was seen.
"""

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.settings import DEFAULT_MODEL_PATH
from tests.reliability.payloads import (
    INFER,
    compressed_png,
    image_tensor,
    infer_json,
    png_with_corrupt_pixels,
    valid_infer_json,
    valid_png,
)
from tests.support.images import png_header_claiming
from tests.support.live_server import LiveService, request_head
from tests.support.memory import resident_kib
from tests.support.models import write_model
from tests.support.multipart import multipart

MAX_RSS_GROWTH = 0.10
TRICKLE_BYTES = 8
TRICKLE_PAUSE_SECONDS = 0.2


@dataclass(frozen=True)
class Call:
    """One kind of request in the mix, and the status it must get."""

    name: str
    path: str
    body: bytes
    headers: dict[str, str]
    expected: int


def request_mix() -> list[Call]:
    """About half valid, half hostile: each hostile kind takes a different refusal path."""
    png = {"content-type": "image/png"}
    json = {"content-type": "application/json"}
    four = multipart([("files", f"{index}.png", valid_png()) for index in range(4)])
    out_of_range = infer_json(image_tensor([1, 28, 28], [300] * 784))
    return [
        Call("png", "/predict", valid_png(), png, 200),
        Call("png", "/predict", valid_png(), png, 200),
        Call("form-4-files", "/predict", *four, 200),
        Call("v2-json", INFER, valid_infer_json(), json, 200),
        Call("v2-json-batch-8", INFER, valid_infer_json(8), json, 200),
        Call("text-as-png", "/predict", b"hello", png, 415),
        Call("corrupt-png", "/predict", png_with_corrupt_pixels(), png, 400),
        Call("header-bomb", "/predict", png_header_claiming(2**31, 2**31), png, 413),
        Call("gigapixel-png", "/predict", compressed_png(32768, 32768), png, 413),
        Call("v2-bad-json", INFER, b'{"inputs": [', json, 400),
        Call("v2-out-of-range", INFER, out_of_range, json, 400),
    ]


@dataclass
class Tally:
    """What the clients saw; latencies are (seconds since start, seconds taken)."""

    started: float = field(default_factory=time.monotonic)
    statuses: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    connection_errors: Counter = field(default_factory=Counter)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    trickled: Counter = field(default_factory=Counter)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


async def load_client(client: httpx.AsyncClient, mix: list[Call], tally: Tally, end: float) -> None:
    """One connection's worth of back-to-back requests until ``end``."""
    rng = random.Random()
    while tally.elapsed() < end:
        call = rng.choice(mix)
        sent = time.monotonic()
        try:
            response = await client.post(call.path, content=call.body, headers=call.headers)
        except httpx.TransportError as error:
            tally.connection_errors[type(error).__name__] += 1
            continue
        tally.latencies.append((tally.elapsed(), time.monotonic() - sent))
        tally.statuses[response.status_code] += 1
        if response.status_code != call.expected:
            tally.unexpected[f"{call.name}: {response.status_code}"] += 1


async def trickle_client(port: int, tally: Tally, start: float, end: float) -> None:
    """Uploads a PNG a few bytes at a time, again and again, between ``start`` and ``end``."""
    await asyncio.sleep(start - tally.elapsed())
    image = valid_png()
    head = request_head("/predict", "image/png", content_length=str(len(image)))
    while tally.elapsed() < end:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        for offset in range(0, len(image), TRICKLE_BYTES):
            writer.write(image[offset : offset + TRICKLE_BYTES])
            await writer.drain()
            await asyncio.sleep(TRICKLE_PAUSE_SECONDS)
        status_line = await reader.readline()
        tally.trickled[status_line.split(b" ")[1].decode()] += 1
        writer.close()
        await writer.wait_closed()


async def sample_memory(pid: int, tally: Tally, end: float) -> list[tuple[float, int]]:
    """The server's resident memory once a second."""
    samples = []
    while tally.elapsed() < end:
        samples.append((tally.elapsed(), resident_kib(pid)))
        await asyncio.sleep(1.0)
    return samples


async def soak(service: LiveService, connections: int, trickles: int, duration: float):
    """Run the load, the trickle and the memory sampler together; returns what they saw."""
    mix = request_mix()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=60.0) as client:
        tally = Tally()
        memory = asyncio.create_task(sample_memory(service.process.pid, tally, duration))
        window = (duration / 3, 2 * duration / 3)
        await asyncio.gather(
            *(load_client(client, mix, tally, duration) for _ in range(connections)),
            *(trickle_client(service.port, tally, *window) for _ in range(trickles)),
        )
        return tally, await memory, window


def latency_summary(tally: Tally, inside: bool, window: tuple[float, float]) -> str:
    """Median and 99th percentile of normal requests inside or outside the trickle window."""
    taken = [seconds for at, seconds in tally.latencies if (window[0] <= at < window[1]) == inside]
    if len(taken) < 2:
        return "no requests"
    percentiles = statistics.quantiles(taken, n=100)
    span = window[1] - window[0] if inside else tally.elapsed() - (window[1] - window[0])
    return (
        f"p50 {percentiles[49] * 1000:.1f} ms, p99 {percentiles[98] * 1000:.1f} ms, "
        f"{len(taken) / span:.0f} req/s"
    )


def mean_rss_mib(samples: list[tuple[float, int]], start: float, end: float) -> float:
    return statistics.mean(kib for at, kib in samples if start <= at < end) / 1024


def report(
    tally: Tally, memory: list[tuple[float, int]], window: tuple[float, float], duration: float
) -> bool:
    """Print the figures as a table; True when every criterion held."""
    first, last = mean_rss_mib(memory, 0, 10), mean_rss_mib(memory, duration - 10, duration)
    growth = (last - first) / first
    served = sum(tally.statuses.values())
    server_errors = sum(count for status, count in tally.statuses.items() if status >= 500)
    rows = [
        ("requests served", f"{served} ({served / tally.elapsed():.0f} req/s)"),
        ("status counts", ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))),
        ("5xx responses", str(server_errors)),
        ("connection errors", str(sum(tally.connection_errors.values()))),
        ("unexpected statuses", str(dict(tally.unexpected)) if tally.unexpected else "0"),
        ("RSS first 10 s / last 10 s", f"{first:.1f} / {last:.1f} MiB ({growth:+.1%})"),
        ("latency without trickle", latency_summary(tally, False, window)),
        ("latency during trickle", latency_summary(tally, True, window)),
        ("trickled uploads answered", str(dict(tally.trickled))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return not (server_errors or tally.connection_errors or tally.unexpected) and (
        growth < MAX_RSS_GROWTH
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--trickle-clients", type=int, default=4, help="slow uploaders")
    parser.add_argument(
        "--model-path", type=Path, help="model to serve (default: shipped, else a tiny test model)"
    )
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="mnist-soak-") as directory:
        model_path = arguments.model_path or (
            DEFAULT_MODEL_PATH if DEFAULT_MODEL_PATH.exists() else write_model(Path(directory))
        )
        service = LiveService(model_path)
        try:
            service.wait_until_ready()
            print(f"serving {model_path} at {service.url}, pid {service.process.pid}")
            tally, memory, window = asyncio.run(
                soak(service, arguments.connections, arguments.trickle_clients, arguments.duration)
            )
        finally:
            exit_code = service.stop()
    passed = report(tally, memory, window, arguments.duration)
    print(f"service exit code after SIGTERM: {exit_code}")
    return 0 if passed and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
