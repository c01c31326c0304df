"""From uploaded bytes to the model's 28x28 input, in every format and mode the service reads."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from service.inference import preprocessing
from service.inference.border import border_is_light
from service.inference.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from service.inference.limits import ImageLimits
from service.inference.preprocessing import (
    image_to_array,
    remove_background,
)
from tests.support.images import drawn_seven, encode, mnist_like, png_header_claiming

LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)


def reference_seven() -> np.ndarray:
    return image_to_array(encode(drawn_seven(), "PNG"), "auto", LIMITS)


def overlap(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of the inked pixels."""
    first_ink, second_ink = first > 64, second > 64
    return (first_ink & second_ink).sum() / max((first_ink | second_ink).sum(), 1)


def test_28x28_png_reaches_the_model_pixel_for_pixel() -> None:
    pixels = mnist_like()
    assert np.array_equal(
        image_to_array(encode(Image.fromarray(pixels), "PNG"), "auto", LIMITS), pixels
    )


def test_auto_inverts_a_light_background_and_forced_modes_obey() -> None:
    pixels = mnist_like()
    light = encode(Image.fromarray(255 - pixels), "PNG")
    assert np.array_equal(image_to_array(light, "auto", LIMITS), pixels)
    assert np.array_equal(image_to_array(light, "false", LIMITS), 255 - pixels)
    dark = encode(Image.fromarray(pixels), "PNG")
    assert np.array_equal(image_to_array(dark, "true", LIMITS), 255 - pixels)


def test_unevenly_lit_paper_is_flattened_to_black() -> None:
    pixels = mnist_like()
    rows, columns = np.mgrid[0:28, 0:28]
    paper = 140.0 + 110.0 * (rows + columns) / 54.0
    ink = pixels / 255.0
    photo = np.rint(paper * (1 - ink) + 20.0 * ink).astype(np.uint8)

    result = image_to_array(encode(Image.fromarray(photo), "PNG"), "auto", LIMITS)

    background = result[pixels == 0]
    assert background.max() <= 8
    assert result.max() == 255
    assert overlap(result, pixels) >= 0.9


def test_grey_background_is_subtracted_but_black_and_forced_light_ones_are_kept() -> None:
    pixels = mnist_like()
    grey = np.maximum(pixels, 60).astype(np.uint8)

    result = image_to_array(encode(Image.fromarray(grey), "PNG"), "auto", LIMITS)

    assert result[pixels == 0].max() == 0
    assert np.all(result[pixels >= 128] > 64)
    assert result.max() == 255
    light = encode(Image.fromarray(255 - pixels), "PNG")
    assert np.array_equal(image_to_array(light, "false", LIMITS), 255 - pixels)


def test_large_image_is_cropped_scaled_to_20_pixels_and_centred_by_mass() -> None:
    result = reference_seven()
    assert result.shape == (28, 28) and result.dtype == np.uint8
    ink_rows, ink_columns = np.nonzero(result > 0)
    height = ink_rows.max() - ink_rows.min() + 1
    width = ink_columns.max() - ink_columns.min() + 1
    assert max(height, width) == 20
    mass = result.astype(float)
    centre = (
        np.array([mass.sum(axis=1) @ np.arange(28), mass.sum(axis=0) @ np.arange(28)]) / mass.sum()
    )
    assert np.all(np.abs(centre - 13.5) <= 1.0)
    assert result.max() == 255


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_mode_gives_the_same_digit(mode: str) -> None:
    seven = drawn_seven()
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(seven, dtype=np.uint16) * 257)
    else:
        converted = seven.convert(mode)
    image_format = "TIFF" if mode in ("CMYK", "I;16", "I", "F") else "PNG"
    result = image_to_array(encode(converted, image_format), "auto", LIMITS)
    assert overlap(result, reference_seven()) > 0.9


@pytest.mark.parametrize(
    ("image_format", "options"),
    [
        ("PNG", {}),
        ("JPEG", {"quality": 95}),
        ("BMP", {}),
        ("GIF", {}),
        ("TIFF", {}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_every_format_gives_the_same_digit(image_format: str, options: dict) -> None:
    result = image_to_array(encode(drawn_seven(), image_format, **options), "auto", LIMITS)
    assert overlap(result, reference_seven()) > 0.85


def test_animated_gif_uses_its_first_frame() -> None:
    blank = Image.new("L", (240, 300), 255)
    data = encode(drawn_seven(), "GIF", save_all=True, append_images=[blank], duration=100)
    assert overlap(image_to_array(data, "auto", LIMITS), reference_seven()) > 0.85


@pytest.mark.parametrize("ink", [0, 255])
def test_transparent_pixels_count_as_background(ink: int) -> None:
    seven = drawn_seven(ink=255, paper=0)
    rgba = Image.new("RGBA", seven.size, (255 - ink, 255 - ink, 255 - ink, 0))
    rgba.paste(Image.new("RGBA", seven.size, (ink, ink, ink, 255)), mask=seven)
    result = image_to_array(encode(rgba, "PNG"), "auto", LIMITS)
    assert overlap(result, reference_seven()) > 0.9


def test_exif_orientation_is_applied() -> None:
    seven = drawn_seven()
    stored = seven.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())
    assert overlap(image_to_array(data, "auto", LIMITS), reference_seven()) > 0.8


def test_an_image_without_ink_is_answered_as_blank() -> None:
    blank = encode(Image.new("L", (100, 100), 255), "PNG")
    assert not image_to_array(blank, "auto", LIMITS).any()


def test_header_dimensions_are_refused_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge, match="32768x32768"):
        image_to_array(png_header_claiming(32768, 32768), "auto", LIMITS)


def test_longest_side_limit() -> None:
    strip = encode(Image.new("L", (20_000, 1), 0), "PNG")
    with pytest.raises(PayloadTooLarge, match="longest side"):
        image_to_array(strip, "auto", LIMITS)


def test_pixel_limit_follows_the_limits_given() -> None:
    small_limits = ImageLimits(max_pixels=10_000, max_side=10_000)
    with pytest.raises(PayloadTooLarge, match="at most 10000 pixels"):
        image_to_array(encode(drawn_seven(), "PNG"), "auto", small_limits)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", BadRequest, "empty"),
        (b"hello, this is text", UnsupportedMediaType, "not an image"),
        (b"%PDF-1.7\n", UnsupportedMediaType, "not an image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", UnsupportedMediaType, "not an image"),
        (encode(drawn_seven(), "PNG")[:200], BadRequest, "corrupt or truncated"),
        (encode(drawn_seven(), "JPEG")[:300], BadRequest, "corrupt or truncated"),
        (b"GIF89a" + b"\x00" * 20, BadRequest, "corrupt or truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff" * 64, BadRequest, "corrupt or truncated"),
    ],
    ids=[
        "empty",
        "text",
        "pdf",
        "svg",
        "truncated-png",
        "truncated-jpeg",
        "broken-gif",
        "garbage-png",
    ],
)
def test_bad_bytes_raise_the_services_own_errors(data: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        image_to_array(data, "auto", LIMITS)


def large_seven_in(mode: str) -> Image.Image:
    """A 2400x3000 "7" in ``mode``, big enough to be reduced to the working size."""
    seven = drawn_seven(size=(2400, 3000))
    if mode == "I;16":
        return Image.fromarray(np.asarray(seven, dtype=np.uint16) * 257)
    if mode == "P-transparent":
        palette = seven.convert("P")
        palette.info["transparency"] = palette.getpixel((0, 0))
        return palette
    return seven.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "P", "P-transparent", "RGBA", "I;16", "CMYK"])
def test_large_images_are_reduced_before_processing_and_read_the_same(mode: str) -> None:
    image_format = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    data = encode(large_seven_in(mode), image_format)
    assert overlap(image_to_array(data, "auto", LIMITS), reference_seven()) > 0.85


@settings(max_examples=300, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 9), st.integers(1, 9)),
        elements=st.sampled_from([0, 1, 126, 127, 128, 129, 200, 255]),
    )
)
def test_the_border_check_is_the_median_of_the_border(pixels: np.ndarray) -> None:
    """Counting decides exactly what the median of the border pixels over 127 decides."""
    border = np.concatenate((pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]))
    assert border_is_light(pixels) == (float(np.median(border)) > 127.0)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP", "TIFF"])
def test_exif_orientation_is_applied_in_every_format_that_carries_it(image_format: str) -> None:
    """The orientation is looked for wherever Pillow reads one, not in JPEG alone."""
    stored = drawn_seven().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, image_format, exif=exif.tobytes())
    assert overlap(image_to_array(data, "auto", LIMITS), reference_seven()) > 0.8


SMALL_SIDES = st.integers(2, 9)


@st.composite
def lit_backgrounds(draw: st.DrawFn) -> np.ndarray:
    """Planes of any slope and level (around the thresholds too), with noise and some ink."""
    height, width = draw(st.integers(2, 40)), draw(st.integers(2, 40))
    offset = draw(st.floats(-40.0, 300.0))
    slopes = draw(st.tuples(st.floats(-12.0, 12.0), st.floats(-12.0, 12.0)))
    rows, columns = np.mgrid[0:height, 0:width]
    noise = draw(arrays(np.int16, (height, width), elements=st.integers(-3, 3)))
    plane = offset + slopes[0] * rows + slopes[1] * columns + noise
    if draw(st.booleans()):
        plane[height // 3 : 1 + 2 * height // 3, width // 3 : 1 + 2 * width // 3] = 255
    return np.clip(np.rint(plane), 0, 255).astype(np.uint8)


@settings(max_examples=400, deadline=None)
@given(st.one_of(lit_backgrounds(), arrays(np.uint8, st.tuples(SMALL_SIDES, SMALL_SIDES))))
def test_the_background_is_decided_as_the_fitted_plane_decides(pixels: np.ndarray) -> None:
    """Deciding from the fit's coefficients changes no pixel of what fitting the plane gives."""
    with mock.patch.object(preprocessing, "plane_may_lie_between", return_value=True):
        by_fitting = remove_background(pixels)
    assert np.array_equal(remove_background(pixels), by_fitting)
