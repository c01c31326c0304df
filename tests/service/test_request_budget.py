"""MNIST_MAX_REQUEST_PIXELS: the images of one request share a budget of decoded pixels, charged
from each header before it is decoded; over it, a 413 that names the budget."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.images import png_bytes, png_header_claiming


def files(*images: bytes) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (f"{index}.png", image)) for index, image in enumerate(images)]


def test_the_default_budget_refuses_three_maximum_images_before_decoding_any(
    tiny_client: TestClient,
) -> None:
    """Each 5000x5000 header passes the per-image limit (25 MP); together they are 75 MP. The
    files hold no pixels, so a 413 (not a 400 for truncated data) shows nothing was decoded."""
    claimed = png_header_claiming(5000, 5000)
    response = tiny_client.post("/predict", files=files(claimed, claimed, claimed))
    assert response.status_code == 413
    assert response.json()["error"] == (
        "2.png: the images of this request hold 75000000 pixels so far; at most 50000000 "
        "decoded pixels are allowed per request"
    )


@pytest.fixture
def small_budget_client(tiny_model_path: Path):
    settings = Settings(
        model_path=tiny_model_path, access_log=False, max_image_pixels=2000, max_request_pixels=3000
    )
    with TestClient(create_rest_app(settings)) as client:
        yield client


def test_images_within_the_budget_are_read(small_budget_client: TestClient) -> None:
    image = png_bytes(np.zeros((40, 40), dtype=np.uint8))  # 1,600 pixels
    assert small_budget_client.post("/predict", files=files(image)).status_code == 200


def test_the_image_that_goes_over_the_budget_is_named_in_a_413(
    small_budget_client: TestClient,
) -> None:
    image = png_bytes(np.zeros((40, 40), dtype=np.uint8))
    response = small_budget_client.post("/predict", files=files(image, image))
    assert response.status_code == 413
    assert response.json()["error"] == (
        "1.png: the images of this request hold 3200 pixels so far; at most 3000 decoded pixels "
        "are allowed per request"
    )
    metrics = small_budget_client.get("/metrics").text
    assert 'mnist_rejected_inputs_total{reason="request_too_many_pixels"} 1.0' in metrics


def test_the_budget_cannot_be_smaller_than_one_image() -> None:
    with pytest.raises(ValidationError, match="max_image_pixels cannot exceed max_request_pixels"):
        Settings(max_image_pixels=10_000, max_request_pixels=5_000)
