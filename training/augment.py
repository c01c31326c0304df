"""On-the-fly augmentation of uint8 MNIST batches, for the robust recipe's tf.data pipeline.

Every batch is drawn afresh from stateless random ops seeded by (run seed, global batch index), so
a run repeats exactly and parallel map calls cannot race on a generator. Per image: one bilinear
warp that combines a random affine map (rotation, scale, shear, shift) with an elastic field
(Simard, Steinkraus & Platt 2003, smooth random displacements), then thinner or bolder strokes,
blur, a thumbnail round trip, a share of the images through the service's own preprocessing at
another resolution (``resolution.py``), then contrast, intensity, background and noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

SIDE = 28
CENTRE = (SIDE - 1) / 2


@dataclass(frozen=True)
class Strength:
    """How hard each augmentation pushes; probabilities are per image."""

    rotation_degrees: float = 22.0
    scale_range: tuple[float, float] = (0.68, 1.32)
    shear: float = 0.25
    shift_pixels: float = 4.5
    elastic_probability: float = 0.5
    elastic_pixels: float = 1.2
    elastic_grid: int = 5
    stroke_probability: float = 0.25
    blur_probability: float = 0.15
    thumbnail_probability: float = 0.1
    intensity_probability: float = 0.25
    background_probability: float = 0.08
    background_peak: float = 0.45
    noise_probability: float = 0.15
    noise_sigma: float = 0.12
    clean_probability: float = 0.5
    mild_probability: float = 0.5
    mild_fraction: float = 0.3


def _uniform(seed: tf.Tensor, shape: tuple, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def _spread(seed: tf.Tensor, shape: tuple, limit: float, strength: Strength) -> tf.Tensor:
    """Uniform in [-limit, limit] for some images, in a band ``mild_fraction`` as wide for others.

    Most digits a user sends are close to MNIST's; the full range still comes up often enough
    for every extreme the suite tests, without every image being pushed to several at once.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    full = tf.random.stateless_uniform(shape, seed=seeds[0], minval=-limit, maxval=limit)
    mild = tf.random.stateless_uniform(shape, seed=seeds[1]) < strength.mild_probability
    return tf.where(mild, full * strength.mild_fraction, full)


def _chance(seed: tf.Tensor, batch: tf.Tensor, probability: float) -> tf.Tensor:
    """A [batch, 1, 1] float mask: 1 for the images an augmentation applies to."""
    return tf.cast(_uniform(seed, (batch, 1, 1), 0.0, 1.0) < probability, tf.float32)


def _sample(images: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
    """Bilinear sampling of [B, 28, 28] at float coordinates [B, 28, 28]; outside is black."""
    padded_side = SIDE + 2
    batch = tf.shape(images)[0]
    flat = tf.reshape(tf.pad(images, [[0, 0], [1, 1], [1, 1]]), [-1])
    rows = tf.clip_by_value(rows + 1.0, 0.0, padded_side - 1.001)
    columns = tf.clip_by_value(columns + 1.0, 0.0, padded_side - 1.001)
    top, left = tf.floor(rows), tf.floor(columns)
    down, right = rows - top, columns - left
    base = tf.range(batch)[:, None, None] * padded_side * padded_side
    corner = base + tf.cast(top, tf.int32) * padded_side + tf.cast(left, tf.int32)

    def at(offset: int) -> tf.Tensor:
        return tf.gather(flat, corner + offset)

    return (
        at(0) * (1 - down) * (1 - right)
        + at(1) * (1 - down) * right
        + at(padded_side) * down * (1 - right)
        + at(padded_side + 1) * down * right
    )


def warp(images: tf.Tensor, seed: tf.Tensor, strength: Strength) -> tf.Tensor:
    """One bilinear resampling per image: affine map about the centre plus an elastic field."""
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 8)
    angle = _spread(seeds[0], (batch,), math.radians(strength.rotation_degrees), strength)
    low, high = strength.scale_range
    scale = tf.exp(
        _spread(seeds[1], (batch,), (math.log(high) - math.log(low)) / 2, strength)
        + (math.log(high) + math.log(low)) / 2
    )
    aspect = tf.exp(_uniform(seeds[2], (batch,), -0.1, 0.1))
    shear = _spread(seeds[3], (batch,), strength.shear, strength)
    shift = _spread(seeds[4], (batch, 2), strength.shift_pixels, strength)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Inverse map, output pixel -> source pixel: undo shift, then rotation, shear and scale.
    row_scale, column_scale = scale * aspect, scale / aspect
    axis = tf.range(SIDE, dtype=tf.float32)
    grid_rows, grid_columns = tf.meshgrid(axis, axis, indexing="ij")
    y = grid_rows[None] - CENTRE - shift[:, 0, None, None]
    x = grid_columns[None] - CENTRE - shift[:, 1, None, None]
    rotated_y = cos[:, None, None] * y - sin[:, None, None] * x
    rotated_x = sin[:, None, None] * y + cos[:, None, None] * x
    source_x = (rotated_x - shear[:, None, None] * rotated_y) / column_scale[:, None, None]
    source_y = rotated_y / row_scale[:, None, None]
    field = _elastic_field(seeds[5], batch, strength)
    elastic = _chance(seeds[6], batch, strength.elastic_probability)[..., None]
    field = field * elastic
    return _sample(images, source_y + CENTRE + field[..., 0], source_x + CENTRE + field[..., 1])


def _elastic_field(seed: tf.Tensor, batch: tf.Tensor, strength: Strength) -> tf.Tensor:
    """Smooth random displacements [B, 28, 28, 2]: a coarse random grid, bicubically upsampled.

    The coarse grid stands in for Simard's Gaussian-smoothed uniform field at a fraction of the
    cost of a 25-tap convolution; ``elastic_pixels`` is the displacement's typical size.
    """
    grid = strength.elastic_grid
    coarse = tf.random.stateless_normal((batch, grid, grid, 2), seed=seed)
    field = tf.image.resize(coarse, (SIDE, SIDE), method="bicubic")
    return field * strength.elastic_pixels


def stroke_width(images: tf.Tensor, seed: tf.Tensor, strength: Strength) -> tf.Tensor:
    """For some images, grey dilation (bolder, 2x2 or 3x3) or erosion (thinner, 2x2)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    planes = images[..., None]
    bolder_2 = tf.nn.max_pool2d(planes, 2, 1, "SAME")[..., 0]
    bolder_3 = tf.nn.max_pool2d(planes, 3, 1, "SAME")[..., 0]
    thinner = -tf.nn.max_pool2d(-planes, 2, 1, "SAME")[..., 0]
    choice = tf.random.stateless_uniform((batch, 1, 1), seed=seeds[0], maxval=3, dtype=tf.int32)
    changed = tf.where(choice == 0, bolder_2, tf.where(choice == 1, bolder_3, thinner))
    applies = _chance(seeds[1], batch, strength.stroke_probability)
    return images + applies * (changed - images)


def blur(images: tf.Tensor, seed: tf.Tensor, strength: Strength) -> tf.Tensor:
    """For some images, a Gaussian blur of random width (sigma 0.5-1.3 px)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    taps = tf.range(-3, 4, dtype=tf.float32)
    kernel = tf.exp(-(taps**2) / (2.0 * 1.0**2))
    kernel = kernel / tf.reduce_sum(kernel)
    planes = images[..., None]
    blurred = tf.nn.conv2d(planes, tf.reshape(kernel, (7, 1, 1, 1)), 1, "SAME")
    blurred = tf.nn.conv2d(blurred, tf.reshape(kernel, (1, 7, 1, 1)), 1, "SAME")[..., 0]
    amount = _uniform(seeds[0], (batch, 1, 1), 0.4, 1.0)
    applies = _chance(seeds[1], batch, strength.blur_probability) * amount
    return images + applies * (blurred - images)


def thumbnail(images: tf.Tensor, seed: tf.Tensor, strength: Strength) -> tf.Tensor:
    """For some images, down to 12-20 px and back to 28 (one size per batch, bilinear)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    side = tf.random.stateless_uniform((), seed=seeds[0], minval=12, maxval=21, dtype=tf.int32)
    planes = images[..., None]
    small = tf.image.resize(planes, tf.stack([side, side]), method="area")
    back = tf.image.resize(small, (SIDE, SIDE), method="bilinear")[..., 0]
    applies = _chance(seeds[1], batch, strength.thumbnail_probability)
    return images + applies * (back - images)


def photometric(images: tf.Tensor, seed: tf.Tensor, strength: Strength) -> tf.Tensor:
    """Contrast and intensity (gain, gamma), a sloped grey background, then sensor noise."""
    seeds = tf.random.experimental.stateless_split(seed, 8)
    batch = tf.shape(images)[0]
    gain = _uniform(seeds[0], (batch, 1, 1), 0.45, 1.0)
    gamma = tf.exp(_uniform(seeds[1], (batch, 1, 1), math.log(0.6), math.log(1.6)))
    adjusted = gain * tf.pow(tf.clip_by_value(images, 1e-6, 1.0), gamma)
    images = images + _chance(seeds[2], batch, strength.intensity_probability) * (adjusted - images)
    angle = _uniform(seeds[3], (batch, 1, 1), 0.0, 2.0 * math.pi)
    rows, columns = tf.meshgrid(tf.linspace(0.0, 1.0, SIDE), tf.linspace(0.0, 1.0, SIDE),
                                indexing="ij")  # fmt: skip
    ramp = (tf.cos(angle) * columns + tf.sin(angle) * rows + 1.0) / 2.0
    level = _uniform(seeds[4], (batch, 1, 1), 0.05, strength.background_peak)
    background = level * ramp * _chance(seeds[5], batch, strength.background_probability)
    images = tf.maximum(images, background)
    sigma = _uniform(seeds[6], (batch, 1, 1), 0.02, strength.noise_sigma)
    noise = tf.random.stateless_normal(tf.shape(images), seed=seeds[7]) * sigma
    noisy = images + noise * _chance(seeds[7] + 1, batch, strength.noise_probability)
    return tf.clip_by_value(noisy, 0.0, 1.0)


def augment_geometry(images: tf.Tensor, seed: tf.Tensor, strength: Strength) -> tf.Tensor:
    """Warp, stroke width, blur and thumbnail, on float images in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    images = warp(images, seeds[0], strength)
    images = stroke_width(images, seeds[1], strength)
    images = blur(images, seeds[2], strength)
    return tf.clip_by_value(thumbnail(images, seeds[3], strength), 0.0, 1.0)


def keep_some_clean(
    original: tf.Tensor, augmented: tf.Tensor, seed: tf.Tensor, strength: Strength
) -> tf.Tensor:
    """A share of every batch stays exactly as MNIST wrote it."""
    batch = tf.shape(original)[0]
    clean = _chance(seed, batch, strength.clean_probability)
    return augmented + clean * (original - augmented)
