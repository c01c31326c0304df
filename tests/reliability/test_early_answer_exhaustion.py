"""1,000 early-answered tricklers with API keys on (issue 20's connection exhaustion).

Each client sends an unauthenticated POST that expects ``100 Continue``, gets its 401 before
its body, then goes on sending a byte of the body every quarter of MNIST_LINGER_TIMEOUT (half
of them), or a few bytes and nothing more (the other half): before lingering, every such
connection stayed open for good, and ~1,100 of them took every socket of a server limited to
1,024 file descriptors. Here the quiet ones must be closed within MNIST_LINGER_TIMEOUT (1 s) and
the trickling ones within MNIST_LINGER_SECONDS (3 s), plus slack, while health and keyed
requests keep being answered. About 10 s in all.
"""

import asyncio
import contextlib
import json
import time
from collections import Counter
from pathlib import Path

from tests.reliability.abuse import ensure_file_descriptors
from tests.support.event_loop import run_on_own_thread
from tests.support.live_server import live_service, request_head
from tests.support.probes import Prober
from tests.support.tcp import held_ports

CLIENTS = 1_000
LINGER_TIMEOUT = 1.0
LINGER_SECONDS = 3.0
SLACK_SECONDS = 6.0  # 1,000 clients on a shared 2-core machine
KEY = "exhaustion-key"
PATH = "/v2/models/mnist_mlp/infer"


async def early_answered(
    port: int, trickles: bool, outcomes: Counter, stop: asyncio.Event
) -> tuple[int, asyncio.StreamWriter]:
    """One client: its 401 before its body, then a few bytes of the body and (if it trickles)
    a byte every quarter of the linger timeout, until told to stop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = request_head(PATH, "application/json", content_length="100000", expect="100-continue")
    writer.write(head)
    answer = await reader.readuntil(b"\r\n\r\n")
    outcomes[answer.split(b" ", 2)[1].decode()] += 1
    writer.write(b"{" * 107)
    if trickles:
        asyncio.get_running_loop().create_task(trickle(writer, stop))
    return writer.get_extra_info("sockname")[1], writer


async def trickle(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    with contextlib.suppress(ConnectionError):
        while not stop.is_set() and not writer.is_closing():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LINGER_TIMEOUT / 4)
            writer.write(b"{")
            await writer.drain()


async def released_after(port: int, client_ports: set[int], limit: float) -> float:
    """Seconds until the server holds none of ``client_ports`` (``limit`` at most)."""
    started = time.monotonic()
    while held_ports(port) & client_ports and time.monotonic() - started < limit:
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def crowd(port: int, outcomes: Counter) -> tuple[float, float]:
    """Every client at once; once all have their answer, how long until the server has closed
    the quiet ones, and the trickling ones."""
    stop = asyncio.Event()
    clients = [early_answered(port, number % 2 == 1, outcomes, stop) for number in range(CLIENTS)]
    connected = await asyncio.gather(*clients)
    quiet = {client_port for client_port, _ in connected[0::2]}
    trickling = {client_port for client_port, _ in connected[1::2]}
    limit = LINGER_SECONDS + SLACK_SECONDS + 5
    quiet_closed, trickling_closed = await asyncio.gather(
        released_after(port, quiet, limit), released_after(port, trickling, limit)
    )
    stop.set()
    await asyncio.sleep(0.1)
    for _, writer in connected:
        writer.transport.abort()
    return quiet_closed, trickling_closed


def test_a_thousand_early_answered_tricklers_are_closed_within_the_bounds(
    model_path: Path,
) -> None:
    ensure_file_descriptors(2 * CLIENTS + 200)
    settings = {
        "api_keys": json.dumps([KEY]),
        "linger_timeout": str(LINGER_TIMEOUT),
        "linger_seconds": str(LINGER_SECONDS),
    }
    outcomes: Counter = Counter()
    with live_service(model_path, **settings) as service:
        keyed = ["/v2/health/live", "/v2/health/ready", "/v2/models/mnist_mlp"]
        with Prober(service.url, keyed, {"Authorization": f"Bearer {KEY}"}) as probe:
            quiet_closed, trickling_closed = run_on_own_thread(crowd(service.port, outcomes))
    print(
        f"\n{dict(outcomes)}; closed by the server {quiet_closed:.1f} s (quiet) and "
        f"{trickling_closed:.1f} s (trickling) after the last answer; keyed probes: "
        f"{len(probe.latencies)} answered, slowest {max(probe.latencies) * 1000:.0f} ms, "
        f"failures {probe.failures[:3]}"
    )
    assert outcomes == {"401": CLIENTS}
    assert probe.failures == []
    assert len(probe.latencies) >= 3
    assert quiet_closed < LINGER_TIMEOUT + SLACK_SECONDS
    assert trickling_closed < LINGER_SECONDS + SLACK_SECONDS
