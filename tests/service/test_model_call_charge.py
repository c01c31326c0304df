"""The in-flight budget charges a model call at least what it holds, for each kind of call: the
shipped fp32 model, whose large batches run in slices, and the dynamically quantised int8 one,
which runs every batch whole. Measured by ``benchmarks.call_memory`` in fresh interpreters."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.inference.costs import INFERENCE_BYTES_PER_ELEMENT, SLICES_HELD
from service.inference.model_card import read_model_card
from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.v2_bodies import binary_infer_body

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS = PROJECT_ROOT / "models"
SHIPPED = [MODELS / "mnist_mlp.onnx", MODELS / "mnist_mlp.int8.onnx"]
# The largest batch, and the largest one the fp32 model runs whole.
BATCHES = [16_384, 4096]


@pytest.fixture(scope="module")
def measured() -> list[dict]:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs")
    command = [sys.executable, "-m", "benchmarks.call_memory", "--json", "--calls", "2"]
    command += ["--images", *map(str, BATCHES)]  # Both shipped models.
    output = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return [json.loads(line) for line in output.splitlines()]


def test_every_shipped_model_is_charged_at_least_what_its_calls_hold(measured: list[dict]) -> None:
    assert {(row["model"], row["images"]) for row in measured} == {
        (model.name, images) for model in SHIPPED for images in BATCHES
    }
    for row in measured:
        assert row["held_bytes"] > 0, row
        assert row["charged_bytes"] >= row["held_bytes"], row


def test_each_kind_of_call_is_charged_as_it_runs(measured: list[dict]) -> None:
    """The int8 model runs 16,384 images whole: charged for all of them, about twice what the
    fp32 model's slices are charged."""
    charged = {(row["model"], row["images"]): row["charged_bytes"] for row in measured}
    assert not read_model_card(MODELS / "mnist_mlp.int8.json").batch_independent
    assert charged["mnist_mlp.int8.onnx", 16_384] == INFERENCE_BYTES_PER_ELEMENT * 16_384 * 784
    assert (
        charged["mnist_mlp.onnx", 16_384] == INFERENCE_BYTES_PER_ELEMENT * SLICES_HELD * 4096 * 784
    )


def test_the_int8_model_serves_what_its_charge_fits_and_refuses_more_at_once() -> None:
    """Under the default budget the int8 model's largest batch whole would hold more than the
    budget: a 413 naming the memory, at once, rather than a call past the pod's memory."""
    version = read_model_card(MODELS / "mnist_mlp.int8.json").version
    settings = Settings(model_repository=MODELS, access_log=False)
    # The body is held twice while it is read (README "Limits and security"), then the model call.
    fits = settings.max_inflight_bytes // ((2 + INFERENCE_BYTES_PER_ELEMENT) * 784) - 64
    infer = f"/v2/models/mnist_mlp/versions/{version}/infer"
    with TestClient(create_rest_app(settings)) as client:
        refused = client.post(
            infer, content=(largest := binary_infer_body(16_384))[0], headers=largest[1]
        )
        served = client.post(infer, content=(batch := binary_infer_body(fits))[0], headers=batch[1])
    assert refused.status_code == 413
    assert "bytes of memory in flight" in refused.json()["error"]
    assert served.status_code == 200
    assert served.json()["outputs"][0]["shape"] == [fits, 10]
