"""pyproject.toml builds without deprecation warnings and declares its licence as SPDX."""

import json
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


def test_the_metadata_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    """setuptools warns before it stops building a deprecated form, so a warning fails this test.

    pip prepares the metadata as any installer would: in an isolated build environment with the
    ``build-system.requires`` of pyproject.toml, not with whatever setuptools the test runs under
    (a fresh virtualenv's bundled setuptools is far older than the one the build asks for).
    """
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--verbose"]
    command += ["--ignore-installed", "--report", str(report), str(PROJECT_ROOT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stdout.splitlines() if "Warning" in line]
    assert not warnings, "\n".join(warnings)
    metadata = json.loads(report.read_text(encoding="utf-8"))["install"][0]["metadata"]
    assert metadata["license_expression"] == PYPROJECT["project"]["license"]
