"""Uploaded image files to grayscale pixels: format sniffing, header limits, decoding.

Every format goes through Pillow, except the PNGs ``png`` decodes faster to the same pixels. The
header is checked against the limits before any pixel is decoded; a file Pillow cannot read is a
clear 400 or 415 naming the format, never an exception from deep inside Pillow.
"""

import io
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.inference import png
from service.inference.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from service.inference.limits import ImageLimits

WORKING_SIDE = 1024
FORMAT_SIGNATURES: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("PNG", (b"\x89PNG\r\n\x1a\n",)),
    ("JPEG", (b"\xff\xd8\xff",)),
    ("GIF", (b"GIF87a", b"GIF89a")),
    ("BMP", (b"BM",)),
    ("TIFF", (b"II*\x00", b"MM\x00*")),
)
SUPPORTED_FORMATS = "PNG, JPEG, GIF, BMP, TIFF or WebP"
# Where Pillow's ``getexif`` looks for an orientation (besides a TIFF's own tags).
ORIENTATION_SOURCES = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")

# The header check in ``open_image`` replaces Pillow's process-wide guard: it runs at the same
# point (after the header, before any pixel), follows the settings, and names the size.
Image.MAX_IMAGE_PIXELS = None


def sniff_format(data: bytes) -> str:
    """Decide the format from the magic number, never from a file name or a declared type."""
    if not data:
        raise BadRequest("the image is empty (0 bytes)", reason="empty_image")
    for name, signatures in FORMAT_SIGNATURES:
        if data.startswith(signatures):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise UnsupportedMediaType(
        f"not an image this service reads: expected {SUPPORTED_FORMATS} bytes",
        reason="not_an_image",
    )


def image_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """Width and height from the header alone, checked against the limits; nothing decoded."""
    return _open_header(data, limits)[0].size


def _open_header(data: bytes, limits: ImageLimits) -> tuple[Image.Image, str]:
    image_format = sniff_format(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[image_format])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise _corrupt(image_format, error) from None
    _check_size(image.size, limits)
    return image, image_format


def open_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open, check the header's size against the limits, then decode the first frame."""
    image, image_format = _open_header(data, limits)
    try:
        image.seek(0)
        image.load()
        if not _may_carry_orientation(image):
            return image
        return ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise _corrupt(image_format, error) from None


def _may_carry_orientation(image: Image.Image) -> bool:
    """Whether Pillow could find an EXIF orientation: every place ``getexif`` reads one from.

    Without any, ``exif_transpose`` finds none and only copies the image.
    """
    return hasattr(image, "tag_v2") or any(key in image.info for key in ORIENTATION_SOURCES)


def _check_size(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise BadRequest(f"the image header gives an empty size {width}x{height}", "corrupt_image")
    if max(width, height) > limits.max_side:
        raise PayloadTooLarge(
            f"image is {width}x{height} pixels; the longest side allowed is {limits.max_side}",
            reason="too_many_pixels",
        )
    if width * height > limits.max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} pixels; at most {limits.max_pixels} pixels are allowed",
            reason="too_many_pixels",
        )


def _corrupt(image_format: str, error: BaseException) -> BadRequest:
    # Pillow's "cannot identify" message shows the BytesIO's repr and memory address.
    if isinstance(error, UnidentifiedImageError):
        detail = "its header is not readable"
    else:
        detail = str(error).split("\n")[0][:120] or type(error).__name__
    return BadRequest(
        f"the {image_format} image is corrupt or truncated ({detail})", reason="corrupt_image"
    )


def shrink_to_working_size(image: Image.Image) -> Image.Image:
    """Box-reduce anything over 1024 px by a whole factor, before any float work.

    The digit ends up 20 px tall, so nothing the model sees is lost, while a 25-megapixel
    upload then costs the float arithmetic of a 1-megapixel one.
    Palette indices and colour keys cannot be averaged: those convert first.
    """
    longest = max(image.size)
    if longest <= WORKING_SIDE:
        return image
    if "transparency" in image.info or image.mode == "PA":
        image = _convert(image, "LA")
    elif image.mode in ("1", "P"):
        image = _convert(image, "L")
    elif image.mode.startswith("I;16"):
        image = _convert(image, "I")
    return image.reduce(math.ceil(longest / WORKING_SIDE))


def to_grayscale(image: Image.Image) -> np.ndarray:
    """8-bit luminance in [0, 255]; transparent pixels become the background behind the ink."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _rescale_wide(np.asarray(image, dtype=np.float64))
    has_alpha = image.mode in ("LA", "RGBA", "PA") or "transparency" in image.info
    if not has_alpha:
        # An "L" image is already luminance: converting it would only copy it.
        gray = image if image.mode == "L" else _convert(image, "L")
        return np.asarray(gray, dtype=np.uint8)
    with_alpha = np.asarray(_convert(image, "LA"))
    return blend_alpha(with_alpha[..., 0], with_alpha[..., 1])


def blend_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Luminance over the background its ink is not: white behind dark ink, black behind light.

    float32 and in-place blending: at the pixel limit, float64 temporaries would be huge.
    """
    luminance = gray.astype(np.float32)
    alpha = alpha.astype(np.float32) / np.float32(255.0)
    opacity = float(alpha.sum(dtype=np.float64))
    ink_is_dark = opacity == 0 or float(np.vdot(luminance, alpha)) / opacity < 128
    background = np.float32(255.0 if ink_is_dark else 0.0)
    luminance -= background
    luminance *= alpha
    luminance += background
    return np.rint(luminance).astype(np.uint8)


def _convert(image: Image.Image, mode: str) -> Image.Image:
    """Pillow decodes some modes it cannot convert (CIELab TIFFs): a 415, not a crash."""
    try:
        return image.convert(mode)
    except ValueError:
        raise UnsupportedMediaType(
            f"images in colour mode {image.mode} are not supported; send grayscale, RGB or CMYK",
            reason="unsupported_mode",
        ) from None


def _rescale_wide(values: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit and float images: map their likely full range onto 0..255."""
    finite = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(finite.max()) if finite.size else 0.0
    low = min(float(finite.min()), 0.0)
    if low >= 0.0 and peak <= 1.0:
        scale = 255.0
    elif low >= 0.0 and peak <= 255.0:
        scale = 1.0
    elif low >= 0.0 and peak <= 65535.0:
        scale = 255.0 / 65535.0
    else:
        return np.rint((finite - low) * 255.0 / max(peak - low, 1e-12)).astype(np.uint8)
    return np.rint(np.clip(finite * scale, 0.0, 255.0)).astype(np.uint8)


def simple_png_grayscale(data: bytes, limits: ImageLimits) -> np.ndarray | None:
    """``to_grayscale`` of a PNG that ``png`` decodes (the same pixels), else None for Pillow."""
    header = png.simple_png_header(data, min(limits.max_side, WORKING_SIDE))
    if header is None:
        return None
    width, height, channels = header
    _check_size((width, height), limits)
    pixels = png.decode(data, channels)
    if pixels is None or pixels.shape[:2] != (height, width):
        return None
    if channels == 1:
        return pixels
    gray = pixels[..., 0] if channels == 2 else png.luminance(pixels)
    return gray if channels == 3 else blend_alpha(gray, pixels[..., -1])
