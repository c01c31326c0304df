"""Render docs/performance.md from the benchmark result files in docs/benchmarks/*.json.

    python docs/performance.py            rewrite docs/performance.md
    python docs/performance.py --check    exit 1 when it is stale

A result file is one run: its date, machine and command, a title, notes and its tables. A
benchmark writes one when ``BENCHMARK_RECORD_DIR=docs/benchmarks`` is set (benchmarks/report.py);
notes are added by hand. Nothing here is edited in the Markdown: change a result file, render.
"""

import argparse
import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
RESULTS = DOCS / "benchmarks"
OUTPUT = DOCS / "performance.md"
REQUIRED = ("date", "machine", "command", "title", "tables")
BENCHMARKS = (
    (
        "http_predict",
        "the hot routes, one image per request, wrk at 1/8/64 connections, against bare "
        "FastAPI + onnxruntime, the raw-ASGI floor, and the floor inside FastAPI's stack",
    ),
    ("profile_http", "py-spy over a wrk run: a server's CPU µs per request by component"),
    ("in_app", "CPU µs per request in-process (no network), each code lever on its own"),
    ("levers", "the same levers over HTTP with wrk"),
    (
        "unary",
        "one image per call: gRPC ModelInfer vs REST V2 infer and the gRPC floor (grpc.aio with "
        "no checks), one h2load driving all",
    ),
    ("inference", "onnxruntime images/s by batch size"),
    ("bulk", "the 10,000 test images through V2 (gRPC, REST binary and JSON) and `/predict`"),
    ("capacity", "req/s, CPU and memory per pod of 1 or 2 workers; pods for a target rate"),
    ("startup", "process start to ready, RSS/PSS per process after load"),
    ("quantize", "the int8 model: speed and accuracy against fp32"),
)

INTRO = """\
# Performance

<!-- Written by `python docs/performance.py` from docs/benchmarks/*.json: edit those, not this. -->

Every figure below comes from a result file in [`benchmarks/`](benchmarks/) that names its date,
machine and command. The machine is small (2 cores) and shared, so each benchmark measures its
reference in the same run (bare FastAPI + onnxruntime, the raw-ASGI floor
`benchmarks/floor_app.py`, or onnxruntime alone): the ratios are the figures that count; plan
capacity with your own run on your own nodes.

Each benchmark is one command from the checkout (`MNIST_DIR` names the MNIST files; wrk:
`apt-get install -y wrk`; h2load: `apt-get install -y nghttp2-client`); `--help` lists the
options, `--quick` only proves that a script runs. To record a run:
`BENCHMARK_RECORD_DIR=docs/benchmarks python -m benchmarks.<name> ...`, then
`python docs/performance.py`.

"""


def load_results(folder: Path = RESULTS) -> list[dict]:
    """Every result file, newest first; ValueError naming a file that lacks a required key."""
    results = []
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in REQUIRED if not result.get(key)]
        if missing:
            raise ValueError(f"{path.name} lacks {', '.join(missing)}")
        results.append({**result, "file": path.name})
    return sorted(results, key=lambda result: result["date"], reverse=True)


def render_table(table: dict) -> list[str]:
    lines = [f"**{table['title']}**", ""] if table.get("title") else []
    lines.append("| " + " | ".join(table["headers"]) + " |")
    lines.append("| " + " | ".join("---" for _ in table["headers"]) + " |")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
    return [*lines, ""]


def render_result(result: dict) -> list[str]:
    lines = [
        f"## {result['title']}",
        "",
        f"`{result['command']}`  ",
        f"{result['date']}; {result['machine']} ([{result['file']}](benchmarks/{result['file']}))",
        "",
    ]
    for note in result.get("notes", []):
        lines += [note, ""]
    for table in result["tables"]:
        lines += render_table(table)
    return lines


def render(results: list[dict]) -> str:
    lines = [INTRO.rstrip("\n"), "", "| command | measures |", "| --- | --- |"]
    lines += [f"| `python -m benchmarks.{name}` | {what} |" for name, what in BENCHMARKS]
    lines.append("")
    for result in results:
        lines += render_result(result)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report a stale file (exit 1)")
    arguments = parser.parse_args(argv)
    fresh = render(load_results())
    if arguments.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != fresh
        if stale:
            print("docs/performance.md is stale: run python docs/performance.py")
        return int(stale)
    OUTPUT.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
