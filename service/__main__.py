"""``python -m service``: check the model, then serve it over REST and gRPC."""

import argparse
import os
import re
import signal
import socket
import sys

from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.app import create_app
from service.inference.errors import describe_validation_errors
from service.inference.model_card import ModelLoadError
from service.inference.repository import open_repository
from service.inference.tracing import TracingUnavailable, check_installed
from service.rest.server import configure_logging, serve
from service.settings import Settings


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mnist-mlp-serve",
        description="Serve the MNIST models. Every setting is also an MNIST_* environment "
        "variable (MNIST_MODEL_REPOSITORY, MNIST_HOST, MNIST_PORT, MNIST_WORKERS, "
        "MNIST_LOG_LEVEL, ...); flags given here win. SIGHUP reloads the models from disk.",
    )
    parser.add_argument(
        "--model-repository",
        help="folder of ONNX models with their JSON cards, every version served "
        "(default: the shipped models/)",
    )
    parser.add_argument(
        "--model-path", help="serve only this ONNX model instead of the repository (default: unset)"
    )
    parser.add_argument("--host", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default: 8000)")
    parser.add_argument("--grpc-port", type=int, help="gRPC port to bind (default: 8001)")
    parser.add_argument("--workers", type=int, help="worker processes (default: 1)")
    return parser.parse_args(argv)


def _settings(arguments: argparse.Namespace) -> Settings:
    """Flags win over the environment; they are exported so that worker processes see them too."""
    overrides = {name: value for name, value in vars(arguments).items() if value is not None}
    settings = Settings(**overrides)
    if settings.workers > 1 and settings.grpc_enabled and settings.grpc_port == 0:
        # Each worker binds gRPC itself: port 0 would give each its own; they share one.
        overrides["grpc_port"] = _free_port(settings.host)
    for name, value in overrides.items():
        os.environ[f"MNIST_{name.upper()}"] = str(value)
    return Settings(**overrides)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _unreadable(error: SettingsError) -> str:
    """pydantic-settings' words for a value it could not read (a list that is not JSON), with
    the variable named as the user set it."""
    field = re.search(r'field "(\w+)"', str(error))
    if field is None:
        return str(error)
    example = '["a", "b"]'
    return f"MNIST_{field[1].upper()} is not valid JSON; give a list as JSON, such as {example}"


def main(argv: list[str] | None = None) -> int:
    """Fail fast, with one line naming the file, when the model cannot be served."""
    try:
        settings = _settings(_parse_arguments(argv))
    except ValidationError as error:
        print(
            f"mnist-mlp-serve: invalid setting: {describe_validation_errors(error)}",
            file=sys.stderr,
        )
        return 2
    except SettingsError as error:
        print(f"mnist-mlp-serve: invalid setting: {_unreadable(error)}", file=sys.stderr)
        return 2
    try:
        check_installed()
    except TracingUnavailable as error:
        print(f"mnist-mlp-serve: {error}", file=sys.stderr)
        return 2
    log_config = configure_logging(settings.log_level, settings.log_format)
    try:
        models = open_repository(settings)
    except ModelLoadError as error:
        print(f"mnist-mlp-serve: {error}", file=sys.stderr)
        return 1
    _exit_zero_on_sigterm()
    if settings.workers > 1:
        # The load above was the check; each worker loads its own, so this process keeps none.
        models = None
    serve(settings, models, log_config, create_app)
    return 0


def _exit_zero_on_sigterm() -> None:
    """uvicorn drains the requests in flight on SIGTERM, then raises the signal again, which would
    kill the process with status -15; a requested stop that drained cleanly exits 0 instead."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


if __name__ == "__main__":
    sys.exit(main())
