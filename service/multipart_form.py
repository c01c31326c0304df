"""A small in-memory multipart/form-data reader.

Starlette's form parser spools files over 1 MB to disk (a read-only container has none) and
builds objects we do not need; the body is already bounded by the size limit, so parts are
collected as bytes in one pass of python-multipart's streaming parser.
"""

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from service.errors import BadRequest

MAX_HEADER_BYTES = 8192


@dataclass
class FormPart:
    """One part of the form: a file when it has a filename (possibly empty)."""

    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)

    @property
    def is_file(self) -> bool:
        return self.filename is not None


class _PartCollector:
    """python-multipart callbacks that build ``FormPart`` objects."""

    def __init__(self) -> None:
        self.parts: list[FormPart] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": lambda data, start, end: self.parts[-1].data.extend(data[start:end]),
        }

    def _on_part_begin(self) -> None:
        self._headers = {}
        self.parts.append(FormPart())

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self.parts[-1]
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise BadRequest("a multipart part has no Content-Disposition name", "bad_multipart")
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            part.filename = options[b"filename"].decode("utf-8", "replace")
        part.content_type = self._headers.get(b"content-type", b"").decode("latin-1")


def parse_multipart(body: bytes, content_type_options: dict[bytes, bytes]) -> list[FormPart]:
    """All parts of a complete multipart body; a broken or unfinished one is a 400."""
    boundary = content_type_options.get(b"boundary")
    if not boundary:
        raise BadRequest(
            "multipart/form-data needs a boundary parameter in its Content-Type", "bad_multipart"
        )
    collector = _PartCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks(), max_header_size=MAX_HEADER_BYTES)
        parser.write(body)
    except (MultipartParseError, ValueError) as error:
        raise BadRequest(f"malformed multipart body: {error}", "bad_multipart") from None
    if parser.state != MultipartState.END:
        raise BadRequest(
            "malformed multipart body: it ends before the closing boundary", "bad_multipart"
        )
    return collector.parts
