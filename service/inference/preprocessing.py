"""Any uploaded image to the 28x28 uint8 array MNIST digits are: light ink on black, centred.

A 28x28 image on black is kept pixel for pixel (only its polarity may flip, and a grey or unevenly
lit background is flattened); any other size goes through MNIST's own recipe: crop to the ink,
scale the longer side to 20 px, centre by mass in 28x28.
"""

from typing import Literal

import numpy as np
from PIL import Image

from service.inference.border import border_is_light, plane_may_lie_between
from service.inference.image_files import (
    open_image,
    shrink_to_working_size,
    simple_png_grayscale,
    to_grayscale,
)
from service.inference.limits import ImageLimits

InvertMode = Literal["auto", "true", "false"]

MNIST_SIDE = 28
DIGIT_BOX = 20
INK_FRACTION = 0.25
MIN_CONTRAST = 16
NO_INK_REASON = "no ink: the image is blank, a uniform colour, or only faint noise"


def apply_polarity(pixels: np.ndarray, invert: InvertMode) -> np.ndarray:
    """MNIST is light on dark: ``auto`` inverts when the border (the background) is light."""
    if invert == "true" or (invert == "auto" and border_is_light(pixels)):
        return 255 - pixels
    return pixels


def remove_background(pixels: np.ndarray) -> np.ndarray:
    """Flatten a grey or unevenly lit background (a plane fitted to the border) to black.

    Dark ink on paper lit from one side keeps a ramp after inversion, which the model reads as
    ink. A black background (every MNIST digit) is left pixel for pixel, and so is a light one
    (polarity forced off): only a background between the two is subtracted, then the ink is
    stretched back to 255.
    """
    if not plane_may_lie_between(pixels, MIN_CONTRAST, 127.0):
        return pixels
    plane = _border_plane(pixels)
    if float(plane.max()) < MIN_CONTRAST or float(plane.mean()) > 127.0:
        return pixels
    flattened = np.clip(pixels.astype(np.float32) - plane, 0.0, None)
    peak = float(flattened.max())
    if peak < MIN_CONTRAST:
        return np.zeros_like(pixels)
    return np.rint(flattened * (255.0 / peak)).astype(np.uint8)


def _border_plane(pixels: np.ndarray) -> np.ndarray:
    """Least-squares plane a + b*row + c*column through the border pixels, over the image."""
    height, width = pixels.shape
    rows, columns = np.mgrid[0:height, 0:width]
    border = np.zeros((height, width), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    design = np.stack([np.ones(int(border.sum())), rows[border], columns[border]], axis=1).astype(
        np.float64
    )
    coefficients, *_ = np.linalg.lstsq(design, pixels[border].astype(np.float64), rcond=None)
    return (coefficients[0] + coefficients[1] * rows + coefficients[2] * columns).astype(np.float32)


def to_model_input(pixels: np.ndarray, invert: InvertMode) -> np.ndarray:
    """Greyscale pixels of any size to the model's 28x28: polarity, background, layout."""
    return to_mnist_layout(remove_background(apply_polarity(pixels, invert)))


def has_ink(model_input: np.ndarray) -> bool:
    """Whether the model's input has any pixel bright enough to be ink (the crop's own test).

    Every blank, uniform or faintly noisy image ends up (nearly) black here, and the model would
    still name a digit for it; such an image is not a digit, whatever the model says.
    """
    return bool(model_input.max() > INK_FRACTION * 255)


def to_mnist_layout(pixels: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit the longer side to 20 px, centre by mass in 28x28 (MNIST's recipe)."""
    if pixels.shape == (MNIST_SIDE, MNIST_SIDE):
        return pixels
    stretched = _stretch_contrast(pixels)
    if stretched is None:
        return np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.uint8)
    rows = np.flatnonzero(stretched.max(axis=1) > INK_FRACTION * 255)
    columns = np.flatnonzero(stretched.max(axis=0) > INK_FRACTION * 255)
    digit = stretched[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    return _centre_by_mass(_fit_in_box(digit))


def _stretch_contrast(pixels: np.ndarray) -> np.ndarray | None:
    """Background to 0 and the brightest ink to 255; None when there is no ink at all."""
    background = float(np.median(pixels))
    peak = float(pixels.max())
    if peak - background < MIN_CONTRAST:
        return None
    scaled = (pixels.astype(np.float32) - background) * (255.0 / (peak - background))
    return np.clip(scaled, 0.0, 255.0).astype(np.uint8)


def _fit_in_box(digit: np.ndarray) -> np.ndarray:
    height, width = digit.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    height, width = digit.shape
    mass = digit.astype(np.float64)
    total = mass.sum()
    centre_row = (mass.sum(axis=1) @ np.arange(height)) / total if total else (height - 1) / 2
    centre_column = (mass.sum(axis=0) @ np.arange(width)) / total if total else (width - 1) / 2
    top = int(np.clip(round(MNIST_SIDE / 2 - 0.5 - centre_row), 0, MNIST_SIDE - height))
    left = int(np.clip(round(MNIST_SIDE / 2 - 0.5 - centre_column), 0, MNIST_SIDE - width))
    canvas = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.uint8)
    canvas[top : top + height, left : left + width] = digit
    return canvas


def image_to_array(data: bytes, invert: InvertMode, limits: ImageLimits) -> np.ndarray:
    """Uploaded bytes to the model's input: uint8 [28, 28], light digit on black."""
    pixels = simple_png_grayscale(data, limits)
    if pixels is None:
        pixels = to_grayscale(shrink_to_working_size(open_image(data, limits)))
    return to_model_input(pixels, invert)
