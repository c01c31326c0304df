"""No module of the service relies on another library's private names (``_``-prefixed modules,
functions, attributes or methods), except the one module allowed per library: uvicorn's in
``service.rest.uvicorn_hooks``, whose every private hook is listed (and checked) there."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from service.rest import uvicorn_hooks

SERVICE = Path(__file__).resolve().parents[2] / "service"
# The one module allowed to touch each library's internals.
ALLOWED = {"service.rest.uvicorn_hooks": "uvicorn"}
# What a class body defines as a method (what metaclasses add, such as ``_abc_impl``, is not).
METHOD_TYPES = (staticmethod, classmethod, property)


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SERVICE.parent).with_suffix("").parts)


def service_modules() -> list[Path]:
    return [
        path
        for path in sorted(SERVICE.rglob("*.py"))
        if not ("proto" in path.parts and "_pb2" in path.name) and path.name != "__main__.py"
    ]


def private_uses(tree: ast.AST) -> list[str]:
    """Private modules or names imported from another library, and private attributes read
    from a name bound to one."""
    found, imported = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "service":
                    imported.add(alias.asname or alias.name.split(".")[0])
                    found += [alias.name] if any(map(private, alias.name.split("."))) else []
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if module.split(".")[0] == "service":
                continue
            found += [module] if any(map(private, module.split("."))) else []
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                found += [f"{module}.{alias.name}"] if private(alias.name) else []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in imported:
                found.append(ast.unparse(node))
    return found


def private_overrides(module: object) -> list[str]:
    """Private methods or attributes of another library's classes that a class of ``module``
    defines again (overrides) or reaches through ``super()``."""
    found = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module.__name__:
            continue
        foreign = [base for base in cls.__mro__[1:] if not base.__module__.startswith("service")]
        for name, value in vars(cls).items():
            written = inspect.isfunction(value) or isinstance(value, METHOD_TYPES)
            if written and private(name) and any(hasattr(base, name) for base in foreign):
                found.append(f"{cls.__name__}.{name}")
    return found


@pytest.mark.parametrize("path", service_modules(), ids=module_name)
def test_no_private_name_of_another_library(path: Path) -> None:
    name = module_name(path)
    if name in ALLOWED:
        pytest.skip(f"the one module allowed for {ALLOWED[name]}")
    assert private_uses(ast.parse(path.read_text(encoding="utf-8"))) == []
    assert private_overrides(importlib.import_module(name)) == []


def test_the_uvicorn_module_lists_every_private_hook_it_overrides() -> None:
    """Every private uvicorn name ``ReadTimeoutProtocol`` overrides is in ``PRIVATE_HOOKS``,
    which importing the module checks and tests/service/test_uvicorn_hooks.py exercises."""
    listed = {
        f"{owner.__name__}.{name}"
        for owner, names in uvicorn_hooks.PRIVATE_HOOKS.items()
        for name in names
    }
    overridden = {
        name.replace("ReadTimeoutProtocol", "HttpToolsProtocol")
        for name in private_overrides(uvicorn_hooks)
        if name.startswith("ReadTimeoutProtocol")
    }
    assert overridden and overridden <= listed
