"""What users send instead of an MNIST digit: the robustness suite's transformations, in numpy/PIL.

Each transformation turns one 28x28 MNIST image (light ink on black) into an upload: a uint8 array
of any size (what a lossless greyscale PNG decodes to) or encoded bytes (JPEG). Randomness (which
way to shift or rotate, the noise, the background's slope) comes from the generator passed in, so
a seed gives the same column every time. No TensorFlow here: the suite runs on onnxruntime alone.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter
from PIL.Image import Resampling

SIDE = 28
CENTRE = (SIDE - 1) / 2
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))
NOISE_SIGMA = 25.0
BLUR_RADIUS = 1.0
JPEG_QUALITY = 30
PAPER_RANGE = (140.0, 250.0)
INK_LEVEL = 20.0

Upload = np.ndarray | bytes
Transform = Callable[[np.ndarray, np.random.Generator], Upload]


@dataclass(frozen=True)
class Column:
    """One column of the suite: a short name, what it does, and the transformation."""

    name: str
    description: str
    transform: Transform


def shift(pixels: int) -> Transform:
    """Move the digit ``pixels`` up, down, left or right (one of the four, at random)."""

    def apply(image: np.ndarray, rng: np.random.Generator) -> Upload:
        rows, columns = DIRECTIONS[rng.integers(len(DIRECTIONS))]
        moved = np.zeros_like(image)
        source = image[max(0, -rows * pixels) : SIDE - max(0, rows * pixels),
                       max(0, -columns * pixels) : SIDE - max(0, columns * pixels)]  # fmt: skip
        top, left = max(0, rows * pixels), max(0, columns * pixels)
        moved[top : top + source.shape[0], left : left + source.shape[1]] = source
        return moved

    return apply


def rotate(degrees: float) -> Transform:
    """Rotate about the frame's centre by ``degrees``, clockwise or anticlockwise at random."""

    def apply(image: np.ndarray, rng: np.random.Generator) -> Upload:
        angle = degrees if rng.integers(2) else -degrees
        turned = Image.fromarray(image).rotate(angle, resample=Image.Resampling.BILINEAR)
        return np.asarray(turned)

    return apply


def scale(factor: float) -> Transform:
    """Grow or shrink the digit about the frame's centre, inside the same 28x28 frame."""

    def apply(image: np.ndarray, rng: np.random.Generator) -> Upload:
        inverse = 1.0 / factor
        offset = CENTRE + 0.5 - (CENTRE + 0.5) * inverse
        matrix = (inverse, 0.0, offset, 0.0, inverse, offset)
        resized = Image.fromarray(image).transform(
            (SIDE, SIDE), Image.Transform.AFFINE, matrix, resample=Image.Resampling.BILINEAR
        )
        return np.asarray(resized)

    return apply


def thinner(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """Grey erosion by a 2x2 square: strokes lose about one pixel of width (a fine pen)."""
    padded = np.pad(image, ((0, 1), (0, 1)))
    return np.minimum.reduce(
        [padded[:-1, :-1], padded[1:, :-1], padded[:-1, 1:], padded[1:, 1:]]
    ).astype(np.uint8)


def bolder(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """Grey dilation by a 3x3 square: strokes gain about two pixels (a marker)."""
    return np.asarray(Image.fromarray(image).filter(ImageFilter.MaxFilter(3)))


def blur(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """Gaussian blur of radius 1 px (an out-of-focus photo)."""
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(BLUR_RADIUS)))


def noise(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """Additive Gaussian noise, sigma 25 grey levels, clipped to 0-255 (sensor noise)."""
    noisy = image.astype(np.float32) + rng.normal(0.0, NOISE_SIGMA, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """The 28x28 image as JPEG bytes at quality 30 (a heavily compressed upload)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def down_and_back(side: int) -> Transform:
    """Down to ``side`` px and back up to 28 (bilinear both ways): a thumbnail blown up."""

    def apply(image: np.ndarray, rng: np.random.Generator) -> Upload:
        small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
        return np.asarray(small.resize((SIDE, SIDE), Image.Resampling.BILINEAR))

    return apply


def resized(side: int, resample: Image.Resampling) -> Transform:
    """The whole image at ``side`` px: the service crops, scales and centres it back to 28."""

    def apply(image: np.ndarray, rng: np.random.Generator) -> Upload:
        return np.asarray(Image.fromarray(image).resize((side, side), resample))

    return apply


def inverted(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """Dark ink on white, as on paper; the service's automatic polarity should undo it."""
    return 255 - image


def uneven_paper(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """Dark ink on paper lit unevenly: a linear brightness ramp from 140 to 250 in any direction."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, columns = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / (SIDE - 1)
    projection = np.cos(angle) * columns + np.sin(angle) * rows
    ramp = (projection - projection.min()) / (projection.max() - projection.min())
    paper = PAPER_RANGE[0] + (PAPER_RANGE[1] - PAPER_RANGE[0]) * ramp
    ink = image.astype(np.float32) / 255.0
    return np.rint(paper * (1.0 - ink) + INK_LEVEL * ink).astype(np.uint8)


def identity(image: np.ndarray, rng: np.random.Generator) -> Upload:
    """The MNIST image itself."""
    return image


COLUMNS: tuple[Column, ...] = (
    Column("clean", "the MNIST image as it is", identity),
    Column("shift 2", "moved 2 px up, down, left or right", shift(2)),
    Column("shift 4", "moved 4 px up, down, left or right", shift(4)),
    Column("rot 10", "rotated 10 degrees either way", rotate(10.0)),
    Column("rot 20", "rotated 20 degrees either way", rotate(20.0)),
    Column("scale 0.7", "shrunk to 70% about the centre", scale(0.7)),
    Column("scale 1.3", "grown to 130% about the centre", scale(1.3)),
    Column("thinner", "grey erosion 2x2", thinner),
    Column("bolder", "grey dilation 3x3", bolder),
    Column("blur", "Gaussian blur, radius 1 px", blur),
    Column("noise", "Gaussian noise, sigma 25 grey levels", noise),
    Column("jpeg 30", "JPEG at quality 30", jpeg),
    Column("14 px", "down to 14 px and back to 28 (bilinear)", down_and_back(14)),
    Column("56 px", "56 px bilinear, then crop/scale/centre", resized(56, Resampling.BILINEAR)),
    Column("112 px", "112 px bicubic, then crop/scale/centre", resized(112, Resampling.BICUBIC)),
    Column("280 px", "280 px nearest, then crop/scale/centre", resized(280, Resampling.NEAREST)),
    Column("inverted", "dark ink on white", inverted),
    Column("uneven bg", "dark ink on a light ramp 140-250", uneven_paper),
)  # fmt: skip
