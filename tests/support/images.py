"""Real image bytes made with Pillow, in every format and mode the service reads."""

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw


def png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    """Lossless PNG bytes of an array, the way a client would upload it."""
    image = Image.fromarray(pixels)
    return encode(image.convert(mode) if mode else image, "PNG")


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def drawn_seven(size: tuple[int, int] = (240, 300), ink: int = 0, paper: int = 255) -> Image.Image:
    """A thick "7" in grayscale, dark ink on light paper by default, like a scan of paper."""
    image = Image.new("L", size, paper)
    width, height = size
    draw = ImageDraw.Draw(image)
    stroke = max(3, width // 12)
    draw.line([(width * 0.2, height * 0.2), (width * 0.8, height * 0.2)], fill=ink, width=stroke)
    draw.line([(width * 0.8, height * 0.2), (width * 0.4, height * 0.85)], fill=ink, width=stroke)
    return image


def png_header_claiming(width: int, height: int, depth: int = 8, colour_type: int = 0) -> bytes:
    """A tiny PNG whose header claims an enormous size, as a decompression bomb does (8-bit
    grey unless told: ``depth=16, colour_type=6`` is 16-bit RGBA)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_payload = zlib.compress(b"\x00" * 64)
    idat = b"IDAT" + idat_payload
    idat_chunk = struct.pack(">I", len(idat_payload)) + idat + struct.pack(">I", zlib.crc32(idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat_chunk + end


def mnist_like(seed: int = 0) -> np.ndarray:
    """A 28x28 uint8 array with a black border, as MNIST digits have."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 6:22] = rng.integers(0, 256, size=(20, 16), dtype=np.uint8)
    return pixels
