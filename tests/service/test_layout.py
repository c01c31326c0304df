"""The architecture as the code has it: a core free of web frameworks, transports beside it."""

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
TRANSPORTS = ("rest", "grpc")
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "grpc")
MAX_MODULE_LINES = 300


def _imported_modules(path: Path) -> set[str]:
    """Every module a module imports, by its full name."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def _imported_packages(path: Path) -> set[str]:
    """The top-level package of every import in a module."""
    return {module.split(".")[0] for module in _imported_modules(path)}


def _modules_outside_transports() -> list[Path]:
    return [
        path
        for path in sorted(SERVICE.rglob("*.py"))
        if path.relative_to(SERVICE).parts[0] not in TRANSPORTS
    ]


@pytest.mark.parametrize("path", _modules_outside_transports(), ids=lambda path: path.name)
def test_only_the_transports_import_a_web_framework(path: Path) -> None:
    assert not _imported_packages(path) & set(WEB_FRAMEWORKS), path


def test_the_core_never_imports_a_transport_or_training() -> None:
    for path in sorted((SERVICE / "inference").rglob("*.py")):
        modules = _imported_modules(path)
        transports = {f"service.{transport}" for transport in TRANSPORTS}
        assert not {module for module in modules if module.startswith(tuple(transports))}, path
        assert "training" not in _imported_packages(path), path


def _generated(path: Path) -> bool:
    """The gRPC stubs grpcio-tools writes (service/grpc/proto/README.md): nobody edits them."""
    return path.parent == SERVICE / "grpc" / "proto" and "_pb2" in path.name


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(SERVICE)): length
        for path in SERVICE.rglob("*.py")
        if not _generated(path)
        and (length := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long
