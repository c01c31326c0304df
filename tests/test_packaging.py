"""pyproject.toml builds clean metadata; the service and the client tools share a virtualenv."""

import email
import os
import shutil
import subprocess
import sys
import time
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import httpx
import pytest
from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = PROJECT_ROOT / "requirements" / "all.txt"
# What a source build reads; the model repository is served from the checkout.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "service", "training")


def test_the_licence_is_an_spdx_expression_with_its_text_beside_it() -> None:
    licence = PYPROJECT["project"]["license"]
    assert isinstance(licence, str), "the table form of project.license is deprecated (PEP 639)"
    assert canonicalize_license_expression(licence) == licence
    assert (PROJECT_ROOT / "LICENSE").read_text(encoding="utf-8").startswith(f"{licence} License")


def copy_sources(destination: Path) -> Path:
    """The project's build inputs in a folder of their own: builds leave nothing in the checkout."""
    destination.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)
    return destination


def test_the_wheel_builds_without_warnings_and_declares_its_licence(tmp_path: Path) -> None:
    """setuptools warns before it stops building a deprecated form, so a warning fails this test.

    pip builds as any installer would: in an isolated environment with the
    ``build-system.requires`` of pyproject.toml, whatever pip or setuptools runs the test (a fresh
    virtualenv's pip 23.2 knows nothing of metadata 2.4, so the wheel's own METADATA is read).
    """
    sources = copy_sources(tmp_path / "sources")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--verbose"]
    command += ["--wheel-dir", str(tmp_path / "wheels"), str(sources)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stdout.splitlines() if "Warning" in line]
    assert not warnings, "\n".join(warnings)
    [wheel] = (tmp_path / "wheels").glob("mnist_mlp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert metadata["License-Expression"] == PYPROJECT["project"]["license"]
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "client" in metadata.get_all("Provides-Extra")


@pytest.fixture(scope="module")
def client_and_service_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with its own pip: the service from the lock as the quick start installs
    it, then the client extra on top without the lock, as its ranges allow (a client line
    installed after the service once downgraded protobuf under grpcio-health-checking)."""
    root = tmp_path_factory.mktemp("client-venv")
    sources = copy_sources(root / "sources")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    run([*pip, "--constraint", str(LOCK), str(sources)])
    run([*pip, f"{sources}[client]"])
    yield python


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    output = f"{' '.join(command)}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    assert result.returncode == 0, output
    return result.stdout


@pytest.mark.slow
def test_the_client_extra_installs_beside_the_service_and_it_still_serves(
    client_and_service_venv: Path,
) -> None:
    python = client_and_service_venv
    run([str(python), "-m", "pip", "check"])
    port, grpc_port = free_port(), free_port()
    environment = os.environ | {
        "MNIST_PORT": str(port),
        "MNIST_GRPC_PORT": str(grpc_port),
        "MNIST_MODEL_REPOSITORY": str(PROJECT_ROOT / "models"),
        "PYTHONPATH": "",
    }
    serve = python.parent / "mnist-mlp-serve"
    server = subprocess.Popen([str(serve)], env=environment, cwd=python.parent)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/v2/health/ready", server)
        seven = PROJECT_ROOT / "docs" / "seven_28x28.png"
        client = CLIENT_SCRIPT.format(port=port, grpc_port=grpc_port, seven=seven)
        assert run([str(python), "-c", client]).split() == ["7", "7"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_ready(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode} (its log above)"
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout} s")


# Both of tritonclient's transports, from the virtualenv that also holds the service.
CLIENT_SCRIPT = """
import numpy as np, tritonclient.grpc as triton_grpc, tritonclient.http as triton_http
from PIL import Image
images = np.asarray(Image.open("{seven}"))[np.newaxis]
for triton, url in ((triton_http, "127.0.0.1:{port}"), (triton_grpc, "127.0.0.1:{grpc_port}")):
    image = triton.InferInput("image", list(images.shape), "UINT8")
    image.set_data_from_numpy(images)
    result = triton.InferenceServerClient(url).infer("mnist_mlp", [image])
    print(result.as_numpy("probabilities").argmax())
"""


def locked_versions(name: str) -> dict[str, str]:
    """The pins of requirements/<name>, for this interpreter and platform (markers evaluated)."""
    pins = {}
    lines = (PROJECT_ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            requirement = Requirement(line.rstrip(" \\"))
            if requirement.marker is None or requirement.marker.evaluate():
                [pin] = requirement.specifier
                pins[canonicalize_name(requirement.name)] = pin.version
    return pins


def declared_requirements() -> list[Requirement]:
    """Every requirement of pyproject.toml, the base and each extra, but the project itself."""
    project = PYPROJECT["project"]
    declared = [*project["dependencies"], *chain(*project["optional-dependencies"].values())]
    requirements = [Requirement(line) for line in declared]
    return [requirement for requirement in requirements if requirement.name != project["name"]]


def test_the_lock_pins_every_requirement_inside_its_range() -> None:
    """A range changed in pyproject.toml without `bash requirements/lock.sh` fails here."""
    locked = locked_versions("all.txt")
    for requirement in declared_requirements():
        version = locked.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in requirements/all.txt"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/all.txt pins {requirement.name}=={version}, outside {requirement}: "
            "run bash requirements/lock.sh"
        )


@pytest.mark.parametrize("name", ["serve.txt", "train.txt"])
def test_the_image_locks_pin_what_the_full_lock_pins(name: str) -> None:
    locked, full = locked_versions(name), locked_versions("all.txt")
    assert locked and {package: full.get(package) for package in locked} == locked
