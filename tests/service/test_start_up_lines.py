"""What ``mnist-mlp-serve`` says when it starts: the default version by name, and one line,
naming the setting to change, for a bad setting or a port already taken; never a traceback."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.inference.repository import ModelRepository
from tests.support.models import write_model
from tests.support.ports import bound_listener, free_port
from tests.support.repositories import two_versions

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def serve(model_path: Path, **settings: str) -> subprocess.CompletedProcess:
    """``python -m service`` with only these MNIST_* settings, until it exits by itself."""
    return serve_command([], model_path, **settings)


def serve_command(
    arguments: list[str], model_path: Path, **settings: str
) -> subprocess.CompletedProcess:
    """``python -m service ARGUMENTS`` with only these MNIST_* settings."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("MNIST_")
    }
    environment.update({"MNIST_MODEL_PATH": str(model_path), "MNIST_HOST": "127.0.0.1"})
    environment.update({f"MNIST_{name.upper()}": value for name, value in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "service", *arguments],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line(result: subprocess.CompletedProcess, status: int, expected: str) -> None:
    """The last stderr line is the whole error (the lines above it are the models' loading)."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == f"mnist-mlp-serve: {expected}"


def test_the_start_up_line_names_the_default_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.repository"):
        ModelRepository(two_versions(tmp_path)).load_all()

    assert "serving model mnist_mlp versions 1, 2 (default 2)" in caplog.messages


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_a_port_in_use_is_one_line_naming_its_setting(tmp_path: Path, transport: str) -> None:
    listener, taken = bound_listener()
    with listener:
        listener.listen()
        ports = {"port": taken, "grpc_port": free_port()}
        if transport == "grpc":
            ports = {"port": free_port(), "grpc_port": taken}
        result = serve(write_model(tmp_path), **{name: str(port) for name, port in ports.items()})

    setting = {
        "grpc": "MNIST_GRPC_PORT (--grpc-port), or serve REST alone: MNIST_GRPC_ENABLED=false",
        "rest": "MNIST_PORT (--port)",
    }[transport]
    assert_one_line(
        result, 1, f"127.0.0.1:{taken} is already in use; choose another port with {setting}"
    )


def test_a_host_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    result = serve(write_model(tmp_path), host="no-such-host.invalid", port="0", grpc_port="0")

    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "mnist-mlp-serve: MNIST_HOST 'no-such-host.invalid' does not resolve: "
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"api_keys": "key-1,key-2"},
         'MNIST_API_KEYS is not valid JSON; give a list as JSON, such as ["a", "b"]'),
        ({"cors_origins": "https://example.org"},
         "MNIST_CORS_ORIGINS is not valid JSON; give a list"),
        ({"port": "eighty"}, "MNIST_PORT: Input should be a valid integer"),
        ({"grpc_enabled": "maybe"}, "MNIST_GRPC_ENABLED: Input should be a valid boolean"),
        ({"log_level": "loud"}, "MNIST_LOG_LEVEL: Input should be 'critical', 'error'"),
        ({"max_image_bytes": "99999999999"},
         "MNIST_MAX_IMAGE_BYTES cannot exceed MNIST_MAX_REQUEST_BYTES"),
        ({"api_keys": '["with space"]'}, "MNIST_API_KEYS: a key must be non-empty"),
        ({"port": "-1", "workers": "0"},
         "MNIST_PORT: Input should be greater than or equal to 0; MNIST_WORKERS: Input should"),
    ],
    ids=["api-keys", "cors-origins", "port", "grpc-enabled", "log-level", "image-bytes",
         "key-with-space", "two-at-once"],
)  # fmt: skip
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, settings: dict[str, str], expected: str
) -> None:
    result = serve(tmp_path / "never-read.onnx", **settings)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"mnist-mlp-serve: invalid setting: {expected}"), line


def test_the_repository_flag_wins_over_a_model_path_in_the_environment(tmp_path: Path) -> None:
    """The empty folder named by the flag is what the service reads (and refuses), not the
    loadable MNIST_MODEL_PATH of the environment (the busy port would stop that one)."""
    (tmp_path / "model").mkdir()
    listener, taken = bound_listener()
    with listener:
        listener.listen()
        result = serve_command(
            ["--model-repository", str(tmp_path)],
            model_path=write_model(tmp_path / "model"),
            port=str(taken),
        )

    assert_one_line(result, 1, f"model repository {tmp_path}: no *.onnx model in it")
