"""``is_digit`` and ``digit_score`` through every transport, with the shipped model and a model
without a reject option (the tests' tiny model): /predict, V2 REST, gRPC and the OpenAPI schema.

Non-digits here are geometry and noise only (the project never uses letters or fonts).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.inference.preprocessing import NO_INK_REASON
from tests.support.grpc_servers import grpc_settings, inference_stub, served
from tests.support.images import drawn_seven, encode, mnist_like, png_bytes
from tests.support.mnist import load_test_set

DIGITS_CHECKED = 300


def post_files(client: TestClient, pictures: list[bytes]) -> list[dict]:
    files = [("files", (f"{i}.png", data, "image/png")) for i, data in enumerate(pictures)]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def star(size: int = 200) -> bytes:
    """A filled eight-pointed star, black on white: a shape, not a digit."""
    image = Image.new("L", (size, size), 255)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    radii = np.where(np.arange(16) % 2 == 0, 0.45, 0.18) * size
    points = [
        (size / 2 + r * np.cos(a), size / 2 + r * np.sin(a))
        for r, a in zip(radii, angles, strict=True)
    ]
    ImageDraw.Draw(image).polygon(points, fill=0)
    return encode(image, "PNG")


def noise(size: int = 64) -> bytes:
    return png_bytes(np.random.default_rng(3).integers(0, 256, (size, size), dtype=np.uint8))


def blank(level: int) -> bytes:
    return encode(Image.new("L", (120, 90), level), "PNG")


@pytest.fixture(scope="module")
def threshold(shipped_model_path: Path) -> float:
    card = json.loads(shipped_model_path.with_suffix(".json").read_text(encoding="utf-8"))
    return card["digit_score"]["threshold"]


@pytest.mark.parametrize("level", [0, 128, 255])
def test_an_image_without_ink_is_not_a_digit_and_says_why(shipped_client, level: int) -> None:
    (prediction,) = post_files(shipped_client, [blank(level)])

    assert prediction["is_digit"] is False
    assert prediction["not_digit_reason"] == NO_INK_REASON
    assert 0 <= prediction["digit"] <= 9  # still the model's best guess


def test_shapes_and_noise_are_not_digits(shipped_client, threshold: float) -> None:
    predictions = post_files(shipped_client, [star(), noise()])

    for prediction in predictions:
        assert prediction["is_digit"] is False, prediction
        assert prediction["digit_score"] < threshold
        assert "below the model's threshold" in prediction["not_digit_reason"]


def test_mnist_test_digits_are_digits(shipped_client, mnist_dir: Path, threshold: float) -> None:
    images, _ = load_test_set(mnist_dir)
    predictions = []
    for start in range(0, DIGITS_CHECKED, 50):
        chunk = images[start : start + 50]
        predictions += post_files(shipped_client, [png_bytes(image) for image in chunk])

    accepted = [prediction["is_digit"] for prediction in predictions]
    assert np.mean(accepted) >= 0.97
    for prediction in predictions:
        assert prediction["is_digit"] == (prediction["digit_score"] >= threshold)
        assert ("not_digit_reason" in prediction) != prediction["is_digit"]


def test_a_photographed_digit_is_a_digit(shipped_client) -> None:
    (prediction,) = post_files(shipped_client, [encode(drawn_seven(), "PNG")])

    assert prediction["is_digit"] is True and prediction["digit"] == 7


def test_a_model_without_digit_score_answers_null_and_decides_by_ink(tiny_client) -> None:
    inked, empty = post_files(tiny_client, [png_bytes(mnist_like()), blank(255)])

    assert inked["digit_score"] is None and inked["is_digit"] is True
    assert "not_digit_reason" not in inked
    assert empty["digit_score"] is None and empty["is_digit"] is False
    assert empty["not_digit_reason"] == NO_INK_REASON


def test_v2_metadata_and_infer_carry_digit_score(shipped_client, threshold: float) -> None:
    metadata = shipped_client.get("/v2/models/mnist_mlp").json()
    assert {"name": "digit_score", "datatype": "FP32", "shape": [-1]} in metadata["outputs"]
    images = np.stack([mnist_like(), np.zeros((28, 28), np.uint8)])
    body = {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [2, 28, 28],
                        "data": images.ravel().tolist()}]}  # fmt: skip

    response = shipped_client.post("/v2/models/mnist_mlp/infer", json=body)

    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["digit_score"]["shape"] == [2]
    assert outputs["digit_score"]["data"][1] < threshold  # the all-black input


def test_the_openapi_schema_documents_the_verdict(shipped_client) -> None:
    schema = shipped_client.get("/openapi.json").json()
    prediction = schema["components"]["schemas"]["Prediction"]

    assert {"is_digit", "digit_score"} <= set(prediction["required"])
    assert "not_digit_reason" in prediction["properties"]
    assert "Its probability." not in prediction["properties"]["confidence"]["description"]


def test_grpc_metadata_and_infer_carry_digit_score(
    shipped_model_path: Path, threshold: float
) -> None:
    images = np.stack([mnist_like(), np.zeros((28, 28), np.uint8)])
    request = pb.ModelInferRequest(
        model_name="mnist_mlp",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="UINT8",
                                                      shape=[2, 28, 28])],
        raw_input_contents=[images.tobytes()],
    )  # fmt: skip
    with served(grpc_settings(shipped_model_path)) as server, inference_stub(server.target) as stub:
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="mnist_mlp"), timeout=10)
        answer = stub.ModelInfer(request, timeout=10)

    assert [(o.name, o.datatype, list(o.shape)) for o in metadata.outputs] == [
        ("probabilities", "FP32", [-1, 10]),
        ("digit_score", "FP32", [-1]),
    ]
    names = [output.name for output in answer.outputs]
    scores = np.frombuffer(answer.raw_output_contents[names.index("digit_score")], np.float32)
    assert answer.outputs[names.index("digit_score")].shape == [2]
    assert scores[1] < threshold
