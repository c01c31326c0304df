"""Serving the REST app with uvicorn: one process, or workers that build their own app."""

import copy
import logging
import logging.config
import os
import tempfile
from collections.abc import Callable
from typing import Any

import uvicorn
import uvicorn.config
from fastapi import FastAPI

from service.inference.metrics import MULTIPROCESS_DIRECTORY_VARIABLE
from service.inference.model_control import SUPERVISOR_VARIABLE
from service.inference.repository import ModelRepository
from service.rest.uvicorn_hooks import ReloadingWorkers, uvicorn_options
from service.settings import LogFormat, Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's logging plus the service's, in one format for both: ``LOG_FORMAT`` lines, or
    JSON lines (``MNIST_LOG_FORMAT=json``) for log collectors. Records go to stderr; access
    lines through an ``AccessLogHandler`` (a bounded queue written by a thread, so that a full
    stderr pipe cannot stall the event loop). uvicorn applies it in every worker process too,
    which otherwise would not configure the service's loggers at all."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    if log_format == "json":
        config["formatters"]["service"] = {"()": "service.logs.JsonLinesFormatter"}
    else:
        config["formatters"]["service"] = {
            "()": "service.logs.SecondCachingFormatter",
            "fmt": LOG_FORMAT,
        }
    for handler in config["handlers"].values():  # uvicorn's own lines, formatted the same
        handler["formatter"] = "service"
    stderr = {"formatter": "service", "stream": "ext://sys.stderr"}
    config["handlers"]["service"] = {"class": "logging.StreamHandler", **stderr}
    config["handlers"]["service_access"] = {
        "class": "service.logs.AccessLogHandler",
        **stderr,
    }
    config["root"] = {"level": level.upper(), "handlers": ["service"]}
    config["loggers"]["service.access"] = {"handlers": ["service_access"], "propagate": False}
    return config


def configure_logging(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """Apply ``logging_config``, and stop collecting what ``LOG_FORMAT`` never shows: the
    thread, process id and process name (the Logging HOWTO's "Optimization" switches).
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    config = logging_config(level, log_format)
    logging.config.dictConfig(config)
    return config


AppFactory = Callable[..., FastAPI]


def serve(
    settings: Settings,
    models: ModelRepository | None,
    log_config: dict[str, Any],
    app_factory: AppFactory,
) -> None:
    """Run uvicorn until it is stopped; one worker serves the models already loaded, several
    load their own (and SIGHUP to this process has each reload them in place).

    ``app_factory(settings, models=...)`` builds the served app (``service.app``'s: REST with
    gRPC beside it); with several workers each calls it by its import path.
    """
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config,
        "access_log": False,
        **uvicorn_options(),
    }
    if settings.workers == 1:
        uvicorn.run(app_factory(settings, models=models), **options)
        return
    # Workers build their own app from the environment and share metrics through files.
    with tempfile.TemporaryDirectory(prefix="mnist-mlp-metrics-") as metrics_directory:
        os.environ.setdefault(MULTIPROCESS_DIRECTORY_VARIABLE, metrics_directory)
        os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())
        factory = f"{app_factory.__module__}:{app_factory.__qualname__}"
        config = uvicorn.Config(factory, factory=True, workers=settings.workers, **options)
        ReloadingWorkers(config, sockets=[config.bind_socket()]).run()
