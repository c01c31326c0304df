"""The fast multipart split and header parser agree with python-multipart on generated input.

The service keeps one multipart parser, python-multipart, and a fast path in front of it for
the bodies every client sends. These differential property tests generate well-formed and
damaged bodies and headers: wherever the fast path answers, it answers exactly what
python-multipart answers (the same parts, or a refusal with the same message).
"""

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from python_multipart.multipart import parse_options_header

from service.inference.errors import BadRequest
from service.rest.multipart import _split_simple, parse_options, parse_streaming

BOUNDARY_CHARACTERS = string.ascii_letters + string.digits + "'()+_,-./:=?"
HEADER_CHARACTERS = string.ascii_letters + string.digits + ' ;="\\*\t-_./:,é'
# Byte strings that make part data look like the structure around it.
TRICKY_DATA = [b"\r\n", b"--", b"\r\n--", b"\r\n\r\n", b'"', b";", b"\n", b"\r"]
EXAMPLES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _quoted(text: str) -> str:
    return '"' + text + '"'


@st.composite
def part_headers(draw: st.DrawFn) -> bytes:
    """A part's header block: a Content-Disposition (mostly), maybe a Content-Type, any case."""
    name = draw(st.text(alphabet=string.ascii_letters + "_-[] .", max_size=8))
    disposition = f"form-data; name={_quoted(name)}"
    if draw(st.booleans()):
        disposition += (
            f"; filename={_quoted(draw(st.text(alphabet=HEADER_CHARACTERS, max_size=8)))}"
        )
    lines = []
    if draw(st.integers(0, 9)):
        header_name = draw(
            st.sampled_from(["Content-Disposition", "content-disposition", "CONTENT-DISPOSITION"])
        )
        lines.append(f"{header_name}:{draw(st.sampled_from(['', ' ', '  ']))}{disposition}")
    if draw(st.booleans()):
        lines.append(f"Content-Type: {draw(st.sampled_from(['image/png', 'text/plain', '']))}")
    if not draw(st.integers(0, 3)):
        lines.append(draw(st.text(alphabet=HEADER_CHARACTERS + ":", max_size=12)))
    return "\r\n".join(draw(st.permutations(lines))).encode("utf-8")


@st.composite
def part_data(draw: st.DrawFn) -> bytes:
    pieces = draw(
        st.lists(st.one_of(st.binary(max_size=12), st.sampled_from(TRICKY_DATA)), max_size=5)
    )
    return b"".join(pieces)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A multipart body and its boundary: well formed, then perhaps damaged in one place."""
    boundary = draw(st.text(alphabet=BOUNDARY_CHARACTERS, min_size=1, max_size=72)).encode()
    parts = draw(st.lists(st.tuples(part_headers(), part_data()), min_size=1, max_size=3))
    body = b"".join(
        b"--%s\r\n%s\r\n\r\n%s\r\n" % (boundary, headers, data) for headers, data in parts
    )
    body += b"--%s--\r\n" % boundary
    damage = draw(st.sampled_from(["none", "truncate", "insert", "lf", "preamble", "epilogue"]))
    position = draw(st.integers(0, len(body)))
    if damage == "truncate":
        body = body[:position]
    elif damage == "insert":
        body = body[:position] + draw(st.sampled_from([*TRICKY_DATA, b"x", b"-"])) + body[position:]
    elif damage == "lf":
        body = body.replace(b"\r\n", b"\n", draw(st.integers(1, 3)))
    elif damage == "preamble":
        body = draw(st.sampled_from([b"preamble\r\n", b"\r\n", b" "])) + body
    elif damage == "epilogue":
        body += draw(st.sampled_from([b"epilogue", b"\r\n--x", b"--"]))
    return body, boundary


def _outcome(parse, *arguments) -> object:
    """The parts as plain tuples, or the refusal's message."""
    try:
        parts = parse(*arguments)
    except BadRequest as error:
        return ("refused", error.message)
    if parts is None:
        return None
    return [(part.name, part.filename, part.content_type, bytes(part.data)) for part in parts]


@EXAMPLES
@given(bodies())
def test_the_fast_split_finds_what_python_multipart_finds(case: tuple[bytes, bytes]) -> None:
    body, boundary = case
    fast = _outcome(_split_simple, body, boundary)
    if fast is not None:  # None: the split declines, and python-multipart parses the body
        assert fast == _outcome(parse_streaming, body, boundary)


@EXAMPLES
@given(st.text(alphabet=HEADER_CHARACTERS, max_size=60))
@example('";=')  # a ";" inside an unclosed quote of the media type: no separator
def test_the_fast_header_parser_agrees_with_python_multipart(header: str) -> None:
    assert parse_options(header) == parse_options_header(header)
    assert parse_options(header.encode("latin-1")) == parse_options_header(header)


def test_well_formed_bodies_take_the_fast_split() -> None:
    """The fast path is really taken for what clients send (else the equivalence says little)."""
    disposition = b'Content-Disposition: form-data; name="file"; filename="a.png"'
    body = b"--b\r\n" + disposition + b"\r\n\r\nPNG\r\n--b--\r\n"
    assert _outcome(_split_simple, body, b"b") == [("file", "a.png", "", b"PNG")]
