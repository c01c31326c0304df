"""One log format for uvicorn's lines and the service's: text lines, or JSON lines
(``MNIST_LOG_FORMAT=json``) that a log collector parses, from a real ``python -m service``."""

import json
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from service.settings import Settings
from tests.support.live_server import live_service

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S"
)


def serve_a_request_and_stop(model_path: Path, log_format: str) -> list[str]:
    with live_service(model_path, log_format=log_format, access_log="true") as service:
        assert httpx.get(f"{service.url}/v2/health/live").status_code == 200
        service.wait_for_log("/v2/health/live 200")
    return [line for line in service.log if line.strip()]


def test_text_lines_have_one_format_for_uvicorn_and_the_service(tiny_model_path: Path) -> None:
    lines = serve_a_request_and_stop(tiny_model_path, "text")
    assert [line for line in lines if not TEXT_LINE.match(line)] == []
    assert any(" INFO uvicorn.error: Started server process [" in line for line in lines)
    assert any(" INFO service.access: GET /v2/health/live 200 " in line for line in lines)


def test_json_lines_parse_one_object_a_line(tiny_model_path: Path) -> None:
    entries = [json.loads(line) for line in serve_a_request_and_stop(tiny_model_path, "json")]
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message"}
        assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0
    messages = {(entry["logger"], entry["message"].split(" [")[0]) for entry in entries}
    assert ("uvicorn.error", "Started server process") in messages
    assert any(
        entry["logger"] == "service.access"
        and entry["message"].startswith("GET /v2/health/live 200")
        for entry in entries
    )


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml")
