"""deploy/: every kustomization renders, every object is schema-valid, and what the manifests
promise (probes, ports, settings, security, no unavailable pod) holds against the real app."""

import copy
import os
from functools import cache
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.settings import Settings
from tests.deploy.manifests import (
    KUSTOMIZATIONS,
    MISSING_KUBECTL,
    container_environment,
    container_port,
    containers,
    is_kserve,
    kserve_errors,
    kubectl,
    kubernetes_versions,
    probes,
    render,
    validate_kubernetes,
)
from tests.support.grpc_servers import served
from tests.support.ports import free_port

pytestmark = pytest.mark.skipif(kubectl() is None, reason=MISSING_KUBECTL)


@cache
def rendered(name: str) -> tuple[dict, ...]:
    return tuple(render(KUSTOMIZATIONS[name]))


def objects(name: str, kind: str) -> list[dict]:
    return [document for document in rendered(name) if document["kind"] == kind]


def workloads() -> list:
    """(kustomization, object) for everything that runs our container, as test parameters."""
    if kubectl() is None:
        return []
    return [
        pytest.param(name, document, id=f"{name}, {document['kind']}")
        for name in KUSTOMIZATIONS
        for document in rendered(name)
        if document["kind"] in ("Deployment", "ServingRuntime")
    ]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_kustomization_renders_objects(name: str) -> None:
    kinds = {document["kind"] for document in rendered(name)}
    expected = {"ServingRuntime", "InferenceService"} if name == "kserve" else {"Deployment"}
    assert expected <= kinds


@pytest.mark.parametrize("version", kubernetes_versions())
def test_every_kubernetes_object_is_valid_in_every_supported_version(version: str) -> None:
    checked = []
    for name in KUSTOMIZATIONS:
        for document in rendered(name):
            if not is_kserve(document):
                validate_kubernetes(document, version)
                checked.append(document["kind"])
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(
        checked
    )


def test_kserve_objects_match_the_kserve_api_types() -> None:
    for document in rendered("kserve"):
        assert is_kserve(document), document["kind"]
        assert kserve_errors(document) == []


def _kserve(kind: str) -> dict:
    return copy.deepcopy(objects("kserve", kind)[0])


def test_the_kserve_check_refuses_what_kserve_would() -> None:
    unknown_key = _kserve("InferenceService")
    unknown_key["spec"]["predictor"]["model"]["protocol"] = "v2"
    missing_format = _kserve("InferenceService")
    del missing_format["spec"]["predictor"]["model"]["modelFormat"]
    bad_probe = _kserve("ServingRuntime")
    bad_probe["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/v2/health/ready"
    bad_resources = _kserve("ServingRuntime")
    bad_resources["spec"]["containers"][0]["resources"]["requests"]["cpu"] = ["1"]
    expected = [
        (unknown_key, "spec/predictor/model", "'protocol' was unexpected"),
        (missing_format, "spec/predictor/model", "'modelFormat' is a required property"),
        (bad_probe, "spec/containers/0/readinessProbe/httpGet", "'paht' was unexpected"),
        (bad_resources, "spec/containers/0/resources/requests/cpu", "is not valid under any"),
    ]
    for document, path, message in expected:
        errors = kserve_errors(document)
        assert any(error.startswith(f"{path}:") and message in error for error in errors), errors


def test_the_inference_service_uses_the_runtime_with_the_v2_protocol() -> None:
    runtime, service = _kserve("ServingRuntime"), _kserve("InferenceService")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    assert "v2" in runtime["spec"]["protocolVersions"]
    formats = runtime["spec"]["supportedModelFormats"]
    assert {"name": model["modelFormat"]["name"], "version": model["modelFormat"]["version"]} in [
        {"name": entry["name"], "version": entry["version"]} for entry in formats
    ]


def test_selectors_reach_the_pods_and_the_autoscaler_scales_the_deployment() -> None:
    for name in [name for name in KUSTOMIZATIONS if name.startswith("kubernetes")]:
        deployment = objects(name, "Deployment")[0]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selectors = [deployment["spec"]["selector"]["matchLabels"]]
        selectors += [service["spec"]["selector"] for service in objects(name, "Service")]
        budgets = objects(name, "PodDisruptionBudget")
        selectors += [budget["spec"]["selector"]["matchLabels"] for budget in budgets]
        for selector in selectors:
            assert selector and selector.items() <= pod_labels.items()
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for service in objects(name, "Service"):
            for port in service["spec"]["ports"]:
                assert container_port(container, port["targetPort"]) == port["port"]
        (autoscaler,) = objects(name, "HorizontalPodAutoscaler")
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
        assert "replicas" not in deployment["spec"]
        assert autoscaler["spec"]["minReplicas"] >= 2 and len(budgets) == 1


def test_updates_and_drains_keep_every_pod_serving() -> None:
    deployment = objects("kubernetes base", "Deployment")[0]
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    field = Settings.model_fields.get("read_timeout")
    read_timeout = field.default if field else 30
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + read_timeout


@pytest.mark.parametrize(("name", "document"), workloads())
def test_containers_run_unprivileged_on_a_read_only_root(name: str, document: dict) -> None:
    spec = document["spec"]
    pod = spec.get("template", {}).get("spec", spec)
    for container in containers(document):
        security = dict(pod.get("securityContext", {}), **container["securityContext"])
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
    service_spec = document if document["kind"] == "Deployment" else None
    if service_spec is not None:
        assert pod["automountServiceAccountToken"] is False
    else:
        (service,) = objects(name, "InferenceService")
        assert service["spec"]["predictor"]["automountServiceAccountToken"] is False


def _settings_from(container: dict, monkeypatch: pytest.MonkeyPatch, files: Path) -> Settings:
    """The settings the service reads in this container: its environment, nothing else; a file
    the environment names on a mounted volume (a Secret) is a stand-in under ``files``."""
    environment = container_environment(container)
    mounts = [mount["mountPath"] for mount in container.get("volumeMounts", [])]
    for variable, value in environment.items():
        if any(value.startswith(mount.rstrip("/") + "/") for mount in mounts):
            stand_in = files / variable
            stand_in.write_text("stand-in-key-for-the-test\n", encoding="utf-8")
            environment[variable] = str(stand_in)
    unknown = [
        variable
        for variable in environment
        if variable.startswith("MNIST_")
        and variable.removeprefix("MNIST_").lower() not in Settings.model_fields
    ]
    assert unknown == [], f"not settings of the service: {unknown}"
    for variable in list(os.environ):
        if variable.startswith("MNIST_"):
            monkeypatch.delenv(variable)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    return Settings(access_log=False)


@pytest.mark.parametrize(("name", "document"), workloads())
def test_every_probe_and_port_is_one_the_service_serves(
    name: str, document: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The app built from the container's own settings (service.app: REST, and gRPC when on),
    served on free loopback ports, answers every probe path with 200 and gRPC health with
    SERVING; the ports the manifests declare are exactly the ones those settings bind."""
    for container in containers(document):
        settings = _settings_from(container, monkeypatch, tmp_path)
        served_ports = {settings.port} | ({settings.grpc_port} if settings.grpc_enabled else set())
        declared = {port["containerPort"] for port in container.get("ports", [])}
        assert declared == served_ports
        for kind, probe in probes(container):
            assert container_port(container, probe["httpGet"]["port"]) == settings.port, kind
        loopback = settings.model_copy(update={"grpc_port": free_port()})
        with served(loopback) as server:
            for kind, probe in probes(container):
                path = probe["httpGet"]["path"]
                assert httpx.get(server.url + path, timeout=10).status_code == 200, (kind, path)
            if settings.grpc_enabled:
                assert grpc_health(server.target) == health_pb2.HealthCheckResponse.SERVING
            if settings.all_api_keys:
                # The overlay's keys are on: probes stay open, inference needs a key.
                refused = httpx.post(server.url + "/v2/models/mnist_mlp/infer", timeout=10)
                assert refused.status_code == 401


def grpc_health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
