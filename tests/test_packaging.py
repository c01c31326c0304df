"""pyproject.toml builds without deprecation warnings and declares its licence as SPDX."""

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.licenses import canonicalize_license_expression

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_is_an_spdx_expression() -> None:
    licence = PYPROJECT["project"]["license"]
    assert isinstance(licence, str), "the table form of project.license is deprecated (PEP 639)"
    assert canonicalize_license_expression(licence) == licence


def test_the_metadata_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """setuptools warns before it stops building a deprecated form; a warning fails this test."""
    build = (
        "import sys; from setuptools import build_meta; "
        "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", build, str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = (tmp_path / result.stdout.split()[-1] / "METADATA").read_text(encoding="utf-8")
    assert f"License-Expression: {PYPROJECT['project']['license']}" in metadata.splitlines()
