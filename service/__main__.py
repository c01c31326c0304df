"""``python -m service``: check the model, then serve it over REST and gRPC."""

import argparse
import errno
import os
import signal
import socket
import sys

from service.app import create_app
from service.grpc.server import address
from service.inference.model_card import ModelLoadError
from service.inference.repository import open_repository
from service.inference.tracing import TracingUnavailable, check_installed
from service.rest.server import configure_logging, serve
from service.settings import Settings
from service.settings_reader import InvalidSettings, read_settings


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
    if arguments.model_repository is not None and arguments.model_path is None:
        # The folder asked for, even where MNIST_MODEL_PATH (which wins over it) is set.
        overrides["model_path"] = None
    settings = read_settings(**overrides)
    if settings.workers > 1 and settings.grpc_enabled and settings.grpc_port == 0:
        # Each worker binds gRPC itself: port 0 would give each its own; they share one.
        overrides["grpc_port"] = _free_port(settings.host)
    for name, value in overrides.items():
        if value is None:
            os.environ.pop(f"MNIST_{name.upper()}", None)
        else:
            os.environ[f"MNIST_{name.upper()}"] = str(value)
    return read_settings(**overrides)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    """Fail fast, with one line naming the file, when the model cannot be served."""
    try:
        settings = _settings(_parse_arguments(argv))
    except InvalidSettings as error:
        print(f"mnist-mlp-serve: invalid setting: {error}", file=sys.stderr)
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
    busy = _first_unusable_port(settings)
    if busy is not None:
        print(f"mnist-mlp-serve: {busy}", file=sys.stderr)
        return 1
    _exit_zero_on_sigterm()
    if settings.workers > 1:
        # The load above was the check; each worker loads its own, so this process keeps none.
        models = None
    serve(settings, models, log_config, create_app)
    return 0


def _first_unusable_port(settings: Settings) -> str | None:
    """One line naming the setting to change when a port cannot be bound, checked before
    serving: uvicorn and grpcio would report it from inside the app's start-up, in a traceback
    (a port taken in the instant between this check and the bind still is)."""
    host = settings.host
    ports = [(settings.port, "MNIST_PORT (--port)")]
    if settings.grpc_enabled:
        setting = "MNIST_GRPC_PORT (--grpc-port), or serve REST alone: MNIST_GRPC_ENABLED=false"
        ports.append((settings.grpc_port, setting))
    for port, setting in ports:
        problem = _bind_problem(host, port)
        if isinstance(problem, socket.gaierror):
            return f"MNIST_HOST {host!r} does not resolve: {problem.strerror}"
        if problem is not None and problem.errno == errno.EADDRINUSE:
            return f"{address(host, port)} is already in use; choose another port with {setting}"
        if problem is not None:
            return f"cannot listen on {address(host, port)}: {problem.strerror} (MNIST_HOST)"
    return None


def _bind_problem(host: str, port: int) -> OSError | None:
    """Why ``host:port`` cannot be bound now (on any address the host resolves to), else None.
    SO_REUSEADDR as the servers set it: a port whose old connections linger is free. Port 0
    still checks the host."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return error
    for family, kind, protocol, _, socket_address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(socket_address)
            except OSError as error:
                return error
    return None


def _exit_zero_on_sigterm() -> None:
    """uvicorn drains the requests in flight on SIGTERM, then raises the signal again, which would
    kill the process with status -15; a requested stop that drained cleanly exits 0 instead."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


if __name__ == "__main__":
    sys.exit(main())
