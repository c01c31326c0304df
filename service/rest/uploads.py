"""The images of a /predict request: multipart ``file``/``files`` parts, or one raw image body."""

from service.inference.errors import BadRequest, UnsupportedMediaType
from service.inference.limits import Upload
from service.rest.multipart import parse_multipart, parse_options

FILE_FIELDS = ("file", "files")


def uploads_from_body(content_type: str | None, body: bytes) -> list[Upload]:
    """The request's images; the dataplane checks their count and sizes."""
    media_type, options = parse_options(content_type or "")
    media_type_text = media_type.decode("latin-1").lower()
    if media_type_text == "multipart/form-data":
        uploads = _uploads_from_form(body, options)
    elif media_type_text.startswith("image/"):
        uploads = [Upload(data=body, filename=None)]
    else:
        what = (
            f"content type {media_type_text!r} is not accepted"
            if media_type_text
            else ("the request has no Content-Type header")
        )
        raise UnsupportedMediaType(
            f"{what}: send multipart/form-data with a 'file' field (or several 'files'), or a "
            "raw body with an image/* content type",
            reason="unsupported_content_type" if media_type_text else "no_content_type",
        )
    return uploads


def _uploads_from_form(body: bytes, options: dict[bytes, bytes]) -> list[Upload]:
    parts = parse_multipart(body, options)
    image_parts = [part for part in parts if part.name in FILE_FIELDS]
    for part in image_parts:
        if not part.is_file:
            raise BadRequest(
                f"form field {part.name!r} must be a file upload, not a text value", "not_a_file"
            )
    if not image_parts:
        received = ", ".join(sorted({repr(part.name) for part in parts})) or "no fields"
        raise BadRequest(
            f"no image in the form: send it in the field 'file' (or several in 'files'); "
            f"received {received}",
            reason="no_image",
        )
    return [Upload(data=bytes(part.data), filename=part.filename or None) for part in image_parts]
