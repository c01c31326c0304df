"""``POST /predict`` through the real app: answers and parity with onnxruntime.

Every refusal lives in one table: tests/reliability/test_hostile_input.py.
"""

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.images import drawn_seven, encode, mnist_like, png_bytes
from tests.support.mnist import load_test_set

PARITY_IMAGES = 200


def post_file(client: TestClient, data: bytes, name: str = "digit.png", **params):
    return client.post("/predict", files={"file": (name, data, "image/png")}, params=params)


def assert_still_serving(client: TestClient) -> None:
    response = post_file(client, png_bytes(mnist_like()))
    assert response.status_code == 200, response.text


def test_one_file_gets_digit_confidence_probabilities_filename_and_model(tiny_client) -> None:
    response = post_file(tiny_client, png_bytes(mnist_like()), name="seven.png")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "mnist_mlp", "version": "1"}
    (prediction,) = body["predictions"]
    assert len(prediction["probabilities"]) == 10
    assert prediction["digit"] == int(np.argmax(prediction["probabilities"]))
    assert prediction["confidence"] == max(prediction["probabilities"])
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert prediction["filename"] == "seven.png"


def test_several_files_are_answered_in_order(tiny_client, tiny_model_path: Path) -> None:
    arrays = [mnist_like(seed) for seed in range(5)]
    files = [
        ("files", (f"{index}.png", png_bytes(array), "image/png"))
        for index, array in enumerate(arrays)
    ]
    response = tiny_client.post("/predict", files=files)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [prediction["filename"] for prediction in predictions] == [f"{i}.png" for i in range(5)]
    session = onnxruntime.InferenceSession(str(tiny_model_path))
    expected = session.run(None, {"image": np.stack(arrays)})[0]
    assert np.allclose(
        [prediction["probabilities"] for prediction in predictions], expected, atol=1e-6
    )


def test_raw_image_body_has_no_filename(tiny_client) -> None:
    response = tiny_client.post(
        "/predict", content=encode(drawn_seven(), "JPEG"), headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 200
    assert "filename" not in response.json()["predictions"][0]


def test_invert_parameter_changes_what_the_model_sees(tiny_client) -> None:
    light = png_bytes(255 - mnist_like())
    automatic = post_file(tiny_client, light).json()["predictions"][0]["probabilities"]
    forced_off = post_file(tiny_client, light, invert="false").json()["predictions"][0][
        "probabilities"
    ]
    dark = post_file(tiny_client, png_bytes(mnist_like())).json()["predictions"][0]["probabilities"]
    assert automatic == dark
    assert forced_off != automatic


def test_a_blank_image_is_answered(tiny_client) -> None:
    response = post_file(tiny_client, encode(Image.new("L", (64, 64), 255), "PNG"))
    assert response.status_code == 200


def test_200_mnist_pngs_match_onnxruntime_on_their_arrays(
    mnist_dir: Path, shipped_model_path: Path
) -> None:
    images, _ = load_test_set(mnist_dir)
    chosen = images[:PARITY_IMAGES]
    session = onnxruntime.InferenceSession(str(shipped_model_path))
    expected = session.run(None, {"image": chosen})[0].argmax(axis=1)
    settings = Settings(model_path=shipped_model_path, access_log=False, max_images_per_request=50)
    with TestClient(create_rest_app(settings)) as client:
        digits = []
        for start in range(0, PARITY_IMAGES, 50):
            files = [
                ("files", (f"{i}.png", png_bytes(image), "image/png"))
                for i, image in enumerate(chosen[start : start + 50])
            ]
            response = client.post("/predict", files=files)
            assert response.status_code == 200, response.text
            digits += [prediction["digit"] for prediction in response.json()["predictions"]]
    assert np.array_equal(digits, expected)


def test_requests_before_the_model_is_loaded_get_503(tiny_settings: Settings) -> None:
    client = TestClient(create_rest_app(tiny_settings))
    response = post_file(client, png_bytes(mnist_like()))
    assert response.status_code == 503
    assert "not loaded" in response.json()["error"]


def test_unknown_route_and_method_get_json_errors(tiny_client) -> None:
    missing = tiny_client.get("/nowhere")
    assert missing.status_code == 404 and "/docs" in missing.json()["error"]
    wrong_method = tiny_client.get("/predict")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.json()["error"]
    assert_still_serving(tiny_client)
