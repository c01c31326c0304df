"""A small in-memory multipart/form-data reader.

Starlette's form parser spools large files to disk (a read-only container has none) and
builds objects we do not need; the body is already bounded by the size limit, so parts are
collected as bytes. A well-formed body (what every client sends) is split with ``bytes.find``;
anything unusual goes through python-multipart's streaming parser, which decides and words
the error. The split costs a fraction of the streaming parser's per-part callbacks
(benchmarks/levers.py, "streaming multipart"). tests/service/test_multipart_equivalence.py
checks, on Hypothesis-generated bodies, that the split finds the same parts as the streaming
parser or refuses as it does.
"""

import re
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from service.inference.errors import BadRequest

MAX_HEADER_BYTES = 8192
# The fast split only takes what every python-multipart version parses the same way: RFC 2046's
# longest boundary, at most its default of 8 headers a part, plain header names.
SIMPLE_BOUNDARY_BYTES = 70
SIMPLE_HEADER_COUNT = 8
SIMPLE_HEADER_NAME = re.compile(rb"[A-Za-z0-9-]+")


@dataclass
class FormPart:
    """One part of the form: a file when it has a filename (possibly empty)."""

    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytes | bytearray = field(default_factory=bytearray)

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
        _describe_part(self.parts[-1], self._headers)


def parse_options(value: str | bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """``parse_options_header`` from python-multipart, with the same result, faster.

    A plain header (no quoted ``;``, no backslash escape, no RFC 2231 ``*`` parameter) is
    split with ``str.split``, several times faster; anything else goes to python-multipart.
    tests/service/test_multipart_equivalence.py checks the two agree.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not text or ";" not in text or "\\" in text or "*" in text:
        return parse_options_header(text)
    media_type, *segments = text.split(";")
    if media_type.count('"') % 2:  # its ";" is quoted: not a separator
        return parse_options_header(text)
    options: dict[bytes, bytes] = {}
    for segment in segments:
        key, equals, option = segment.partition("=")
        if not equals or segment.count('"') % 2:
            return parse_options_header(text)
        option = option.strip(" \t")
        if len(option) >= 2 and option[0] == '"' and option[-1] == '"':
            option = option[1:-1]
        options[key.strip(" \t").lower().encode("latin-1")] = option.encode("latin-1")
    return media_type.strip(" \t").lower().encode("latin-1"), options


def _describe_part(part: FormPart, headers: dict[bytes, bytes]) -> None:
    """Name, filename and content type from a part's headers (names lower-cased)."""
    _, options = parse_options(headers.get(b"content-disposition", b""))
    if b"name" not in options:
        raise BadRequest("a multipart part has no Content-Disposition name", "bad_multipart")
    part.name = options[b"name"].decode("utf-8", "replace")
    if b"filename" in options:
        part.filename = options[b"filename"].decode("utf-8", "replace")
    part.content_type = headers.get(b"content-type", b"").decode("latin-1")


def _split_simple(body: bytes, boundary: bytes) -> list[FormPart] | None:
    """The parts of a well-formed body, or None for python-multipart to parse it.

    A part's headers are described (and may be refused) before its data is looked at, as in
    the streaming parser, so an error is the same whichever path meets it.
    """
    if len(boundary) > SIMPLE_BOUNDARY_BYTES or not body.startswith(b"--%s\r\n" % boundary):
        return None
    delimiter = b"\r\n--" + boundary
    parts, position = [], len(boundary) + 4
    while True:
        headers_end = body.find(b"\r\n\r\n", position)
        headers = _simple_headers(body[position:headers_end]) if headers_end > position else None
        if headers is None:
            return None
        part = FormPart()
        _describe_part(part, headers)
        data_end = body.find(delimiter, headers_end + 4)
        if data_end < 0:
            return None
        part.data = body[headers_end + 4 : data_end]
        parts.append(part)
        position = data_end + len(delimiter) + 2
        closing = body[position - 2 : position]
        if closing == b"--":
            return parts
        if closing != b"\r\n":
            return None


def _simple_headers(block: bytes) -> dict[bytes, bytes] | None:
    """``Name: value`` lines as python-multipart reads them, or None if any line is unusual."""
    lines = block.split(b"\r\n")
    if len(lines) > SIMPLE_HEADER_COUNT:
        return None
    headers = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        unusual = b"\r" in line or b"\n" in line or len(line) > MAX_HEADER_BYTES
        if unusual or not colon or not SIMPLE_HEADER_NAME.fullmatch(name):
            return None
        headers[name.lower()] = value.lstrip(b" ")
    return headers


def parse_multipart(body: bytes, content_type_options: dict[bytes, bytes]) -> list[FormPart]:
    """All parts of a complete multipart body; a broken or unfinished one is a 400."""
    boundary = content_type_options.get(b"boundary")
    if not boundary:
        raise BadRequest(
            "multipart/form-data needs a boundary parameter in its Content-Type", "bad_multipart"
        )
    parts = _split_simple(body, boundary)
    return parts if parts is not None else parse_streaming(body, boundary)


def parse_streaming(body: bytes, boundary: bytes) -> list[FormPart]:
    """python-multipart's streaming parser over the whole body: the reference behaviour."""
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
