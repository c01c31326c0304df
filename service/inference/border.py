"""What an image's border says about its background: light or dark, and how it is lit.

The border is the background in every digit image: these decisions read it cheaply, because
they run for every image of every request.
"""

import functools

import numpy as np

# Plane values this close to a threshold are decided on the plane itself, not its corners.
PLANE_MARGIN = 1e-3


def border_is_light(pixels: np.ndarray) -> bool:
    """Whether the border's median is over 127, decided by counting rather than sorting.

    More than half the values over 127 puts the median over it, fewer puts it at or under;
    at exactly half it is the mean of the two middle values (``np.median`` sorts: slower).
    """
    border = np.concatenate((pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]))
    light = border > 127
    twice_light = 2 * int(np.count_nonzero(light))
    if twice_light != border.size:
        return twice_light > border.size
    return int(border[light].min()) + int(border[~light].max()) > 254


def plane_may_lie_between(pixels: np.ndarray, low: float, high: float) -> bool:
    """Whether the plane fitted to the border may peak at ``low`` or more with its mean at
    ``high`` or less; False is certain, True leaves it to the plane itself.

    Fitting and drawing the plane for every request is costly. The plane is linear, so its largest
    value is at a corner and its mean at the centre: the fit's three coefficients (one product
    with the border's cached pseudo-inverse) settle the question, except within a margin of
    the thresholds, where the plane drawn in float32 could round either way.
    """
    mask, solve = _border_fit(*pixels.shape)
    values = pixels[mask]
    if not values.any():  # a black border fits the zero plane exactly
        return False
    offset, row_slope, column_slope = solve @ values.astype(np.float64)
    down = row_slope * (pixels.shape[0] - 1)
    across = column_slope * (pixels.shape[1] - 1)
    top = offset + max(0.0, down, across, down + across)
    mean = offset + (down + across) / 2
    if abs(top - low) < PLANE_MARGIN or abs(mean - high) < PLANE_MARGIN:
        return True
    return top >= low and mean <= high


@functools.lru_cache(maxsize=64)
def _border_fit(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The border mask of an image size, and the pseudo-inverse of its plane-fit design."""
    rows, columns = np.mgrid[0:height, 0:width]
    border = np.zeros((height, width), dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    design = np.stack([np.ones(int(border.sum())), rows[border], columns[border]], axis=1)
    return border, np.linalg.pinv(design.astype(np.float64))
