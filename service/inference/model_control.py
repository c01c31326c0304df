"""Managing the repository at run time: index, load, unload, reload everything (SIGHUP).

Each operation works on the models of this process. With several uvicorn workers a request
reaches one of them: a load then loads here (so its answer names any problem), and on success
sends SIGHUP to the main process, which passes it to every worker, each reloading the whole
repository from disk; the load answers once every worker serves what this one does (503
naming the workers that do not, after ``AGREEMENT_SECONDS``), see ``worker_states``. An unload
cannot be passed on that way, so it is refused (409) with several workers. The index answers
in every mode, for the worker that takes the request.
"""

import functools
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from service.inference.dataplane import DataPlane
from service.inference.errors import NotFound, NotReady, ServiceError
from service.inference.model_card import ModelLoadError
from service.inference.repository import IndexEntry, ServedModel
from service.inference.worker_states import WorkerStates, served_by

logger = logging.getLogger("service.repository")

# Set by the main process of several workers (service.rest.server) to its own PID.
SUPERVISOR_VARIABLE = "MNIST_MLP_SUPERVISOR_PID"
# Longest a load waits for every worker to serve its result.
AGREEMENT_SECONDS = 30.0


class LoadFailed(ServiceError, status_code=400, reason="load_failed"):
    """A load that found a problem on disk; nothing changed, the message names the file."""


class WorkersDisagree(ServiceError, status_code=503, reason="workers_disagree"):
    """A load that some of several workers did not follow."""


class SeveralWorkers(ServiceError, status_code=409, reason="several_workers"):
    """Load and unload would reach one worker of several."""


@dataclass(frozen=True)
class LoadResult:
    """What a load put in service: the model, its versions and the default one."""

    name: str
    versions: list[str]
    default_version: str


def repository_index(dataplane: DataPlane, ready_only: bool = False) -> list[IndexEntry]:
    """Every version loaded, unloaded or only on disk (only the ready ones if asked)."""
    entries = dataplane.repository.index()
    return [entry for entry in entries if entry.state == "READY"] if ready_only else entries


def load_model(dataplane: DataPlane, name: str) -> LoadResult:
    """Re-read, verify, warm and swap in every version of ``name``; blocking (seconds at most):
    a transport runs it off its event loop. With several workers, the others reload too."""
    supervisor = _supervisor(dataplane, "load")
    try:
        model = dataplane.repository.load(name)
    except (ModelLoadError, NotFound) as error:
        dataplane.metrics.model_loads.labels(name, "failed").inc()
        if isinstance(error, NotFound):
            raise
        logger.error("load of model %s failed, nothing changed: %s", name, error)
        problem = _within_repository(str(error), dataplane.repository.source)
        raise LoadFailed(f"load of model {name!r} failed, nothing changed: {problem}") from None
    dataplane.metrics.model_loads.labels(name, "loaded").inc()
    if supervisor is not None:
        logger.info(
            "model %s loaded in this worker; SIGHUP to %d reloads the others", name, supervisor
        )
        _pass_on(dataplane, name, supervisor)
    return _result(model)


def _pass_on(dataplane: DataPlane, name: str, supervisor: int) -> None:
    """Have every worker reload, and answer once they all serve what this one does."""
    states = WorkerStates.from_environment()
    if states is not None:
        served = served_by(dataplane.repository)
        states.want(served)
        states.publish(served)
    os.kill(supervisor, signal.SIGHUP)
    if states is None:
        return
    left = states.wait_for_agreement(AGREEMENT_SECONDS)
    if left:
        raise WorkersDisagree(
            f"model {name!r} loaded in worker {os.getpid()}, but after {AGREEMENT_SECONDS:g} s "
            f"not every worker serves it (see their log): {'; '.join(left)}"
        )


def join_the_workers(dataplane: DataPlane) -> WorkerStates | None:
    """A worker that has loaded the repository tells the others what it serves; readiness then
    holds only while every worker serves the same. If what it loaded from disk differs from
    what they serve (files changed without a load), every worker reloads, so that all serve
    what is on disk. None with one worker."""
    states = WorkerStates.from_environment()
    if states is None:
        return None
    served = served_by(dataplane.repository)
    wanted = states.wanted()
    states.publish(served)
    dataplane.workers_agree = functools.partial(_agree, states)
    supervisor = os.environ.get(SUPERVISOR_VARIABLE, "")
    if wanted is not None and wanted != served and supervisor == str(os.getppid()):
        logger.warning(
            "this worker loaded from disk something else than the others serve: every worker "
            "reloads the repository"
        )
        states.want(served)
        os.kill(int(supervisor), signal.SIGHUP)
    return states


def _agree(states: WorkerStates) -> None:
    left = states.disagreements()
    if left:
        raise NotReady(f"the workers serve different models: {'; '.join(left)}", "disagreement")


def unload_model(dataplane: DataPlane, name: str) -> None:
    """Take ``name`` out of service until it is loaded again."""
    if dataplane.settings.workers > 1:
        raise SeveralWorkers(
            f"unload would reach one of {dataplane.settings.workers} workers; run one worker "
            "(MNIST_WORKERS=1) to unload, or remove the model's files and send SIGHUP to the "
            "server's main process"
        )
    dataplane.repository.unload(name)


def reload_everything(dataplane: DataPlane) -> list[ModelLoadError]:
    """SIGHUP: load every model on disk, each on its own; returns the failures (logged), and
    counts each model's load in ``mnist_model_loads_total`` as the load route does."""
    try:
        results = dataplane.repository.load_all()
    except ModelLoadError as error:
        logger.error("reload of the repository failed, nothing changed: %s", error)
        return [error]
    failures = []
    for name, error in results.items():
        dataplane.metrics.model_loads.labels(name, "loaded" if error is None else "failed").inc()
        if error is not None:
            logger.error("a model's reload failed, it serves what it served: %s", error)
            failures.append(error)
    logger.info("reloaded the repository from disk: %d failures", len(failures))
    states = WorkerStates.from_environment()
    if states is not None:
        states.publish(served_by(dataplane.repository))
    return failures


def _supervisor(dataplane: DataPlane, operation: str) -> int | None:
    """The main process to pass a load on to, with several workers; None with one."""
    workers = dataplane.settings.workers
    if workers == 1:
        return None
    supervisor = os.environ.get(SUPERVISOR_VARIABLE, "")
    if supervisor != str(os.getppid()):
        raise SeveralWorkers(
            f"{operation} would reach one of {workers} workers, and this process has no "
            "main process to pass it on to; send SIGHUP to the server's main process"
        )
    return int(supervisor)


def _within_repository(text: str, source: Path) -> str:
    """``text`` with the repository's folder left out of the paths it names: a client learns
    which file, not where the server keeps it (the log has the full path)."""
    folder = source if source.is_dir() else source.parent
    return text.replace(f"{folder}{os.sep}", "").replace(str(folder), ".")


def _result(model: ServedModel) -> LoadResult:
    return LoadResult(model.name, list(model.versions), model.default_version)
