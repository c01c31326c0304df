"""Limits on what one request may ask of the service, checked before the work they bound."""

from dataclasses import dataclass

from service.inference.errors import PayloadTooLarge

# Parsing or decoding this many bytes costs less than the hop to a worker thread: a request
# body, gRPC message or set of images this small is handled on the event loop.
SMALL_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked from the image header, before any pixel is decoded."""

    max_pixels: int
    max_side: int


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its bytes, and its name when the client sent one."""

    data: bytes
    filename: str | None


def check_uploads(uploads: list[Upload], max_images: int, max_image_bytes: int) -> None:
    """At most ``max_images`` images, each at most ``max_image_bytes``: a 413 names the first."""
    if len(uploads) > max_images:
        raise PayloadTooLarge(
            f"{len(uploads)} images sent; at most {max_images} are allowed per request",
            reason="too_many_images",
        )
    for position, upload in enumerate(uploads):
        if len(upload.data) > max_image_bytes:
            name = upload.filename or f"image {position + 1}"
            raise PayloadTooLarge(
                f"{name} is {len(upload.data)} bytes; at most {max_image_bytes} are allowed",
                reason="image_too_large",
            )


class PixelBudget:
    """The decoded pixels one request may spend over all its images (MNIST_MAX_REQUEST_PIXELS):
    each image is charged from its header, before it is decoded."""

    __slots__ = ("spent", "total")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("a pixel budget must be positive")
        self.total = total
        self.spent = 0

    def spend(self, width: int, height: int) -> None:
        self.spent += width * height
        if self.spent > self.total:
            raise PayloadTooLarge(
                f"the images of this request hold {self.spent} pixels so far; at most "
                f"{self.total} decoded pixels are allowed per request",
                reason="request_too_many_pixels",
            )
