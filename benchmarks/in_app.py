"""In-process: CPU µs per ``POST /predict`` for the app itself, each lever moved on its own.

Run: ``python -m benchmarks.in_app`` (about 1 minute). No socket and no uvicorn: each app is
called as ASGI on one uvloop event loop with the same prebuilt one-PNG request, and the figure
is process CPU time per request, which stays within a few per cent on a busy machine where
wrk's figures swing by tens. Rounds interleave the apps; each app's best round counts. Logging
is configured as ``python -m service`` does, into a file. The levers are
benchmarks/variants.py's; the reference is benchmarks/reference_app.py.
"""

import asyncio
import contextlib
import logging
import logging.config
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop
from fastapi import FastAPI

from benchmarks.data import one_digit_infer_request, one_digit_request
from benchmarks.report import conditions, print_table, ratio
from benchmarks.run import parser_for, workspace
from benchmarks.variants import VARIANTS, Variant, patched
from service.rest.app import create_rest_app
from service.rest.server import configure_logging
from service.settings import Settings

ROUTES = {
    "predict": ("/predict", one_digit_request),
    "infer": ("/v2/models/mnist_mlp/infer", one_digit_infer_request),
}
IN_APP_LEVERS = (
    "access log written on the event loop",
    "no metrics",
    "streaming multipart",
    "decode in thread pool",
    "onnxruntime defaults",
)


@dataclass
class Subject:
    """An app under test and the patches to hold while it runs."""

    name: str
    app: FastAPI
    variant: Variant
    state: dict | None = None
    lifespan: asyncio.Task | None = None


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; each app's best counts")
    parser.add_argument(
        "--no-levers", action="store_true", help="only the floor, the reference and shipped"
    )
    parser.add_argument(
        "--route", choices=sorted(ROUTES), default="predict", help="the request to send"
    )
    return parser.parse_args(argv)


def _subjects(model: Path, levers: tuple[str, ...] = IN_APP_LEVERS) -> list[Subject]:
    os.environ["BENCH_MODEL_PATH"] = str(model)
    from benchmarks.floor_app import create_app as create_floor
    from benchmarks.reference_app import create_app as create_reference

    shipped, quiet = Settings(model_path=model), Settings(model_path=model, access_log=False)
    subjects = [
        Subject("floor", create_floor(), Variant()),
        Subject("reference", create_reference(), Variant()),
        Subject("shipped", create_rest_app(shipped), Variant()),
        Subject("access log off", create_rest_app(quiet), Variant()),
    ]
    for name in levers:
        variant = VARIANTS[name]
        app = create_rest_app(shipped)
        if variant.change_app is not None:
            variant.change_app(app)
        subjects.append(Subject(name, app, variant))
    return subjects


async def _start(subject: Subject) -> None:
    """Run the app's lifespan start-up (the model loads here, under the variant's patches)."""
    state: dict = {}
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    with patched(subject.variant):
        subject.lifespan = asyncio.create_task(subject.app(scope, inbox.get, outbox.put))
        message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"{subject.name} did not start: {message}")
    subject.state = state


def _request(body: bytes, content_type: str, path: str = "/predict") -> tuple[dict, Callable]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive


async def _cpu_per_request(subject: Subject, scope: dict, receive, requests: int) -> float:
    statuses: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    with patched(subject.variant):
        started = time.process_time()
        for _ in range(requests):
            await subject.app(dict(scope, state=dict(subject.state)), receive, send)
        seconds = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"{subject.name} answered {sorted(set(statuses))}")
    return seconds / requests


async def measure(subjects: list[Subject], body: tuple[bytes, str], arguments) -> dict[str, float]:
    """Best CPU seconds per request of each subject over interleaved rounds."""
    scope, receive = _request(*body, ROUTES[arguments.route][0])
    for subject in subjects:
        await _start(subject)
        await _cpu_per_request(subject, scope, receive, 100)
    best = {subject.name: float("inf") for subject in subjects}
    for _ in range(arguments.rounds):
        for subject in subjects:
            seconds = await _cpu_per_request(subject, scope, receive, arguments.requests)
            best[subject.name] = min(best[subject.name], seconds)
    return best


def main(argv: list[str] | None = None) -> int:
    """Measure every subject, print one table."""
    arguments = _parse(argv)
    if arguments.quick:
        arguments.requests, arguments.rounds = 50, 1
    with workspace(arguments.model) as (workdir, model, stack):
        stack.enter_context(
            contextlib.redirect_stderr(stack.enter_context((workdir / "log").open("w")))
        )
        configure_logging("info")
        body = ROUTES[arguments.route][1]()
        levers = () if arguments.no_levers else IN_APP_LEVERS
        best = uvloop.run(measure(_subjects(model, levers), body, arguments))
        logging.shutdown()
    shipped, reference, floor = best["shipped"], best["reference"], best["floor"]
    rows = [
        [
            name,
            f"{seconds * 1e6:.1f}",
            ratio(seconds, shipped),
            ratio(seconds, reference),
            ratio(seconds, floor),
        ]
        for name, seconds in best.items()
    ]
    print(f"Conditions: {conditions(model)}; {arguments.requests} requests x {arguments.rounds}")
    print_table(
        f"POST {ROUTES[arguments.route][0]} in-process (ASGI, no network): CPU per request",
        ["app", "CPU µs/request", "vs shipped", "vs reference", "vs floor"],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
