"""Render the deploy/ kustomizations and validate what they produce, offline.

Kubernetes objects go through kubernetes-validate's strict schemas (unknown keys are errors).
KServe's ServingRuntime and InferenceService go through ``kserve.schema.json``, generated from
the KServe SDK's API types by ``make_kserve_schema.py``, whose Kubernetes parts (containers,
probes, resources, security contexts) refer to the same strict Kubernetes schemas.
"""

import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import jsonschema
import yaml
from kubernetes_validate import utils as kubernetes_validate
from referencing import Registry, Resource

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = PROJECT_ROOT / "deploy"
KUSTOMIZATIONS = {
    "kubernetes base": DEPLOY / "kubernetes" / "base",
    "kubernetes api-keys overlay": DEPLOY / "kubernetes" / "overlays" / "api-keys",
    "kserve": DEPLOY / "kserve",
}
KSERVE_SCHEMA = Path(__file__).resolve().parent / "kserve.schema.json"
KSERVE_GROUP = "serving.kserve.io"
# The oldest Kubernetes the manifests are for: PodDisruptionBudget's unhealthyPodEvictionPolicy
# is on by default from 1.27.
OLDEST_KUBERNETES = "1.27.0"
MISSING_KUBECTL = "kubectl is not installed: the manifests are rendered with `kubectl kustomize`"


def kubectl() -> str | None:
    """The kubectl binary, or None where it is missing (the tests that need it skip)."""
    return shutil.which("kubectl")


def render(kustomization: Path) -> list[dict]:
    """``kubectl kustomize`` of one folder, as a list of objects."""
    binary = kubectl()
    if binary is None:
        raise FileNotFoundError(MISSING_KUBECTL)
    output = subprocess.run(
        [binary, "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def kubernetes_versions() -> list[str]:
    """Every Kubernetes version kubernetes-validate has schemas for, from the oldest we support."""
    oldest = tuple(map(int, OLDEST_KUBERNETES.split(".")))
    versions = sorted(set(kubernetes_validate.all_versions()), key=_version_key)
    return [version for version in versions if _version_key(version) >= oldest]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(map(int, version.split(".")))


def is_kserve(document: dict) -> bool:
    return document["apiVersion"].split("/")[0] == KSERVE_GROUP


def validate_kubernetes(document: dict, version: str) -> None:
    """Strict schema validation; raises kubernetes_validate's ValidationError."""
    kubernetes_validate.validate(document, version, strict=True)


KSERVE_ROOTS = {
    "ServingRuntime": "V1alpha1ServingRuntime",
    "InferenceService": "V1beta1InferenceService",
}


@cache
def _kserve_validator(kind: str) -> jsonschema.protocols.Validator:
    """The schema of one KServe kind, with the strict Kubernetes definitions it refers to."""
    schema = json.loads(KSERVE_SCHEMA.read_text(encoding="utf-8"))
    latest = kubernetes_validate.latest_version()
    definitions_file = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{latest}-local-strict"
        / "_definitions.json"
    )
    definitions = json.loads(definitions_file.read_text(encoding="utf-8"))
    registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))
    root = {"$defs": schema["$defs"], "$ref": f"#/$defs/{KSERVE_ROOTS[kind]}"}
    return jsonschema.Draft202012Validator(root, registry=registry)


def kserve_errors(document: dict) -> list[str]:
    """Every schema violation of one KServe object, as ``path: message`` lines."""
    kind = document.get("kind")
    if kind not in KSERVE_ROOTS:
        return [f"kind {kind!r} is not a KServe kind this project deploys"]
    errors = _kserve_validator(kind).iter_errors(document)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '.'}: {error.message}" for error in errors
    ]


def containers(document: dict) -> Iterator[dict]:
    """The containers of a Deployment's pod template or of a ServingRuntime."""
    spec = document.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec)
    yield from pod.get("containers", [])


def probes(container: dict) -> Iterator[tuple[str, dict]]:
    """(kind, probe) for each probe of a container."""
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if kind in container:
            yield kind, container[kind]


def container_environment(container: dict) -> dict[str, str]:
    """The container's literal environment variables."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def container_port(container: dict, port: int | str) -> int:
    """A probe's port, by number or by the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    raise LookupError(f"container {container['name']} declares no port named {port!r}")
