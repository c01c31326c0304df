"""Differential: the libspng fast path reads every PNG it takes to the same pixels as Pillow, and
takes nothing Pillow would refuse or read differently (transparency keys, orientation, palettes,
16 bits, interlacing, damaged bytes), so that which path a file takes never shows.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from service.inference.errors import ServiceError
from service.inference.image_files import (
    open_image,
    shrink_to_working_size,
    simple_png_grayscale,
    to_grayscale,
)
from service.inference.limits import ImageLimits

LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def through_pillow(data: bytes) -> np.ndarray | None:
    """The grayscale pixels the Pillow path reads, or None when it refuses the file."""
    try:
        return to_grayscale(shrink_to_working_size(open_image(data, LIMITS)))
    except ServiceError:
        return None


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


@st.composite
def simple_pngs(draw: st.DrawFn) -> bytes:
    """8-bit L, LA, RGB or RGBA PNGs of any small size, alpha often fully on or off."""
    mode = draw(st.sampled_from(sorted(CHANNELS)))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, CHANNELS[mode]))
    pixels = pixels.astype(np.uint8)
    if mode in ("LA", "RGBA") and draw(st.booleans()):
        pixels[..., -1] = np.where(pixels[..., -1] > 127, 255, 0)
    image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels)
    return png_bytes(image, compress_level=draw(st.integers(0, 9)))


@FAST
@given(simple_pngs())
def test_every_simple_png_takes_the_fast_path_to_pillows_pixels(data: bytes) -> None:
    fast = simple_png_grayscale(data, LIMITS)
    assert fast is not None, "an 8-bit, non-interlaced PNG must take the fast path"
    np.testing.assert_array_equal(fast, through_pillow(data))


@FAST
@given(simple_pngs(), st.data())
def test_damage_a_crc_catches_never_takes_the_fast_path(data: bytes, draw: st.DataObject) -> None:
    """A byte flipped anywhere, or the file cut short: the CRCs (or the missing IEND) send it
    to Pillow, which decides alone."""
    damaged = bytearray(data)
    if draw.draw(st.booleans(), label="truncate"):
        damaged = damaged[: draw.draw(st.integers(0, len(data) - 1), label="length")]
    else:
        position = draw.draw(st.integers(0, len(data) - 1), label="position")
        damaged[position] ^= draw.draw(st.integers(1, 255), label="flip")
    assert simple_png_grayscale(bytes(damaged), LIMITS) is None


def chunk_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each chunk's data in a well-formed PNG."""
    spans, offset = [], 8
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        spans.append((offset + 8, offset + 8 + length))
        offset += 12 + length
    return spans


def chunk(kind: bytes, payload: bytes) -> bytes:
    """A chunk with its length and a right CRC."""
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def resealed(data: bytes, position: int, flip: int) -> bytes:
    """A writer's damage that no checksum catches: a byte of the header fields, or of the
    scanlines (filter bytes included) before compression, flipped; every CRC and zlib's
    checksum right. ``position`` picks which (even: the header, odd: the scanlines)."""
    (header_start, header_end), *rest = chunk_spans(data)
    header = bytearray(data[header_start:header_end])
    pixel_spans = [span for span in rest[:-1] if data[span[0] - 4 : span[0]] == b"IDAT"]
    scanlines = bytearray(zlib.decompress(b"".join(data[a:b] for a, b in pixel_spans)))
    if position % 2 == 0:
        header[position // 2 % len(header)] ^= flip
    else:
        scanlines[position // 2 % len(scanlines)] ^= flip
    return b"".join(
        [
            data[:8],
            chunk(b"IHDR", bytes(header)),
            chunk(b"IDAT", zlib.compress(bytes(scanlines))),
            chunk(b"IEND", b""),
        ]
    )


@FAST
@given(simple_pngs(), st.integers(0, 2**16), st.integers(1, 255))
def test_damage_no_checksum_catches_reads_as_pillow_reads_it(
    data: bytes, position: int, flip: int
) -> None:
    damaged = resealed(data, position, flip)
    fast = simple_png_grayscale(damaged, LIMITS)
    if fast is not None:
        np.testing.assert_array_equal(fast, through_pillow(damaged))


def test_damage_no_checksum_catches_often_takes_the_fast_path() -> None:
    """So that the test above compares pixels, rather than passing because nothing took it."""
    rng = np.random.default_rng(0)
    taken = 0
    for _ in range(50):
        pixels = rng.integers(0, 256, (10, 10), dtype=np.uint8)
        data = png_bytes(Image.fromarray(pixels))
        damaged = resealed(data, int(rng.integers(0, 2**16)), int(rng.integers(1, 256)))
        taken += simple_png_grayscale(damaged, LIMITS) is not None
    assert taken >= 10


def digit(mode: str) -> Image.Image:
    pixels = np.zeros((28, 28, CHANNELS.get(mode, 1)), dtype=np.uint8)
    pixels[6:22, 12:16] = 200
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def with_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """``data`` with one more chunk (CRC right) just after IHDR."""
    return data[:33] + chunk(kind, payload) + data[33:]


def text_chunk(key: str, value: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


LEFT_TO_PILLOW = {
    "palette": lambda: png_bytes(digit("L").convert("P")),
    "16-bit": lambda: png_bytes(Image.fromarray(np.full((28, 28), 40000, np.uint16))),
    "1-bit": lambda: png_bytes(digit("L").convert("1")),
    "interlaced": lambda: with_interlace(png_bytes(digit("L"))),
    "transparency key": lambda: png_bytes(digit("L"), transparency=0),
    "EXIF chunk": lambda: with_chunk(png_bytes(digit("L")), b"eXIf", b"MM\x00*\x00\x00\x00\x08"),
    "text (may carry EXIF)": lambda: png_bytes(digit("L"), pnginfo=text_chunk("Comment", "7")),
    "bad CRC": lambda: (
        png_bytes(digit("L"))[:29] + b"\x00\x00\x00\x00" + png_bytes(digit("L"))[33:]
    ),
    "data after IEND": lambda: png_bytes(digit("L")) + b"trailing",
    "over the working size": lambda: png_bytes(Image.new("L", (1025, 8))),
}


def with_interlace(data: bytes) -> bytes:
    """The same file declaring Adam7 interlacing (its CRC fixed): libspng would read it."""
    header = bytearray(data[8:33])
    header[-5] = 1
    header[-4:] = struct.pack(">I", zlib.crc32(bytes(header[4:-4])))
    return data[:8] + bytes(header) + data[33:]


@pytest.mark.parametrize("kind", sorted(LEFT_TO_PILLOW))
def test_files_pillow_reads_its_own_way_are_left_to_pillow(kind: str) -> None:
    assert simple_png_grayscale(LEFT_TO_PILLOW[kind](), LIMITS) is None


def test_neutral_chunks_keep_the_fast_path() -> None:
    data = with_chunk(png_bytes(digit("RGB")), b"pHYs", struct.pack(">IIB", 2835, 2835, 1))
    fast = simple_png_grayscale(data, LIMITS)
    assert fast is not None
    np.testing.assert_array_equal(fast, through_pillow(data))
