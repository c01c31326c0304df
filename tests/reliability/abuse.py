"""The abuse scenario: slow and vanishing clients at once, beside one normal client.

``python -m tests.reliability.abuse`` runs it on demand and prints its figures (the README's
Reliability section quotes them); ``test_abuse.py`` runs the same scenario and checks it. It
starts ``python -m service`` on 127.0.0.1, measures a normal client alone, then again while
1,000 clients trickle a request body a byte every 2 s and 300 clients send headers and a few
bytes and hang up (three waves of them), then lets every abuser go and measures memory again;
then all of it once more, to tell a high-water mark from a leak. Everything is bounded: a fixed
number of clients and requests, about 25 s in all.
"""

import argparse
import asyncio
import contextlib
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from service.settings import DEFAULT_MODEL_PATH
from tests.reliability.payloads import valid_png
from tests.reliability.soak import resident_kib
from tests.support.event_loop import run_on_own_thread
from tests.support.live_server import LiveService, request_head
from tests.support.models import write_model

TRICKLERS = 1_000
VANISHERS = 300
VANISHING_WAVES = 3
TRICKLE_PAUSE_SECONDS = 2.0
NORMAL_REQUESTS = 150  # alone, and again in all under abuse
NORMAL_PAUSE_SECONDS = 0.04  # paced, so both phases sample the same stretch of time
ABUSE_SECONDS = 8.0
ROUNDS = 2
SETTLE_SECONDS = 20.0
SPARE_FILE_DESCRIPTORS = 200
ABUSERS = TRICKLERS + VANISHERS * VANISHING_WAVES
STATUS_COUNT = re.compile(
    r"^mnist_http_requests_total\{(?P<labels>.*)\} (?P<value>[0-9.e+]+)$", re.M
)


@dataclass
class AbuseReport:
    """What the scenario measured; latencies in seconds, memory in KiB."""

    alone: list[float] = field(default_factory=list)
    abused: list[float] = field(default_factory=list)
    normal_statuses: Counter = field(default_factory=Counter)
    trickle_outcomes: Counter = field(default_factory=Counter)
    vanished: int = 0
    memory_before: int = 0
    memory_peak: int = 0
    memory_after: list[int] = field(default_factory=list)  # after each round
    server_statuses: Counter = field(default_factory=Counter)
    log: str = ""

    @staticmethod
    def p90(latencies: list[float]) -> float:
        return statistics.quantiles(latencies, n=10)[8]

    def rows(self) -> list[tuple[str, str]]:
        p90_alone, p90_abused = self.p90(self.alone), self.p90(self.abused)
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.server_statuses.items()))
        return [
            ("normal client p90 alone", f"{p90_alone * 1000:.2f} ms ({len(self.alone)} requests)"),
            (
                "normal client p90 under abuse",
                f"{p90_abused * 1000:.2f} ms ({len(self.abused)} requests, "
                f"{p90_abused / p90_alone:.1f}x alone)",
            ),
            ("normal client statuses", str(dict(self.normal_statuses))),
            ("trickling clients", f"{TRICKLERS} x {ROUNDS} rounds: {dict(self.trickle_outcomes)}"),
            (
                "vanishing clients",
                f"{VANISHERS} x {VANISHING_WAVES} waves x {ROUNDS} rounds: {self.vanished}",
            ),
            (
                "resident memory before / peak / after each round",
                f"{self.memory_before / 1024:.1f} / {self.memory_peak / 1024:.1f} / "
                + " / ".join(f"{kib / 1024:.1f}" for kib in self.memory_after)
                + f" MiB ({self.memory_growth():+.1%}, then {self.repeat_growth():+.1%})",
            ),
            ("server's request counts by status", statuses),
            ("tracebacks in the log", str(self.log.count("Traceback"))),
        ]

    def memory_growth(self) -> float:
        """After the first round, against before it."""
        return (self.memory_after[0] - self.memory_before) / self.memory_before

    def repeat_growth(self) -> float:
        """After the last round, against after the first: what a repeat adds."""
        return (self.memory_after[-1] - self.memory_after[0]) / self.memory_after[0]


def ensure_file_descriptors(needed: int) -> None:
    """Raise the soft limit towards the hard one; the server, started after, inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise OSError(f"the scenario needs {needed} file descriptors; this process may have {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class NormalClient:
    """POSTs a 28x28 PNG over one keep-alive connection per run, the way a script would."""

    def __init__(self, port: int) -> None:
        self.port = port
        image = valid_png()
        self.request = request_head("/predict", "image/png", content_length=str(len(image))) + image

    async def run(self, count: int, report: AbuseReport, latencies: list[float]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            for _ in range(count):
                started = time.perf_counter()
                writer.write(self.request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                report.normal_statuses[int(head.split(b" ", 2)[1])] += 1
                await asyncio.sleep(NORMAL_PAUSE_SECONDS)
        finally:
            writer.close()


async def trickle(port: int, stop: asyncio.Event, report: AbuseReport) -> None:
    """Send a request head, then one body byte every 2 s until told to go; then hang up."""
    head = request_head("/predict", "image/png", content_length="100000")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as error:
        report.trickle_outcomes[f"could not connect: {type(error).__name__}"] += 1
        return
    answer = asyncio.create_task(reader.read(64))
    writer.write(head)
    while not stop.is_set() and not answer.done():
        writer.write(b"\x89")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TRICKLE_PAUSE_SECONDS)
    if answer.done():
        first_line = answer.result().split(b"\r\n", 1)[0].decode(errors="replace")
        report.trickle_outcomes[f"answered early: {first_line or 'closed'}"] += 1
    else:
        answer.cancel()
        report.trickle_outcomes["hung up"] += 1
    writer.transport.abort()


async def vanish(port: int, report: AbuseReport) -> None:
    """Headers and a few bytes of body, then gone, as a client that crashed or lost the network."""
    head = request_head("/predict", "image/png", content_length="4096")
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + b"\x89PNG\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.transport.abort()
    report.vanished += 1


async def sample_peak(pid: int, report: AbuseReport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        report.memory_peak = max(report.memory_peak, resident_kib(pid))
        await asyncio.sleep(0.25)


async def abuse(service: LiveService, report: AbuseReport) -> None:
    """The normal client alone, then under abuse twice, with memory read after each round."""
    client = NormalClient(service.port)
    await client.run(20, report, [])  # warm up
    await client.run(NORMAL_REQUESTS, report, report.alone)
    report.memory_before = resident_kib(service.process.pid)
    for round_number in range(ROUNDS):
        await abuse_round(service, client, report)
        await settle(service, report, expected_abusers=(round_number + 1) * ABUSERS)
        report.memory_after.append(resident_kib(service.process.pid))


async def abuse_round(service: LiveService, client: NormalClient, report: AbuseReport) -> None:
    """Tricklers and waves of vanishers at once, while the normal client keeps going."""
    stop = asyncio.Event()
    peak = asyncio.create_task(sample_peak(service.process.pid, report, stop))
    tricklers = [asyncio.create_task(trickle(service.port, stop, report)) for _ in range(TRICKLERS)]
    started = time.monotonic()
    normal = asyncio.create_task(client.run(NORMAL_REQUESTS // ROUNDS, report, report.abused))
    for _ in range(VANISHING_WAVES):
        await asyncio.gather(*(vanish(service.port, report) for _ in range(VANISHERS)))
        await asyncio.sleep(ABUSE_SECONDS / (VANISHING_WAVES + 1))
    await normal
    await asyncio.sleep(max(0.0, ABUSE_SECONDS - (time.monotonic() - started)))
    stop.set()
    await asyncio.gather(*tricklers, peak)


async def settle(service: LiveService, report: AbuseReport, expected_abusers: int) -> None:
    """Wait until the server has counted every abuser's request so far (then 1 s more)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        report.server_statuses = await server_statuses(service.port)
        if report.server_statuses[499] >= expected_abusers:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)


async def server_statuses(port: int) -> Counter:
    """Requests by status, summed over routes, from the server's own /metrics."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    counts: Counter = Counter()
    for match in STATUS_COUNT.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("route") != "/metrics":
            counts[int(labels["status"])] += int(float(match["value"]))
    return counts


def run_scenario(model_path: Path, **settings: str) -> AbuseReport:
    """Start the service, run the scenario on a loop of its own thread, stop the service."""
    ensure_file_descriptors(2 * (TRICKLERS + VANISHERS) + SPARE_FILE_DESCRIPTORS)
    report = AbuseReport()
    service = LiveService(model_path, **{"access_log": "true", **settings})
    try:
        service.wait_until_ready()
        run_on_own_thread(abuse(service, report))
    finally:
        service.stop()
        report.log = service.log_text()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-path", type=Path, help="default: the shipped model, else a tiny test model"
    )
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        shipped = DEFAULT_MODEL_PATH if DEFAULT_MODEL_PATH.exists() else None
        model_path = arguments.model_path or shipped or write_model(Path(folder))
        report = run_scenario(model_path)
    rows = report.rows()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
