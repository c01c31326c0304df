"""A share of each training batch goes through the service's own preprocessing at another size.

The service feeds a 28x28 upload pixel for pixel but crops, rescales and centres any other size
(``service.inference.preprocessing.to_model_input``). Training sees that too: chosen images are
scaled up to a random side with a random filter (sometimes JPEG-compressed) and preprocessed
exactly as the service would, in numpy, called from the tf.data pipeline by ``tf.numpy_function``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.distortions import jpeg
from training.robustness import through_service

SIDES = (20, 36, 42, 56, 64, 84, 112, 140, 200, 280)
FILTERS = (
    Image.Resampling.NEAREST,
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
)
JPEG_SHARE = 0.25


def through_service_at_other_sizes(
    images: np.ndarray, seed: np.ndarray, share: float
) -> np.ndarray:
    """``images`` uint8 [B, 28, 28]; each with probability ``share`` resized and preprocessed."""
    rng = np.random.default_rng(np.asarray(seed, dtype=np.int64).tolist())
    result = images.copy()
    for index in np.flatnonzero(rng.random(len(images)) < share):
        side = int(rng.choice(SIDES))
        resample = FILTERS[rng.integers(len(FILTERS))]
        upload = np.asarray(Image.fromarray(images[index]).resize((side, side), resample))
        if rng.random() < JPEG_SHARE:
            upload = jpeg(upload, rng)
        result[index] = through_service(upload)
    return result
