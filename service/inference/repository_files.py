"""The files of a model repository: the cards beside each ``*.onnx``, grouped by model, and
the optional ``repository.json`` that names the defaults. Reading them loads no model."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.inference.model_card import (
    ModelCard,
    ModelLoadError,
    card_beside,
    is_version,
    read_model_card,
    version_problem,
)

REPOSITORY_FILE = "repository.json"
REPOSITORY_FILE_SHAPE = (
    '{"default_model": NAME, "models": {NAME: {"default_version": VERSION}}} '
    '(or {"default_file": "NAME.onnx"} in place of "default_version")'
)


@dataclass(frozen=True)
class VersionFiles:
    """One version on disk: the ONNX file and its card, read but not yet loaded."""

    model_path: Path
    card_path: Path
    card: ModelCard


@dataclass(frozen=True)
class RepositoryLayout:
    """What the folder says: each model's versions on disk, and the declared defaults."""

    models: Mapping[str, list[VersionFiles]]
    default_model: str | None = None
    default_versions: Mapping[str, str] = field(default_factory=dict)


def version_files(model_path: Path, card_path: Path) -> VersionFiles:
    """The model file must exist, and its card be valid; a problem names the model first."""
    if not model_path.is_file():
        raise ModelLoadError(f"model {model_path}: file not found")
    try:
        card = read_model_card(card_path)
    except ModelLoadError as error:
        raise ModelLoadError(f"model {model_path}: {error}") from None
    return VersionFiles(model_path, card_path, card)


def scan_folder(folder: Path) -> RepositoryLayout:
    """The cards beside every ``*.onnx`` of ``folder``, grouped by name, and the repository file."""
    if not folder.is_dir():
        raise ModelLoadError(f"model repository {folder}: not a folder")
    models: dict[str, list[VersionFiles]] = {}
    seen: dict[tuple[str, str], Path] = {}
    for model_path in sorted(folder.glob("*.onnx")):
        files = version_files(model_path, card_beside(model_path))
        card = files.card
        key = (card.name, card.version)
        if key in seen:
            raise ModelLoadError(
                f"model {model_path}: its card gives version {card.version!r} of "
                f"{card.name!r}, as the card of {seen[key]} does"
            )
        seen[key] = model_path
        models.setdefault(card.name, []).append(files)
    if not models:
        raise ModelLoadError(f"model repository {folder}: no *.onnx model in it")
    path = folder / REPOSITORY_FILE
    default_model, default_versions = _read_repository_file(path)
    if default_model is not None and default_model not in models:
        known = ", ".join(repr(name) for name in models)
        raise ModelLoadError(
            f"repository file {path}: default_model {default_model!r} is not in the folder "
            f"(it holds {known})"
        )
    return RepositoryLayout(models, default_model, default_versions)


def _read_repository_file(path: Path) -> tuple[str | None, dict[str, str]]:
    """``{"default_model": NAME, "models": {NAME: {"default_version": VERSION}}}``, optional;
    ``"default_file": "x.onnx"`` names the default by its file instead (it then survives a
    retrained model's new version number). Returns the default model and, per model, the
    declared version or ``file:x.onnx``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, {}
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"repository file {path}: cannot read: {error}") from None
    models = document.get("models", {}) if isinstance(document, dict) else None
    if not isinstance(models, dict) or not all(
        isinstance(entry, dict) and set(entry) <= {"default_version", "default_file"}
        for entry in models.values()
    ):
        raise ModelLoadError(f"repository file {path}: expected {REPOSITORY_FILE_SHAPE}")
    defaults = {}
    for name, entry in models.items():
        if "default_file" in entry:
            defaults[name] = f"file:{entry['default_file']}"
        elif "default_version" in entry:
            problem = version_problem(entry["default_version"], name)
            if problem is not None:
                raise ModelLoadError(f"repository file {path}: default_version {problem}")
            defaults[name] = entry["default_version"]
    return document.get("default_model"), defaults


def default_version(
    name: str, versions: list[VersionFiles], layout: RepositoryLayout, source: Path
) -> str:
    """The declared default, which must exist; else the newest ``created`` (on a tie, or with no
    dates, the last version in file order)."""
    declared = layout.default_versions.get(name)
    by_file = {files.model_path.name: files.card.version for files in versions}
    available = list(by_file.values())
    if declared is not None:
        version = by_file.get(declared[5:]) if declared.startswith("file:") else declared
        if version not in available:
            raise ModelLoadError(
                f"repository file {source / REPOSITORY_FILE}: the default of {name!r}, "
                f"{declared.removeprefix('file:')!r}, is none of its versions on disk "
                f"({', '.join(f'{version} in {file}' for file, version in by_file.items())})"
            )
        return version
    dated = [
        (files.card.created, order) for order, files in enumerate(versions) if files.card.created
    ]
    if dated:
        # Equal dates (an fp32 model and its int8 variant, built together) go to the last file.
        return versions[max(dated)[1]].card.version
    return available[-1]


def highest_version(folder: Path, name: str) -> int:
    """The highest version of model ``name`` among the cards beside the ``*.onnx`` files of
    ``folder`` (0 when there is none): the number a new version of it must exceed. Cards that
    cannot be read or give no such version are passed over; loading the folder names them."""
    highest = 0
    for model_path in folder.glob("*.onnx"):
        try:
            card = json.loads(card_beside(model_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and card.get("name") == name and is_version(card.get("version")):
            highest = max(highest, int(card["version"]))
    return highest
