"""The fast path for the PNGs most requests carry: 8-bit grey, grey + alpha, RGB or RGBA.

Pillow's PNG reader is Python around a C decoder: for a 28x28 digit it is a sizeable part of a
request's CPU, and libspng (through pyspng) decodes the same file several times faster
(benchmarks/in_app.py measures the request). It takes only the
files whose pixels Pillow would read the same way: a valid signature, every chunk's CRC right,
8 bits per sample, no palette, no interlacing, and no chunk that changes what the pixels mean
(transparency, EXIF or text that can carry an orientation). Anything else, or anything libspng
refuses, goes to Pillow, which decodes or refuses it exactly as before; the differential test
in tests/ holds the two to the same pixels.
"""

import struct
import zlib

import numpy as np
import pyspng

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour types with 8-bit samples that need no palette: grey, RGB, grey + alpha, RGBA.
CHANNELS_BY_COLOUR_TYPE = {0: 1, 2: 3, 4: 2, 6: 4}
# Chunks that Pillow reads without changing pixels, orientation or transparency.
NEUTRAL_CHUNKS = frozenset({b"IDAT", b"pHYs", b"sRGB", b"gAMA", b"cHRM", b"iCCP", b"tIME"})
CHUNK_FRAME = 12  # length, type and CRC around a chunk's data
CHUNK_HEAD = struct.Struct(">I4s")
# IHDR: width, height, bit depth, colour type, compression, filter and interlace methods.
IHDR_DATA = struct.Struct(">IIBBBBB")


def simple_png_header(data: bytes, max_side: int) -> tuple[int, int, int] | None:
    """Width, height and channels of a PNG the fast path takes (no side over ``max_side``),
    else None.

    Every chunk is walked and CRC-checked, and the compressed pixels inflated once to check
    zlib's own checksum: a file the fast path takes is one Pillow would also accept.
    """
    if not data.startswith(SIGNATURE):
        return None
    view = memoryview(data)
    header = None
    pixel_data: list[memoryview] = []
    offset = len(SIGNATURE)
    while offset + CHUNK_FRAME <= len(data):
        length, kind = CHUNK_HEAD.unpack_from(data, offset)
        end = offset + CHUNK_FRAME + length
        if end > len(data) or not _crc_holds(view, offset, end):
            return None
        if header is None:  # IHDR comes first, and only once
            if kind != b"IHDR" or length != IHDR_DATA.size:
                return None
            header = _simple_header(IHDR_DATA.unpack_from(data, offset + 8), max_side)
            if header is None:
                return None
        elif kind == b"IEND":
            return header if end == len(data) and _inflates(pixel_data) else None
        elif kind not in NEUTRAL_CHUNKS:
            return None
        elif kind == b"IDAT":
            pixel_data.append(view[offset + 8 : end - 4])
        offset = end
    return None


def _simple_header(fields: tuple[int, ...], max_side: int) -> tuple[int, int, int] | None:
    """Width, height and channels when IHDR's fields are the fast path's kind, else None."""
    width, height, depth, colour, compression, filtering, interlace = fields
    simple = (
        depth == 8
        and colour in CHANNELS_BY_COLOUR_TYPE
        and (compression, filtering, interlace) == (0, 0, 0)
    )
    if not simple or not 0 < width <= max_side or not 0 < height <= max_side:
        return None
    return width, height, CHANNELS_BY_COLOUR_TYPE[colour]


def _inflates(pixel_data: list[memoryview]) -> bool:
    """Whether the IDAT chunks hold one whole zlib stream whose checksum holds: libspng does not
    check the checksum, Pillow does (and refuses the file when it is wrong)."""
    inflater = zlib.decompressobj()
    try:
        for part in pixel_data:
            inflater.decompress(part)
    except zlib.error:
        return False
    return inflater.eof


def _crc_holds(view: memoryview, start: int, end: int) -> bool:
    """Whether the chunk in ``view[start:end]`` carries the CRC of its type and data."""
    return zlib.crc32(view[start + 4 : end - 4]) == int.from_bytes(view[end - 4 : end], "big")


def decode(data: bytes, channels: int) -> np.ndarray | None:
    """The pixels of a file ``simple_png_header`` took: uint8 [H, W] or [H, W, 3 or 4]; None
    when libspng refuses it (Pillow then decides, in its own words). Grey + alpha comes as
    RGBA (grey in every colour channel): libspng has no grey + alpha output."""
    try:
        return pyspng.load(data, "RGBA" if channels == 2 else None)
    except (RuntimeError, ValueError):
        return None


def luminance(pixels: np.ndarray) -> np.ndarray:
    """Pillow's RGB to L (ITU-R 601-2 in 16-bit fixed point, rounded), on [H, W, 3+] uint8."""
    weighted = pixels[..., 0].astype(np.uint32) * 19595
    weighted += pixels[..., 1].astype(np.uint32) * 38470
    weighted += pixels[..., 2].astype(np.uint32) * 7471
    weighted += 0x8000
    return (weighted >> 16).astype(np.uint8)
