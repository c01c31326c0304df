"""Synthetic non-digits, made from MNIST training images, noise and geometry only.

The held-out non-digits the model is judged on (letters, symbols, other people's doodles) are never
used: every negative here is a piece, mixture or wreck of an MNIST digit, or drawn from random
numbers. Each kind returns an upload (a uint8 array of any size, light or dark background), which
then goes through the service's own preprocessing, as a user's image would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from service.inference.preprocessing import to_model_input

SIDE = 28
CANVAS_SIDES = (28, 40, 56, 84)
Maker = Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Kind:
    """One kind of non-digit: a short name, what it is, and how to make one."""

    name: str
    description: str
    make: Maker


def _canvas(rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    side = int(rng.choice(CANVAS_SIDES))
    image = Image.new("L", (side, side), 0)
    return image, ImageDraw.Draw(image), side


def _points(rng: np.random.Generator, side: int, count: int) -> list[tuple[float, float]]:
    return [tuple(point) for point in rng.uniform(0.1 * side, 0.9 * side, (count, 2))]


def _width(rng: np.random.Generator, side: int) -> int:
    return max(1, round(side * rng.uniform(0.03, 0.14)))


def _two_digits(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> tuple:
    """Two training digits with different labels."""
    first = int(rng.integers(len(images)))
    others = np.flatnonzero(labels != labels[first])
    pool = others if len(others) else np.arange(len(images))
    return images[first], images[int(rng.choice(pool))]


def noise(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Gaussian, uniform or salt-and-pepper noise over the whole frame, possibly smoothed."""
    side = int(rng.choice(CANVAS_SIDES))
    style = rng.integers(3)
    if style == 0:
        field = rng.normal(rng.uniform(0, 128), rng.uniform(20, 90), (side, side))
    elif style == 1:
        field = rng.uniform(0, 255, (side, side))
    else:
        field = 255.0 * (rng.random((side, side)) < rng.uniform(0.02, 0.4))
    picture = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
    return np.asarray(picture)


def dots(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One to eight round or square blobs scattered over the frame."""
    image, draw, side = _canvas(rng)
    for x, y in _points(rng, side, int(rng.integers(1, 9))):
        radius = side * rng.uniform(0.02, 0.12)
        box = (x - radius, y - radius, x + radius, y + radius)
        (draw.ellipse if rng.random() < 0.7 else draw.rectangle)(box, fill=255)
    return np.asarray(image)


def shapes(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rectangles, triangles, polygons, stars, wide ellipses: filled or outlined."""
    image, draw, side = _canvas(rng)
    for _ in range(int(rng.integers(1, 3))):
        filled = rng.random() < 0.5
        width = _width(rng, side)
        kind = rng.integers(4)
        if kind == 0:
            corners = (
                sorted(rng.uniform(0.1 * side, 0.9 * side, 2)),
                sorted(rng.uniform(0.1 * side, 0.9 * side, 2)),
            )
            box = (corners[0][0], corners[1][0], corners[0][1], corners[1][1])
            draw.rectangle(box, fill=255 if filled else None, outline=255, width=width)
        elif kind == 1:
            centre, radius = side / 2, side * rng.uniform(0.2, 0.45)
            box = (centre - radius, centre - radius * 0.55, centre + radius, centre + radius * 0.55)
            draw.ellipse(box, fill=255 if filled else None, outline=255, width=width)
        elif kind == 2:
            draw.polygon(
                _points(rng, side, int(rng.integers(3, 7))),
                fill=255 if filled else None,
                outline=255,
                width=width,
            )
        else:
            draw.polygon(_star(rng, side), fill=255 if filled else None, outline=255, width=width)
    return np.asarray(image)


def _star(rng: np.random.Generator, side: int) -> list[tuple[float, float]]:
    tips = int(rng.integers(4, 9))
    angles = np.linspace(0, 2 * np.pi, 2 * tips, endpoint=False) + rng.uniform(0, np.pi)
    radii = np.where(np.arange(2 * tips) % 2 == 0, 0.45, rng.uniform(0.12, 0.25)) * side
    return [
        (side / 2 + r * np.cos(a), side / 2 + r * np.sin(a))
        for r, a in zip(radii, angles, strict=True)
    ]


def strokes(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two to five random pen strokes (polylines) of one width: a doodle."""
    image, draw, side = _canvas(rng)
    width = _width(rng, side)
    for _ in range(int(rng.integers(2, 6))):
        draw.line(_points(rng, side, int(rng.integers(2, 6))), fill=255, width=width, joint="curve")
    return np.asarray(image)


def scribble(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Hatching, grids or a dense scrawl covering much of the frame."""
    image, draw, side = _canvas(rng)
    width = max(1, _width(rng, side) // 2)
    if rng.random() < 0.5:
        step = side * rng.uniform(0.12, 0.3)
        for offset in np.arange(-side, 2 * side, step):
            draw.line([(offset, 0), (offset + side * rng.uniform(-1, 1), side)], 255, width)
            if rng.random() < 0.5:
                draw.line([(0, offset), (side, offset + side * rng.uniform(-0.5, 0.5))], 255, width)
    else:
        draw.line(_points(rng, side, int(rng.integers(8, 20))), fill=255, width=width)
    return np.asarray(image)


def piece(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A corner, edge or stroke-sized window cut out of one digit."""
    digit = images[int(rng.integers(len(images)))]
    height, width = (int(size) for size in rng.integers(6, 15, 2))
    top, left = (
        int(rng.integers(4, SIDE - 4 - height + 1)),
        int(rng.integers(4, SIDE - 4 - width + 1)),
    )
    window = digit[top : top + height, left : left + width]
    return np.asarray(
        Image.fromarray(window).resize((width * 3, height * 3), Image.Resampling.BILINEAR)
    )


def overlaid(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two different digits drawn over each other, slightly offset."""
    first, second = _two_digits(rng, images, labels)
    shift = tuple(int(step) for step in rng.integers(-3, 4, 2))
    return np.maximum(first, np.roll(second, shift, axis=(0, 1)))


def side_by_side(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two or three digits in a row: a number, not a digit."""
    count = int(rng.integers(2, 4))
    chosen = images[rng.integers(len(images), size=count)]
    row = np.concatenate([digit[:, 4:24] for digit in chosen], axis=1)
    return np.pad(row, 4) if rng.random() < 0.5 else np.pad(row, ((4, 4), (4, 4)))[::-1].T


def recombined(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The top of one digit on the bottom of another (or left on right), mirrored at times."""
    first, second = _two_digits(rng, images, labels)
    cut = int(rng.integers(10, 19))
    if rng.random() < 0.5:
        joined = np.concatenate([first[:cut], second[cut:]], axis=0)
    else:
        joined = np.concatenate([first[:, :cut], second[:, cut:]], axis=1)
    if rng.random() < 0.3:
        joined = joined[:, ::-1]
    return np.ascontiguousarray(np.pad(joined, 6))


def warped(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A digit under a violent elastic warp, or a swirl: strokes with no digit left in them."""
    digit = images[int(rng.integers(len(images)))].astype(np.float32)
    rows, columns = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    if rng.random() < 0.5:
        field = rng.normal(0, 1, (2, 4, 4)).astype(np.float32)
        smooth = [
            np.asarray(Image.fromarray(plane).resize((SIDE, SIDE), Image.Resampling.BICUBIC))
            for plane in field
        ]
        rows, columns = rows + 7.0 * smooth[0], columns + 7.0 * smooth[1]
    else:
        dy, dx = rows - 13.5, columns - 13.5
        radius = np.hypot(dy, dx)
        angle = np.arctan2(dy, dx) + rng.choice([-1, 1]) * rng.uniform(2, 5) * np.exp(-radius / 9)
        rows, columns = 13.5 + radius * np.sin(angle), 13.5 + radius * np.cos(angle)
    return _bilinear(digit, rows, columns)


def _bilinear(image: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    padded = np.pad(image, 1)
    rows, columns = np.clip(rows + 1, 0, SIDE), np.clip(columns + 1, 0, SIDE)
    top, left = np.floor(rows).astype(int), np.floor(columns).astype(int)
    down, across = rows - top, columns - left
    value = (
        padded[top, left] * (1 - down) * (1 - across)
        + padded[top + 1, left] * down * (1 - across)
        + padded[top, left + 1] * (1 - down) * across
        + padded[top + 1, left + 1] * down * across
    )
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)


def outlines(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Circles, ellipses of any aspect, rectangles, triangles: anywhere, any size and pen."""
    image, draw, side = _canvas(rng)
    for _ in range(int(rng.integers(1, 3))):
        width = max(1, round(side * rng.uniform(0.02, 0.2)))
        fill = 255 if rng.random() < 0.35 else None
        centre = rng.uniform(0.25 * side, 0.75 * side, 2)
        half = side * rng.uniform(0.08, 0.45, 2)
        if rng.random() < 0.4:
            half[1] = half[0]
        box = (*(centre - half), *(centre + half))
        kind = rng.integers(4)
        if kind == 0:
            draw.ellipse(box, fill=fill, outline=255, width=width)
        elif kind == 1:
            draw.rectangle(box, fill=fill, outline=255, width=width)
        elif kind == 2:
            draw.regular_polygon(
                (*centre, float(half[0])),
                int(rng.integers(3, 9)),
                rotation=float(rng.uniform(0, 360)),
                fill=fill,
                outline=255,
                width=width,
            )
        else:
            start = float(rng.uniform(0, 360))
            draw.arc(box, start, start + float(rng.uniform(60, 300)), fill=255, width=width)
    return np.asarray(image)


def straight_lines(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two to four straight lines, crosses, plus signs, grids or parallel bars, any angle and pen.

    Never a single line: one line is a 1."""
    image, draw, side = _canvas(rng)
    width = max(1, round(side * rng.uniform(0.02, 0.18)))
    style = rng.integers(3)
    if style == 0:
        for _ in range(int(rng.integers(2, 5))):
            draw.line(_points(rng, side, 2), fill=255, width=width)
    elif style == 1:
        centre, reach = rng.uniform(0.3 * side, 0.7 * side, 2), side * rng.uniform(0.15, 0.45)
        turn = rng.uniform(0, np.pi)
        for angle in (turn, turn + np.pi / 2 + rng.uniform(-0.4, 0.4)):
            step = reach * np.array([np.cos(angle), np.sin(angle)])
            draw.line([tuple(centre - step), tuple(centre + step)], fill=255, width=width)
    else:
        count, across = int(rng.integers(2, 6)), rng.random() < 0.5
        width = max(1, width // 2)
        for offset in np.linspace(0.15 * side, 0.85 * side, count):
            draw.line([(offset, 0.1 * side), (offset, 0.9 * side)], fill=255, width=width)
            if across:
                draw.line([(0.1 * side, offset), (0.9 * side, offset)], fill=255, width=width)
        if rng.random() < 0.5:
            image = image.rotate(float(rng.uniform(0, 180)))
    return np.asarray(image)


def curves(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One to four smooth pen strokes (cubic Bezier curves) or short polylines, any pen."""
    image, draw, side = _canvas(rng)
    width = max(1, round(side * rng.uniform(0.02, 0.16)))
    steps = np.linspace(0, 1, 24)[:, None]
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.7:
            a, b, c, d = rng.uniform(0.05 * side, 0.95 * side, (4, 2))
            path = (
                (1 - steps) ** 3 * a
                + 3 * (1 - steps) ** 2 * steps * b
                + 3 * (1 - steps) * steps**2 * c
                + steps**3 * d
            )
            draw.line([tuple(point) for point in path], fill=255, width=width, joint="curve")
        else:
            draw.line(_points(rng, side, int(rng.integers(2, 5))), 255, width, joint="curve")
    return np.asarray(image)


def blank(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A uniform frame of any grey, with faint noise below the ink threshold at times."""
    side = int(rng.choice(CANVAS_SIDES))
    level = rng.uniform(0, 255)
    field = np.full((side, side), level) + rng.normal(0, rng.uniform(0, 3), (side, side))
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


KINDS: tuple[Kind, ...] = (
    Kind("blank", "a uniform frame, faint noise at most", blank),
    Kind("noise", "Gaussian, uniform or salt-and-pepper noise", noise),
    Kind("dots", "one to eight blobs", dots),
    Kind("shapes", "rectangles, polygons, stars, wide ellipses", shapes),
    Kind("strokes", "two to five random pen strokes", strokes),
    Kind("scribble", "hatching, grids, dense scrawl", scribble),
    Kind("piece", "a window cut out of one digit", piece),
    Kind("overlaid", "two different digits over each other", overlaid),
    Kind("side by side", "two or three digits in a row", side_by_side),
    Kind("recombined", "halves of two different digits joined", recombined),
    Kind("warped", "a digit under a violent warp or swirl", warped),
)

# Fitting only: more geometry of the kinds the validation set finds hardest (shapes, strokes).
FITTING_ONLY_KINDS: tuple[Kind, ...] = (
    Kind("outlines", "circles, ellipses, rectangles, polygons, arcs", outlines),
    Kind("lines", "lines, crosses, grids, bars", straight_lines),
    Kind("curves", "one to four smooth strokes", curves),
)


def upload(
    kind: Kind, rng: np.random.Generator, images: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """One non-digit as a user might send it: light on dark, or dark on light paper."""
    pixels = kind.make(rng, images, labels)
    return 255 - pixels if rng.random() < 0.3 else pixels


def non_digits(
    images: np.ndarray,
    labels: np.ndarray,
    per_kind: int,
    seed: int,
    kinds: tuple[Kind, ...] = KINDS,
) -> dict[str, np.ndarray]:
    """Model inputs [per_kind, 28, 28] uint8 for each kind, through the service's preprocessing.

    ``images`` and ``labels`` are the MNIST images to cut up (training images for fitting,
    validation images for choosing); kind ``i`` draws from seed ``[seed, i]``.
    """
    if per_kind < 1:
        raise ValueError(f"per_kind must be at least 1, got {per_kind}")
    made = {}
    for index, kind in enumerate(kinds):
        rng = np.random.default_rng([seed, index])
        made[kind.name] = np.stack(
            [to_model_input(upload(kind, rng, images, labels), "auto") for _ in range(per_kind)]
        )
    return made
