"""Property-based: whatever bytes arrive, preprocessing answers a uint8 [28, 28] array or raises
one of the service's own errors (which render as a 4xx), never anything else (a 500).
Images stay under 96x96 so that the suite stays fast; the limits themselves have their own test.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from service.inference.errors import PayloadTooLarge, ServiceError
from service.inference.image_files import FORMAT_SIGNATURES
from service.inference.limits import ImageLimits
from service.inference.preprocessing import image_to_array
from tests.support.images import encode, png_header_claiming

# Pillow warns about the broken TIFF metadata these tests send on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)
SMALL_LIMITS = ImageLimits(max_pixels=4_096, max_side=128)
SIGNATURES = [signature for _, signatures in FORMAT_SIGNATURES for signature in signatures] + [
    b"RIFF\0\0\0\0WEBP"
]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
# The modes issue 3 promises to read; they must always succeed once Pillow could write them.
PROMISED_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
OTHER_MODES = ["PA", "RGBX", "YCbCr", "HSV", "LAB", "I;16B"]
WIDE_DTYPES = {"I;16": np.uint16, "I;16B": np.uint16, "I": np.int32, "F": np.float32}
SAVE_ERRORS = (OSError, ValueError, KeyError, TypeError)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def preprocess(data: bytes, limits: ImageLimits = LIMITS) -> np.ndarray | None:
    """The array, or None when the service refused the bytes with one of its own errors."""
    try:
        result = image_to_array(data, "auto", limits)
    except ServiceError:
        return None
    assert result.dtype == np.uint8 and result.shape == (28, 28)
    return result


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    """Random pixels in ``mode``, so that every channel and bit depth carries varied values."""
    rng = np.random.default_rng(seed)
    if mode in WIDE_DTYPES:
        peak = 1.0 if mode == "F" else 65535
        values = rng.uniform(0, peak, size=(height, width)).astype(WIDE_DTYPES[mode])
        image = Image.fromarray(values)
        return image if image.mode == mode else image.convert(mode)
    pixels = rng.integers(0, 256, size=(height, width, 4), dtype=np.uint8)
    return Image.fromarray(pixels, "RGBA").convert(mode)


def writable(mode: str, image_format: str) -> bool:
    """Whether Pillow can write ``mode`` images in ``image_format`` at all."""
    try:
        encode(random_image(mode, 2, 2, 0), image_format)
    except SAVE_ERRORS:
        return False
    return True


WRITABLE = [(m, f) for m in PROMISED_MODES + OTHER_MODES for f in FORMATS if writable(m, f)]


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_are_answered_or_refused(data: bytes) -> None:
    preprocess(data)


@FAST
@given(st.sampled_from(SIGNATURES), st.binary(max_size=4096))
def test_random_bytes_behind_a_real_magic_number_are_answered_or_refused(
    signature: bytes, tail: bytes
) -> None:
    preprocess(signature + tail)


@pytest.mark.parametrize(("mode", "image_format"), WRITABLE)
@settings(max_examples=5, deadline=None)
@given(st.integers(1, 96), st.integers(1, 96), st.integers(0, 2**32 - 1))
def test_any_image_in_any_mode_and_format_gives_a_digit_array(
    mode: str, image_format: str, width: int, height: int, seed: int
) -> None:
    data = encode(random_image(mode, width, height, seed), image_format)
    result = preprocess(data)
    if mode in PROMISED_MODES:
        assert result is not None, f"{mode} {image_format} {width}x{height} was refused"


@FAST
@given(st.sampled_from(WRITABLE), st.data())
def test_damaged_images_are_answered_or_refused(
    mode_and_format: tuple[str, str], data: st.DataObject
) -> None:
    mode, image_format = mode_and_format
    original = encode(random_image(mode, 40, 30, 0), image_format)
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(damaged)))
    preprocess(bytes(damaged[:cut]))


@FAST
@given(st.integers(0, 2**31), st.integers(0, 2**31))
def test_header_sizes_over_the_limits_are_refused_before_decoding(width: int, height: int) -> None:
    data = png_header_claiming(width, height)
    too_large = max(width, height) > SMALL_LIMITS.max_side or (
        width * height > SMALL_LIMITS.max_pixels
    )
    if too_large and min(width, height) > 0:
        with pytest.raises(PayloadTooLarge):
            image_to_array(data, "auto", SMALL_LIMITS)
    else:
        preprocess(data, SMALL_LIMITS)
