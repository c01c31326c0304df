"""The model repository: every version of every model in a folder, served side by side, and
reloaded from disk without a restart (Triton's model repository extension).

The folder holds ``*.onnx`` files, each with its JSON card beside it (``x.onnx`` + ``x.json``);
cards are grouped by ``name`` and each is one ``version``. ``repository.json`` in the folder
may name the default model and each model's default version; otherwise a model's default is the
version whose card has the newest ``created``. A load reads, verifies (card, checksum, the
signature contract) and warms every version of a model before one reference swap puts them in
service, so a request holds the sessions it started on and a failed load changes nothing.
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from service.inference.classifier import Classifier
from service.inference.errors import NotFound, NotReady
from service.inference.model_card import ModelLoadError, card_beside
from service.inference.repository_files import (
    RepositoryLayout,
    default_version,
    scan_folder,
    version_files,
)
from service.settings import Settings

logger = logging.getLogger("service.repository")

NOT_LOADED_YET = "the models are not loaded yet; retry in a moment"
READY = "READY"
UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class ServedModel:
    """Every loaded version of one model, and the version unversioned requests get."""

    name: str
    versions: Mapping[str, Classifier]
    default_version: str

    @property
    def default(self) -> Classifier:
        return self.versions[self.default_version]


@dataclass(frozen=True)
class IndexEntry:
    """One row of the repository index: a model version, its state and why."""

    name: str
    version: str
    state: str
    reason: str = ""


class ModelRepository:
    """The models being served; ``get`` is the lookup every request makes."""

    def __init__(
        self,
        folder: Path | None,
        model_path: Path | None = None,
        card_path: Path | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        """A folder to scan, or (``model_path``) a single ONNX file and its card."""
        if (folder is None) == (model_path is None):
            raise ValueError("give either a repository folder or a single model path")
        self.folder = folder
        self.model_path = model_path
        self.card_path = card_path
        self.intra_op_threads = intra_op_threads
        self._models: dict[str, ServedModel] = {}
        self._unloaded: dict[str, ServedModel] = {}
        self._default_model: str | None = None
        self._load_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelRepository":
        """The single ``MNIST_MODEL_PATH`` when set, else the ``MNIST_MODEL_REPOSITORY`` folder."""
        if settings.model_path is not None:
            return cls(
                None, settings.model_path, settings.resolved_card_path, settings.intra_op_threads
            )
        return cls(settings.model_repository, intra_op_threads=settings.intra_op_threads)

    @property
    def source(self) -> Path:
        """What the repository reads: its folder, or its single model file."""
        return self.folder or self.model_path  # type: ignore[return-value]

    def get(self, name: str | None = None, version: str | None = None) -> Classifier:
        """The version asked for (None: the default model, its default version)."""
        models = self._models
        if name is None:
            name = self.default_model_name()
        model = models.get(name)
        if model is None:
            if not models and not self._unloaded:
                raise NotReady(NOT_LOADED_YET, "no_model_loaded")
            if name in self._unloaded:
                raise NotReady(
                    f"model {name!r} is unloaded; load it again to serve it", "model_unloaded"
                )
            served = ", ".join(repr(known) for known in sorted(models)) or "no model"
            raise NotFound(f"unknown model {name!r}; this server serves {served}", "unknown_model")
        if version is None:
            return model.default
        classifier = model.versions.get(version)
        if classifier is None:
            versions = ", ".join(repr(known) for known in model.versions)
            raise NotFound(
                f"model {name!r} has no version {version!r}; its versions: {versions}",
                "unknown_version",
            )
        return classifier

    def served_models(self) -> list[ServedModel]:
        """Every model in service, by name."""
        models = self._models
        return [models[name] for name in sorted(models)]

    def loaded(self) -> dict[str, ServedModel]:
        """Every model in service now, by name."""
        return dict(self._models)

    def served(self, name: str) -> ServedModel:
        """All loaded versions of a model (for metadata), with ``get``'s errors."""
        self.get(name)
        return self._models[name]

    def default_model_name(self) -> str:
        """The model of requests that name none (``POST /predict``)."""
        models = self._models
        if self._default_model in models:
            return self._default_model  # type: ignore[return-value]
        if not models:
            if self._unloaded:
                raise NotReady("every model is unloaded; load one to serve requests", "unloaded")
            raise NotReady(NOT_LOADED_YET, "no_model_loaded")
        return sorted(models)[0]

    def ready(self) -> bool:
        """True while at least one model serves."""
        return bool(self._models)

    def load_all(self) -> dict[str, ModelLoadError | None]:
        """Load every model on disk (start-up, SIGHUP), each on its own: a model that fails
        keeps what it served. Each model's name, with its error or None when it loaded."""
        layout = self.scan()
        results: dict[str, ModelLoadError | None] = {}
        for name in layout.models:
            try:
                self._load(name, layout)
            except ModelLoadError as error:
                results[name] = error
            else:
                results[name] = None
        return results

    def load(self, name: str) -> ServedModel:
        """Re-read one model's versions from disk, verify and warm them, then swap them in."""
        return self._load(name, self.scan())

    def unload(self, name: str) -> None:
        """Take a model out of service; its requests get 503 until it is loaded again."""
        with self._load_lock:
            model = self._models.get(name)
            if model is None:
                if name in self._unloaded:
                    return
                raise NotFound(f"unknown model {name!r}; nothing to unload", "unknown_model")
            self._unloaded[name] = model
            self._models = {known: kept for known, kept in self._models.items() if known != name}
        logger.info("unloaded model %s (versions %s)", name, ", ".join(model.versions))

    def index(self) -> list[IndexEntry]:
        """Every version loaded, unloaded or only on disk, with its state."""
        entries = {
            (name, version): IndexEntry(name, version, READY)
            for name, model in self._models.items()
            for version in model.versions
        }
        for name, model in self._unloaded.items():
            for version in model.versions:
                entries.setdefault(
                    (name, version), IndexEntry(name, version, UNAVAILABLE, "unloaded")
                )
        try:
            on_disk = self.scan().models
        except ModelLoadError as error:
            on_disk = {}
            logger.warning("repository index: %s", error)
        for name, versions in on_disk.items():
            for files in versions:
                key = (name, files.card.version)
                entries.setdefault(key, IndexEntry(*key, UNAVAILABLE, "on disk, not loaded"))
        return sorted(entries.values(), key=lambda entry: (entry.name, int(entry.version)))

    def scan(self) -> RepositoryLayout:
        """Read every card of the folder (or the single model's); any problem names its file."""
        if self.model_path is None:
            return scan_folder(self.folder)  # type: ignore[arg-type]
        card_path = self.card_path or card_beside(self.model_path)
        files = version_files(self.model_path, card_path)
        return RepositoryLayout({files.card.name: [files]})

    def _load(self, name: str, layout: RepositoryLayout) -> ServedModel:
        versions = layout.models.get(name)
        if not versions:
            known = ", ".join(repr(known) for known in layout.models) or "no model"
            raise NotFound(
                f"model {name!r} is not in the model repository; it holds {known}",
                "unknown_model",
            )
        default = default_version(name, versions, layout, self.source)
        with self._load_lock:
            classifiers = {
                files.card.version: Classifier.from_files(
                    files.model_path, files.card_path, self.intra_op_threads
                )
                for files in sorted(versions, key=lambda files: int(files.card.version))
            }
            model = ServedModel(name, classifiers, default)
            self._models = {**self._models, name: model}
            self._unloaded.pop(name, None)
            self._default_model = layout.default_model
        logger.info(
            "serving model %s versions %s (default %s)",
            name,
            ", ".join(classifiers),
            default,
        )
        return model


def open_repository(settings: Settings) -> ModelRepository:
    """The repository the settings name with every model loaded; the first failure raises."""
    repository = ModelRepository.from_settings(settings)
    failures = [error for error in repository.load_all().values() if error is not None]
    if failures:
        raise failures[0]
    return repository
