"""Hostile request bodies, built once from real encoders so that each breaks in a known way.

Shared by the hostile-input suite and the soak script, which mixes them with valid requests.
"""

import json
import random
import struct
import zlib

import numpy as np
from PIL import Image

from tests.support.images import drawn_seven, encode, mnist_like, png_bytes

INFER = "/v2/models/mnist_mlp/infer"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZERO_CHUNK = bytes(4 * 1024 * 1024)


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible noise: the same bytes on every run, so a failure can be replayed."""
    return random.Random(seed).randbytes(size)


def valid_png() -> bytes:
    """A 28x28 digit-like PNG that every test server must classify."""
    return png_bytes(mnist_like())


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    checksum = struct.pack(">I", zlib.crc32(kind + payload))
    return struct.pack(">I", len(payload)) + kind + payload + checksum


def grayscale_png(width: int, height: int, bit_depth: int, pixel_stream: bytes) -> bytes:
    """A PNG file around an already compressed IDAT stream, whatever that stream holds."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", pixel_stream), (b"IEND", b"")]
    return PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks)


def compressed_png(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of zeros: a few hundred KB that decode to width x height pixels.

    Built by streaming zeros through zlib, so a gigapixel bomb costs no gigabyte to make.
    """
    pixels = compressed_zeros(height * (1 + (width + 7) // 8), zlib.MAX_WBITS)
    return grayscale_png(width, height, 1, pixels)


def compressed_zeros(size: int, wbits: int) -> bytes:
    """``size`` zero bytes through zlib (``wbits`` 15: zlib, 31: gzip), fed in 4 MiB pieces."""
    compressor = zlib.compressobj(1, wbits=wbits)
    parts = [
        compressor.compress(ZERO_CHUNK[: min(len(ZERO_CHUNK), size - start)])
        for start in range(0, size, len(ZERO_CHUNK))
    ]
    return b"".join([*parts, compressor.flush()])


def flip_bytes(data: bytes, start: int, count: int = 16) -> bytes:
    """``data`` with ``count`` bytes from ``start`` inverted: corrupt, but the same length."""
    corrupted = bytearray(data)
    for position in range(start, min(start + count, len(data))):
        corrupted[position] ^= 0xFF
    return bytes(corrupted)


def png_with_bad_crc() -> bytes:
    """A PNG whose IHDR checksum is wrong."""
    data = bytearray(valid_png())
    data[29] ^= 0xFF
    return bytes(data)


def png_with_corrupt_pixels() -> bytes:
    """A PNG whose IDAT stream is not valid zlib data (its chunk CRC matches the broken bytes)."""
    pixels = zlib.compress(b"\x00" * (29 * 28))
    return grayscale_png(28, 28, 8, pixels[:2] + flip_bytes(pixels[2:], 0, 8))


def gif_frame_claiming(width: int, height: int) -> bytes:
    """A 4x4 GIF whose first frame descriptor claims ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (4, 4)), "GIF"))
    descriptor = data.index(b"\x2c")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_header_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("L", (4, 4)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def lab_tiff() -> bytes:
    """A CIELab TIFF: Pillow decodes it but cannot convert it to grayscale."""
    return encode(Image.new("LAB", (32, 32)), "TIFF")


def jpeg_seven() -> bytes:
    return encode(drawn_seven(), "JPEG", quality=90)


def gif_seven() -> bytes:
    return encode(drawn_seven(), "GIF")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><text>7</text></svg>'
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def image_tensor(
    shape: list[int], data: object, name: str = "image", datatype: str = "UINT8"
) -> dict[str, object]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def infer_json(*inputs: dict[str, object], **fields: object) -> bytes:
    """A V2 inference request body with the given inputs (and any other top-level fields)."""
    return json.dumps({"inputs": list(inputs), **fields}).encode()


def valid_infer_json(batch: int = 1) -> bytes:
    """A well-formed V2 request for ``batch`` digit-like images."""
    images = np.stack([mnist_like(seed) for seed in range(batch)])
    return infer_json(image_tensor([batch, 28, 28], images.reshape(-1).tolist()))


def binary_infer(declared_size: int, sent: bytes) -> tuple[bytes, dict[str, str]]:
    """A binary-tensor request whose input declares ``declared_size`` bytes and sends ``sent``."""
    tensor = {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8"}
    header = json.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": declared_size}}]})
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
    return header.encode() + sent, headers
