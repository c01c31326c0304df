"""What each worker process serves, shared through files, so that several workers agree.

With several uvicorn workers a load reaches one of them, which passes it on (SIGHUP through the
main process); each worker reloads on its own. So that the load answers only once every worker
serves its result, that a worker started later joins what the others serve, and that readiness
tells the truth when they disagree, each worker writes what it serves to a folder the main
process made for them (``MNIST_MLP_WORKER_STATES``), and the repository state they should all
serve is written there too:

- ``wanted.json``: every model's versions and their checksums, as the last load (or the first
  worker to start) left them;
- ``worker-<pid>.json``: the same, for what one worker serves now.

Files are replaced whole (written aside, then renamed), so a reader never sees half of one. A
worker that died without removing its file is recognised by its process being gone.
"""

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from service.inference.repository import ModelRepository

logger = logging.getLogger("service.repository")

# Set by the main process of several workers (service.rest.server) to the folder.
STATES_VARIABLE = "MNIST_MLP_WORKER_STATES"
WANTED = "wanted.json"
POLL_SECONDS = 0.05

Served = dict[str, list[str]]  # model name -> sorted "version sha256" of each version


def served_by(repository: ModelRepository) -> Served:
    """What ``repository`` serves now: each model's versions with their checksums."""
    return {
        name: sorted(
            f"{version} {classifier.card.sha256 or '-'}"
            for version, classifier in model.versions.items()
        )
        for name, model in repository.loaded().items()
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerStates:
    """This worker's view of the shared folder."""

    def __init__(self, folder: Path, pid: int | None = None) -> None:
        self.folder = folder
        self.pid = os.getpid() if pid is None else pid

    @classmethod
    def from_environment(cls) -> "WorkerStates | None":
        """The shared folder of several workers; None with one (nothing to agree with)."""
        folder = os.environ.get(STATES_VARIABLE)
        return cls(Path(folder)) if folder else None

    def _write(self, name: str, served: Mapping[str, list[str]]) -> None:
        aside = self.folder / f".{name}.{self.pid}"
        aside.write_text(json.dumps(served, sort_keys=True), encoding="utf-8")
        os.replace(aside, self.folder / name)

    def _read(self, path: Path) -> Served | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def publish(self, served: Served) -> None:
        """Tell the others what this worker serves; the first to start sets what is wanted."""
        if self.wanted() is None:
            self.want(served)
        self._write(f"worker-{self.pid}.json", served)

    def withdraw(self) -> None:
        """This worker is stopping: it no longer counts."""
        with contextlib.suppress(FileNotFoundError):
            (self.folder / f"worker-{self.pid}.json").unlink()

    def want(self, served: Served) -> None:
        """What every worker should serve from now on."""
        self._write(WANTED, served)

    def wanted(self) -> Served | None:
        return self._read(self.folder / WANTED)

    def workers(self) -> dict[int, Served]:
        """What each live worker serves."""
        states = {}
        for path in self.folder.glob("worker-*.json"):
            pid = int(path.stem.removeprefix("worker-"))
            served = self._read(path)
            if served is not None and _alive(pid):
                states[pid] = served
        return states

    def disagreements(self) -> list[str]:
        """One line per live worker that does not serve what is wanted (empty: all agree)."""
        wanted = self.wanted()
        if wanted is None:
            return []
        return [
            f"worker {pid} serves {_describe(served)}, not {_describe(wanted)}"
            for pid, served in sorted(self.workers().items())
            if served != wanted
        ]

    def wait_for_agreement(self, seconds: float) -> list[str]:
        """Wait until every live worker serves what is wanted, at most ``seconds``; the
        disagreements left (empty: all agree)."""
        deadline = time.monotonic() + seconds
        while (left := self.disagreements()) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        return left


def _describe(served: Mapping[str, list[str]]) -> str:
    models = (
        f"{name} ({', '.join(_version(entry) for entry in versions)})"
        for name, versions in sorted(served.items())
    )
    return ", ".join(models) or "no model"


def _version(entry: str) -> str:
    """``version@checksum`` (its first 8 characters), from a "version checksum" entry."""
    version, checksum = entry.split(" ", 1)
    return f"{version}@{checksum[:8]}"
