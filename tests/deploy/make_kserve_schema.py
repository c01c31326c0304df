"""Write a strict JSON Schema for KServe's ServingRuntime and InferenceService from its SDK.

KServe publishes its CRDs' OpenAPI only in its Git repository, which this project cannot fetch;
its Python SDK on PyPI (``kserve``, Apache-2.0) carries the same API types as generated classes,
each with ``openapi_types`` (field -> type) and ``attribute_map`` (field -> JSON key), and a
setter that refuses ``None`` for every required field. This script reads those tables from the
wheel without importing it (the SDK pulls in a server stack) and writes draft 2020-12 JSON
Schema: every KServe object closed to unknown keys, its required keys, JSON types, and the
Kubernetes types it embeds (Container, Probe, ResourceRequirements, ...) as references into
kubernetes-validate's strict schemas. Run it again when KServe changes:

    pip download --no-deps kserve==0.21.0 -d /tmp/kserve
    python -m tests.deploy.make_kserve_schema /tmp/kserve/kserve-0.21.0-py3-none-any.whl \\
        > tests/deploy/kserve.schema.json
"""

import ast
import json
import re
import sys
import zipfile
from pathlib import PurePosixPath

ROOTS = {"ServingRuntime": "V1alpha1ServingRuntime", "InferenceService": "V1beta1InferenceService"}
KUBERNETES = "https://kubernetes.io/api/_definitions.json#/$defs/"
PRIMITIVES = {"str": "string", "int": "integer", "bool": "boolean", "float": "number"}
# Kubernetes types whose Python name does not end in the definition's name.
KUBERNETES_NAMES = {
    "ResourceQuantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "V1ObjectMeta": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "V1LocalObjectReference": "io.k8s.api.core.v1.LocalObjectReference",
}
GROUPED = re.compile(r"K8sIoApi(?P<group>[A-Z][a-z]+)(?P<version>V\d\w*?)(?P<name>[A-Z]\w+)$")
CORE = re.compile(r"V1(?P<name>[A-Z]\w+)$")


def read_types(wheel: str) -> dict[str, dict]:
    """Every generated class of ``kserve/models``: JSON fields, their types, which are required."""
    types = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if PurePosixPath(name).parent.as_posix() != "kserve/models":
                continue
            source = archive.read(name).decode()
            for node in ast.parse(source).body:
                if isinstance(node, ast.ClassDef):
                    described = _describe_class(node, source)
                    if described:
                        types[node.name] = described
    return types


def _describe_class(node: ast.ClassDef, source: str) -> dict | None:
    tables = {}
    for statement in node.body:
        target = statement.targets[0] if isinstance(statement, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("openapi_types", "attribute_map"):
            tables[target.id] = ast.literal_eval(statement.value)
    if len(tables) != 2:
        return None
    class_source = ast.get_source_segment(source, node) or ""
    required = re.findall(r"client_side_validation and (\w+) is None", class_source)
    keys = tables["attribute_map"]
    return {
        "fields": {keys[field]: kind for field, kind in tables["openapi_types"].items()},
        "required": sorted(keys[field] for field in set(required)),
    }


def kubernetes_definition(name: str) -> str | None:
    """The kubernetes-validate definition of a Kubernetes type the SDK names, if it is one."""
    if name in KUBERNETES_NAMES:
        return KUBERNETES_NAMES[name]
    grouped = GROUPED.match(name)
    if grouped:
        group, version = grouped["group"].lower(), grouped["version"].lower()
        return f"io.k8s.api.{group}.{version}.{grouped['name']}"
    core = CORE.match(name)
    return f"io.k8s.api.core.v1.{core['name']}" if core else None


def schema_of(kind: str, types: dict, unchecked: set[str]) -> dict:
    """The schema of one SDK type string: a primitive, list[...], dict(str, ...) or a class."""
    if kind in PRIMITIVES:
        return {"type": PRIMITIVES[kind]}
    if kind == "datetime":
        return {"type": "string"}
    if kind == "object":
        return {}
    listed = re.fullmatch(r"list\[(.*)\]", kind)
    if listed:
        return {"type": "array", "items": schema_of(listed[1], types, unchecked)}
    mapped = re.fullmatch(r"dict\(str, (.*)\)", kind)
    if mapped:
        return {"type": "object", "additionalProperties": schema_of(mapped[1], types, unchecked)}
    if kind in types:
        return {"$ref": f"#/$defs/{kind}"}
    definition = kubernetes_definition(kind)
    if definition:
        return {"$ref": KUBERNETES + definition}
    unchecked.add(kind)
    return {"$comment": f"{kind}: no schema in the SDK or Kubernetes; not checked"}


def build_schema(types: dict, version: str) -> dict:
    """One schema document: ``$defs`` for every KServe type reachable from the two roots."""
    definitions, pending, unchecked = {}, list(ROOTS.values()), set()
    while pending:
        name = pending.pop()
        if name in definitions:
            continue
        described = types[name]
        properties = {
            key: schema_of(kind, types, unchecked) for key, kind in described["fields"].items()
        }
        definitions[name] = {
            "type": "object",
            "properties": properties,
            "required": described["required"],
            "additionalProperties": False,
        }
        pending.extend(re.findall(r"\b(V1(?:alpha|beta)\d\w+|Knative\w+)\b", str(described)))
        pending[:] = [candidate for candidate in pending if candidate in types]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"Generated by tests/deploy/make_kserve_schema.py from the kserve {version} wheel "
            "(Apache-2.0, https://www.apache.org/licenses/LICENSE-2.0). Not checked: "
            + ", ".join(sorted(unchecked))
        ),
        "oneOf": [{"$ref": f"#/$defs/{root}"} for root in ROOTS.values()],
        "$defs": definitions,
    }


def main(argv: list[str]) -> int:
    """``make_kserve_schema WHEEL``: the schema on standard output."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m tests.deploy.make_kserve_schema KSERVE_WHEEL")
    version = PurePosixPath(argv[0]).name.split("-")[1]
    schema = build_schema(read_types(argv[0]), version)
    json.dump(schema, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
