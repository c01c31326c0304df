"""The image files a command line names: files as given, folders searched for images."""

from dataclasses import dataclass
from pathlib import Path

# What a folder is searched for; a file named on the command line is read whatever its name
# (the format comes from its bytes, as in the service).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class Named:
    """One input: a file to classify, or (``problem``) why a name gives none."""

    path: Path
    problem: str | None = None


def expand(names: list[Path]) -> list[Named]:
    """Each name in order: a file as it is, a folder's image files sorted (subfolders too,
    hidden ones skipped), anything else a problem naming it."""
    found: list[Named] = []
    for name in names:
        if name.is_dir():
            images = _images_in(name)
            found += [Named(path) for path in images] or [Named(name, _no_images(name))]
        elif name.is_file():
            found.append(Named(name))
        elif name.exists():
            found.append(Named(name, "not a regular file"))
        else:
            found.append(Named(name, "no such file or folder"))
    return found


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _no_images(folder: Path) -> str:
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    return f"no image files in this folder (looked for {suffixes})"
