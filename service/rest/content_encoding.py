"""HTTP ``Content-Encoding`` of a request body: gzip and deflate, as tritonclient sends them."""

import zlib

from service.inference.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# zlib window bits per Content-Encoding, the two tritonclient can compress requests with.
CONTENT_ENCODING_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decode_content(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo a gzip or deflate Content-Encoding, never inflating past ``max_bytes`` (zip bombs)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in CONTENT_ENCODING_WBITS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity",
            "unsupported_content_encoding",
        )
    decompressor = zlib.decompressobj(CONTENT_ENCODING_WBITS[encoding])
    try:
        decoded = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise BadRequest(
            f"the body is not valid {encoding} data: {error}", "bad_encoding"
        ) from None
    if len(decoded) > max_bytes:
        raise PayloadTooLarge(
            f"the {encoding} body inflates beyond {max_bytes} bytes, the request limit",
            "body_too_large",
        )
    if not decompressor.eof:
        raise BadRequest(f"the {encoding} body is truncated", "bad_encoding")
    return decoded
