"""MNIST_MAX_IMAGE_DECODE_BYTES: an image is bounded by the memory decoding it takes (width x
height x the bytes a pixel of its mode and format costs), checked from the header before any
pixel is decoded; what a request decodes is also charged to the in-flight budget."""

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.inference.image_files import read_header
from service.inference.limits import ImageLimits
from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.images import png_bytes, png_header_claiming

MiB = 1024 * 1024
LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)


def predict(client: TestClient, image: bytes) -> dict[str, object]:
    response = client.post("/predict", files={"file": ("upload", image)})
    return {"status": response.status_code, **response.json()}


@pytest.fixture(scope="module")
def webp_5000_lossless() -> bytes:
    """The issue's probe: a lossless WebP of 5000x5000 that is a few dozen bytes long."""
    buffer = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buffer, "WEBP", lossless=True, quality=0, method=0)
    return buffer.getvalue()


def test_a_tiny_lossless_webp_of_25_megapixels_is_refused_before_decoding(
    tiny_client: TestClient, webp_5000_lossless: bytes
) -> None:
    assert len(webp_5000_lossless) < 1024
    answer = predict(tiny_client, webp_5000_lossless)
    assert answer == {
        "status": 413,
        "error": "upload: image is a 5000x5000 WEBP: decoding it takes 425000000 bytes of "
        f"memory; at most {128 * MiB} are allowed",
    }
    metrics = tiny_client.get("/metrics").text
    assert 'mnist_rejected_inputs_total{reason="decode_too_large"} 1.0' in metrics


def test_a_16_bit_rgba_png_is_charged_for_its_colour_not_only_its_pixels(
    tiny_client: TestClient,
) -> None:
    """The header holds no pixels: a 413 rather than a 400 for truncated data shows that the
    bound came first. The same size in 8-bit grey passes this bound (and the pixel limit)."""
    answer = predict(tiny_client, png_header_claiming(5000, 5000, depth=16, colour_type=6))
    assert answer["status"] == 413
    assert answer["error"] == (
        "upload: image is a 5000x5000 PNG: decoding it takes 225000000 bytes of memory; at most "
        f"{128 * MiB} are allowed"
    )
    grey = predict(tiny_client, png_header_claiming(5000, 5000))
    assert grey["status"] == 400  # read past the bound, then found truncated


@pytest.mark.parametrize(
    ("image", "per_pixel"),
    [
        (png_bytes(np.zeros((40, 30), dtype=np.uint8)), 3),  # the libspng fast path, grey
        (png_bytes(np.zeros((40, 30, 3), dtype=np.uint8)), 9),  # the fast path, colour
        (png_header_claiming(30, 40, depth=16, colour_type=0), 7),  # Pillow's I;16
        (png_header_claiming(30, 40, depth=16, colour_type=6), 9),
    ],
    ids=["grey", "rgb", "grey-16", "rgba-16"],
)
def test_the_header_gives_the_decode_cost_of_each_mode(image: bytes, per_pixel: int) -> None:
    header = read_header(image, LIMITS)
    assert (header.width, header.height) == (30, 40)
    assert header.decode_bytes == 30 * 40 * per_pixel


@pytest.fixture
def small_decode_client(tiny_model_path: Path):
    settings = Settings(model_path=tiny_model_path, access_log=False, max_image_decode_bytes=MiB)
    with TestClient(create_rest_app(settings)) as client:
        yield client


def test_the_bound_follows_the_setting(small_decode_client: TestClient) -> None:
    fits = png_bytes(np.zeros((500, 500), dtype=np.uint8))  # 750,000 bytes to decode
    assert predict(small_decode_client, fits)["status"] == 200
    too_large = png_bytes(np.zeros((500, 500, 3), dtype=np.uint8))  # 2,250,000
    assert predict(small_decode_client, too_large)["status"] == 413


@pytest.fixture
def small_budget_client(tiny_model_path: Path):
    settings = Settings(
        model_path=tiny_model_path,
        access_log=False,
        max_inflight_bytes=4 * MiB,
        max_request_bytes=MiB,
        max_image_bytes=MiB,
        max_image_decode_bytes=3 * MiB,
        inflight_wait_seconds=0,
    )
    with TestClient(create_rest_app(settings)) as client:
        yield client


def test_decoding_is_charged_to_the_in_flight_budget_and_given_back(
    small_budget_client: TestClient,
) -> None:
    """With 2 MiB of the 4 MiB budget held elsewhere, a 600x600 grey image (1,080,000 bytes to
    decode) passes and a 500x500 colour one (2,250,000) is refused with 503 + Retry-After."""
    inflight = small_budget_client.app.state.dataplane.inflight
    grey = png_bytes(np.zeros((600, 600), dtype=np.uint8))
    colour = png_bytes(np.zeros((500, 500, 3), dtype=np.uint8))
    small_budget_client.portal.call(inflight.acquire, 2 * MiB)
    try:
        assert predict(small_budget_client, grey)["status"] == 200
        response = small_budget_client.post("/predict", files={"file": ("upload", colour)})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"].startswith("the service is busy: ")
    finally:
        inflight.release(2 * MiB)
    assert inflight.in_use == 0
    assert predict(small_budget_client, colour)["status"] == 200


def test_an_image_bound_larger_than_the_budget_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="max_image_decode_bytes cannot exceed max_inflight"):
        Settings(max_image_decode_bytes=256 * MiB, max_inflight_bytes=128 * MiB)
