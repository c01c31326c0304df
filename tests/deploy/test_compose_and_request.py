"""compose.yaml, Prometheus' scrape config and the KServe example request say what the service does,
and every place that names the image names the same tag: the project's version."""

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text(encoding="utf-8"))
PROMETHEUS = yaml.safe_load(
    (PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
)
REQUEST = PROJECT_ROOT / "deploy" / "kserve" / "request.json"
VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]
IMAGE = f"mnist-mlp:{VERSION}"


def dockerfile_env(name: str) -> str:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    return re.search(rf"\b{name}=(\S+)", dockerfile)[1]


def test_compose_publishes_both_ports_the_image_serves() -> None:
    service = COMPOSE["services"]["mnist-mlp"]
    http, grpc = dockerfile_env("MNIST_PORT"), dockerfile_env("MNIST_GRPC_PORT")
    assert (http, grpc) == (str(Settings().port), str(Settings().grpc_port))
    assert service["ports"] == [f"{http}:{http}", f"{grpc}:{grpc}"]
    assert service["image"] == IMAGE and service["build"] == "."
    assert service["read_only"] is True


def test_compose_healthcheck_polls_readiness_on_the_http_port() -> None:
    check = COMPOSE["services"]["mnist-mlp"]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert f"127.0.0.1:{dockerfile_env('MNIST_PORT')}/v2/health/ready" in check["test"][-1]


def test_prometheus_is_optional_and_scrapes_the_service() -> None:
    prometheus = COMPOSE["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert prometheus["depends_on"]["mnist-mlp"]["condition"] == "service_healthy"
    [job] = PROMETHEUS["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"mnist-mlp:{dockerfile_env('MNIST_PORT')}"]


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose is not installed: compose.yaml is checked as YAML only",
)
def test_docker_compose_accepts_the_file() -> None:
    for profile in ([], ["--profile", "monitoring"]):
        command = ["docker", "compose", *profile, "--file", str(PROJECT_ROOT / "compose.yaml")]
        result = subprocess.run([*command, "config", "--quiet"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_every_image_reference_is_the_projects_version() -> None:
    for kustomization in ("kubernetes/base", "kserve"):
        path = PROJECT_ROOT / "deploy" / kustomization / "kustomization.yaml"
        images = yaml.safe_load(path.read_text(encoding="utf-8"))["images"]
        assert images == [{"name": "mnist-mlp", "newTag": VERSION}], path
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    tags = set(re.findall(r"\bmnist-mlp:([\w.-]+)", readme)) - {"bookworm", "smoke"}
    assert tags == {VERSION}, "the README tags the image otherwise than the manifests pull it"


def test_the_kserve_example_request_is_the_sample_seven(shipped_client) -> None:
    request = json.loads(REQUEST.read_text(encoding="utf-8"))
    [tensor] = request["inputs"]
    assert (tensor["name"], tensor["shape"], tensor["datatype"]) == ("image", [1, 28, 28], "UINT8")
    seven = np.asarray(Image.open(PROJECT_ROOT / "docs" / "seven_28x28.png"))
    assert tensor["data"] == seven.ravel().tolist()
    answer = shipped_client.post("/v2/models/mnist_mlp/infer", json=request)
    assert answer.status_code == 200, answer.text
    probabilities = next(o for o in answer.json()["outputs"] if o["name"] == "probabilities")
    assert int(np.argmax(probabilities["data"])) == 7


def test_the_readmes_cluster_steps_name_what_the_manifests_use() -> None:
    """kind/minikube load the image the base pulls, and every `kubectl apply -k` path exists."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"kind load docker-image {IMAGE}" in readme
    assert f"minikube image load {IMAGE}" in readme
    applied = re.findall(r"kubectl apply -k (\S+)", readme)
    assert {"deploy/kubernetes/base", "deploy/kserve"} <= set(applied)
    for path in applied:
        assert (PROJECT_ROOT / path / "kustomization.yaml").is_file(), path
    assert "kustomize edit" not in readme, "the kustomize binary is not part of kubectl"
