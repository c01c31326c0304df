"""``python -m service``: check the model, then serve it with uvicorn."""

import argparse
import copy
import logging
import logging.config
import os
import signal
import sys
import tempfile
from typing import Any

import uvicorn
import uvicorn.config
from pydantic import ValidationError

from service.app import create_app
from service.classifier import Classifier
from service.errors import describe_validation_errors
from service.metrics import MULTIPROCESS_DIRECTORY_VARIABLE
from service.model_card import ModelLoadError
from service.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mnist-mlp-serve",
        description="Serve the MNIST model. Every setting is also an MNIST_* environment "
        "variable (MNIST_MODEL_PATH, MNIST_HOST, MNIST_PORT, MNIST_WORKERS, MNIST_LOG_LEVEL, ...); "
        "flags given here win.",
    )
    parser.add_argument(
        "--model-path", help="ONNX model (default: the shipped models/mnist_mlp.onnx)"
    )
    parser.add_argument("--host", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default: 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: 1)")
    return parser.parse_args(argv)


def _settings(arguments: argparse.Namespace) -> Settings:
    """Flags win over the environment; they are exported so that worker processes see them too."""
    overrides = {name: value for name, value in vars(arguments).items() if value is not None}
    for name, value in overrides.items():
        os.environ[f"MNIST_{name.upper()}"] = str(value)
    return Settings(**overrides)


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging plus the service's: records on stderr in ``LOG_FORMAT``, access lines
    through a ``BatchingStreamHandler`` (written by a thread in batches: half the CPU per line,
    and a full stderr pipe cannot stall the event loop). uvicorn applies it in every worker
    process too, which otherwise would not configure the service's loggers at all."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["service"] = {"format": LOG_FORMAT}
    stderr = {"formatter": "service", "stream": "ext://sys.stderr"}
    config["handlers"]["service"] = {"class": "logging.StreamHandler", **stderr}
    config["handlers"]["service_access"] = {
        "class": "service.middleware.BatchingStreamHandler",
        **stderr,
    }
    config["root"] = {"level": level.upper(), "handlers": ["service"]}
    config["loggers"]["service.access"] = {"handlers": ["service_access"], "propagate": False}
    return config


def _configure_logging(level: str) -> dict[str, Any]:
    """Apply ``logging_config``, and stop collecting what ``LOG_FORMAT`` never shows.

    The caller's file and line (a stack walk), thread, process id and process name cost ~10 µs
    of the ~20 µs a record takes to create: the Logging HOWTO's "Optimization" switches.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    config = logging_config(level)
    logging.config.dictConfig(config)
    return config


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
    log_config = _configure_logging(settings.log_level)
    try:
        classifier = Classifier.load(
            settings.model_path, settings.resolved_card_path, settings.intra_op_threads
        )
    except ModelLoadError as error:
        print(f"mnist-mlp-serve: {error}", file=sys.stderr)
        return 1
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config,
        "access_log": False,
    }
    _exit_zero_on_sigterm()
    if settings.workers == 1:
        uvicorn.run(create_app(settings, classifier=classifier), **options)
    else:
        _serve_with_workers(settings.workers, options)
    return 0


def _exit_zero_on_sigterm() -> None:
    """uvicorn drains the requests in flight on SIGTERM, then raises the signal again, which would
    kill the process with status -15; a requested stop that drained cleanly exits 0 instead."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def _serve_with_workers(workers: int, options: dict) -> None:
    """Workers build their own app from the environment and share metrics through files."""
    with tempfile.TemporaryDirectory(prefix="mnist-mlp-metrics-") as metrics_directory:
        os.environ.setdefault(MULTIPROCESS_DIRECTORY_VARIABLE, metrics_directory)
        uvicorn.run("service.app:create_app", factory=True, workers=workers, **options)


if __name__ == "__main__":
    sys.exit(main())
