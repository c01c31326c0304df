"""Hostile and broken requests against the real app: each gets a specific 4xx and a useful
``{"error": ...}`` that leaks nothing internal, and the service answers a valid request right after.

The app runs with its default limits (32 MiB per request, 5 MiB per image, 25 M pixels, 10000 px
per side, 64 images), so these cases also pin down what a deployed server does.
"""

import importlib.metadata
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import service
from service.rest.app import create_rest_app
from service.settings import Settings
from tests.reliability.payloads import (
    INFER,
    PDF,
    SVG,
    binary_infer,
    bmp_header_claiming,
    compressed_png,
    compressed_zeros,
    flip_bytes,
    gif_frame_claiming,
    gif_seven,
    image_tensor,
    infer_json,
    jpeg_seven,
    lab_tiff,
    png_with_bad_crc,
    png_with_corrupt_pixels,
    random_bytes,
    valid_infer_json,
    valid_png,
)
from tests.service.test_predict import assert_still_serving
from tests.support.images import png_header_claiming
from tests.support.multipart import multipart

# Pillow warns about the broken TIFF metadata these tests send on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
MiB = 1024 * 1024
JSON = {"content-type": "application/json"}
LIBRARIES = ("fastapi", "starlette", "pydantic", "pillow", "onnxruntime", "numpy", "uvicorn")
LEAK_MARKERS = (
    "Traceback",
    'File "',
    ".py",
    "site-packages",
    " object at 0x",
    str(Path(service.__file__).resolve().parents[1]),
    sys.prefix,
    f"Python {platform.python_version()}",
    *(importlib.metadata.version(library) for library in LIBRARIES),
)


@dataclass(frozen=True)
class Refusal:
    """One hostile request and the refusal it must get."""

    id: str
    body: bytes
    headers: dict[str, str]
    status: int
    message: str
    path: str = "/predict"
    params: dict[str, str] = field(default_factory=dict)


def raw(id: str, body: bytes, content_type: str, status: int, message: str) -> Refusal:
    return Refusal(id, body, {"content-type": content_type}, status, message)


def upload(id: str, data: bytes, status: int, message: str, name: str = "digit.png") -> Refusal:
    return Refusal(id, *multipart([("file", name, data)]), status, message)


def form(id: str, built: tuple[bytes, dict[str, str]], status: int, message: str) -> Refusal:
    return Refusal(id, *built, status, message)


def infer(id: str, body: bytes, status: int, message: str, **headers: str) -> Refusal:
    return Refusal(id, body, JSON | headers, status, message, path=INFER)


def files(count: int) -> tuple[bytes, dict[str, str]]:
    return multipart([("files", f"{index}.png", valid_png()) for index in range(count)])


JPEG, GIF = jpeg_seven(), gif_seven()
PART_WITHOUT_NAME = (
    b'--XyZ\r\nContent-Disposition: form-data; filename="a.png"\r\n\r\n' + valid_png() + b"\r\n"
    b"--XyZ--\r\n"
)
NEST_TOO_DEEP = b"[" * 5000 + b"]" * 5000

PREDICT_REFUSALS = [
    raw("empty-raw-body", b"", "image/png", 400, "the image is empty (0 bytes)"),
    raw("empty-multipart-body", b"", "multipart/form-data; boundary=XyZ", 400, "malformed"),
    raw("text-as-raw-png", b"just some text", "image/png", 415, "not an image"),
    upload("text-named-png", b"just some text", 415, "digit.png: not an image"),
    upload("random-bytes-named-png", random_bytes(4096), 415, "digit.png: not an image"),
    upload("empty-file", b"", 400, "digit.png: the image is empty"),
    upload("png-signature-only", valid_png()[:8], 400, "PNG image is corrupt or truncated"),
    upload("truncated-png", valid_png()[:60], 400, "PNG image is corrupt or truncated"),
    upload("png-bad-crc", png_with_bad_crc(), 400, "PNG image is corrupt or truncated"),
    upload("png-corrupt-pixels", png_with_corrupt_pixels(), 400, "PNG image is corrupt"),
    upload("png-zero-width", png_header_claiming(0, 28), 400, "PNG image is corrupt"),
    upload("truncated-jpeg", JPEG[: len(JPEG) // 2], 400, "JPEG image is corrupt or truncated"),
    upload("corrupt-jpeg", flip_bytes(JPEG, 200, 200), 400, "JPEG image is corrupt"),
    upload("jpeg-marker-then-noise", b"\xff\xd8\xff" + random_bytes(512), 400, "JPEG image"),
    upload("truncated-gif", GIF[: len(GIF) // 2], 400, "GIF image is corrupt or truncated"),
    upload("corrupt-gif", flip_bytes(GIF, 40, 60), 400, "GIF image is corrupt or truncated"),
    upload("gif-signature-then-noise", b"GIF89a" + random_bytes(300), 400, "GIF image is"),
    upload("tiff-signature-then-noise", b"II*\x00" + random_bytes(300), 400, "TIFF image is"),
    upload("webp-riff-then-noise", b"RIFF\0\1\0\0WEBP" + random_bytes(300), 400, "WEBP image"),
    upload("png-header-2^31-square", png_header_claiming(2**31, 2**31), 413, "2147483648x"),
    upload("png-header-30000-square", png_header_claiming(30000, 30000), 413, "30000x30000"),
    upload("png-gigapixel-bomb", compressed_png(32768, 32768), 413, "32768x32768 pixels"),
    upload("png-over-pixel-limit", png_header_claiming(10000, 2501), 413, "at most 25000000"),
    upload("png-20000x1-strip", compressed_png(20000, 1), 413, "longest side allowed is 10000"),
    upload("gif-frame-60000-square", gif_frame_claiming(60000, 60000), 413, "60000x60000"),
    upload("bmp-header-60000-square", bmp_header_claiming(60000, 60000), 413, "60000x60000"),
    upload("tiff-in-cielab", lab_tiff(), 415, "colour mode LAB are not supported"),
    upload("svg-named-png", SVG, 415, "not an image"),
    upload("pdf-named-png", PDF, 415, "not an image"),
    raw("svg-as-image-svg", SVG, "image/svg+xml", 415, "not an image"),
    raw("pdf-as-application-pdf", PDF, "application/pdf", 415, "'application/pdf' is not accepted"),
    upload("12-MB-upload", b"\x89PNG" + bytes(12 * MiB), 413, "at most 5242880 are allowed"),
    raw("33-MiB-body", bytes(33 * MiB), "image/png", 413, "at most 33554432 bytes"),
    form("65-files", files(65), 413, "65 images sent; at most 64"),
    form("no-file-field", multipart([("note", None, b"hello")]), 400, "no image in the form"),
    form("wrong-field", multipart([("image", "a.png", valid_png())]), 400, "received 'image'"),
    form("file-as-text", multipart([("file", None, b"not a file")]), 400, "must be a file"),
    form(
        "one-bad-among-good",
        multipart([("files", "good.png", valid_png()), ("files", "x.png", b"text")]),
        415,
        "x.png: not an image",
    ),
    raw("no-boundary", b"abc", "multipart/form-data", 400, "needs a boundary"),
    form("cut-before-closing", (files(1)[0][:-10], files(1)[1]), 400, "closing boundary"),
    form(
        "other-boundary",
        (multipart([("file", "a.png", valid_png())], "AAA")[0], files(1)[1]),
        400,
        "malformed multipart",
    ),
    form("part-without-name", (PART_WITHOUT_NAME, files(1)[1]), 400, "no Content-Disposition"),
    form("header-too-long", multipart([("file", "a" * 9000, b"x")]), 400, "malformed multipart"),
    raw("text-content-type", b"hello", "text/plain", 415, "'text/plain' is not accepted"),
    raw("json-content-type", b'{"a": 1}', "application/json", 415, "'application/json'"),
    raw("url-encoded-form", b"file=1", "application/x-www-form-urlencoded", 415, "not accepted"),
    Refusal("no-content-type", b"hello", {}, 415, "the request has no Content-Type header"),
    Refusal(
        "bad-invert",
        valid_png(),
        {"content-type": "image/png"},
        400,
        "invert",
        params={"invert": "sometimes"},
    ),
]

V2_REFUSALS = [
    infer("v2-empty-body", b"", 400, "empty"),
    infer("v2-bad-json", b'{"inputs": [', 400, "not valid JSON"),
    infer("v2-json-nested-too-deep", NEST_TOO_DEEP, 400, "not valid JSON"),
    infer("v2-json-array", b"[1, 2, 3]", 400, "JSON object"),
    infer("v2-missing-inputs", b'{"id": "1"}', 400, "inputs"),
    infer("v2-empty-inputs", b'{"inputs": []}', 400, "inputs"),
    infer("v2-input-without-shape", b'{"inputs": [{"name": "image"}]}', 400, "shape"),
    infer(
        "v2-unknown-input-name",
        infer_json(image_tensor([1, 28, 28], [0] * 784, name="pixels")),
        400,
        "unknown input 'pixels'",
    ),
    infer(
        "v2-wrong-datatype",
        infer_json(image_tensor([1, 28, 28], [0.5] * 784, datatype="FP32")),
        400,
        "datatype 'FP32'",
    ),
    infer(
        "v2-data-shorter-than-shape",
        infer_json(image_tensor([1, 28, 28], [0] * 10)),
        400,
        "has 10 values but shape [1, 28, 28] needs 784",
    ),
    infer(
        "v2-data-longer-than-shape",
        infer_json(image_tensor([1, 28, 28], [0] * 785)),
        400,
        "785 values",
    ),
    infer("v2-negative-batch", infer_json(image_tensor([-2, 28, 28], [0] * 784)), 400, "least 1"),
    infer("v2-zero-batch", infer_json(image_tensor([0, 28, 28], [])), 400, "at least 1"),
    infer("v2-negative-side", infer_json(image_tensor([1, -28, 28], [0])), 400, "takes [N, 28"),
    infer("v2-wrong-rank", infer_json(image_tensor([784], [0] * 784)), 400, "takes [N, 28, 28]"),
    infer(
        "v2-enormous-batch",
        infer_json(image_tensor([2**40, 28, 28], [0] * 784)),
        413,
        "at most 16384",
    ),
    infer(
        "v2-enormous-side", infer_json(image_tensor([1, 2**40, 28], [0])), 400, "takes [N, 28, 28]"
    ),
    infer("v2-value-256", infer_json(image_tensor([1, 28, 28], [256] * 784)), 400, "0 to 255"),
    infer("v2-value-negative", infer_json(image_tensor([1, 28, 28], [-1] * 784)), 400, "0 to 255"),
    infer(
        "v2-value-float",
        infer_json(image_tensor([1, 28, 28], [1.5] * 784)),
        400,
        "must be integers",
    ),
    infer(
        "v2-value-string",
        infer_json(image_tensor([1, 28, 28], ["7"] * 784)),
        400,
        "must be integers",
    ),
    infer(
        "v2-nested-too-shallow",
        infer_json(image_tensor([1, 28, 28], [[0] * 28] * 28)),
        400,
        "nested data must follow shape",
    ),
    infer(
        "v2-nested-too-deep",
        infer_json(image_tensor([1, 28, 28], [[[[0]] * 28] * 28])),
        400,
        "nested",
    ),
    infer("v2-data-not-a-list", infer_json(image_tensor([1, 28, 28], "0" * 784)), 400, "list"),
    infer(
        "v2-unknown-output",
        infer_json(image_tensor([1, 28, 28], [0] * 784), outputs=[{"name": "logits"}]),
        400,
        "unknown output 'logits'",
    ),
    infer(
        "v2-binary-header-beyond-body",
        binary_infer(784, bytes(784))[0],
        400,
        "is 99999 but the body has only",
        **{"inference-header-content-length": "99999"},
    ),
    Refusal(
        "v2-binary-data-beyond-body",
        *binary_infer(784, bytes(10)),
        400,
        "binary_data_size 784",
        path=INFER,
    ),
    Refusal(
        "v2-binary-size-mismatch",
        *binary_infer(10, bytes(10)),
        400,
        "needs 784 bytes",
        path=INFER,
    ),
    infer(
        "v2-header-length-not-a-number",
        valid_infer_json(),
        400,
        "must be the JSON header's",
        **{"inference-header-content-length": "ten"},
    ),
    infer(
        "v2-gzip-bomb",
        compressed_zeros(40 * MiB, 31),
        413,
        "inflates beyond 33554432 bytes",
        **{"content-encoding": "gzip"},
    ),
    infer(
        "v2-broken-gzip",
        b"\x1f\x8b" + random_bytes(64),
        400,
        "not valid gzip",
        **{"content-encoding": "gzip"},
    ),
    infer(
        "v2-unknown-encoding",
        valid_infer_json(),
        415,
        "'br' is not supported",
        **{"content-encoding": "br"},
    ),
    Refusal(
        "v2-unknown-model",
        valid_infer_json(),
        JSON,
        404,
        "unknown model 'lenet'",
        path="/v2/models/lenet/infer",
    ),
    Refusal(
        "v2-unknown-version",
        valid_infer_json(),
        JSON,
        404,
        "has no version '99'",
        path="/v2/models/mnist_mlp/versions/99/infer",
    ),
]
REFUSALS = PREDICT_REFUSALS + V2_REFUSALS


@pytest.fixture(scope="module")
def client(model_path: Path) -> Iterator[TestClient]:
    """One app with the default limits for the whole table: later cases see what earlier did."""
    with TestClient(create_rest_app(Settings(model_path=model_path, access_log=False))) as client:
        yield client


def assert_no_internals(text: str) -> None:
    """No stack trace, source path, object address or library version reaches a client."""
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{marker!r} leaked in {text!r}"


def assert_v2_still_serving(client: TestClient) -> None:
    response = client.post(INFER, content=valid_infer_json(), headers=JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", REFUSALS, ids=[case.id for case in REFUSALS])
def test_a_hostile_request_gets_its_4xx_and_the_service_keeps_serving(
    client: TestClient, case: Refusal
) -> None:
    response = client.post(case.path, content=case.body, headers=case.headers, params=case.params)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert case.message in error
    assert_no_internals(response.text)
    assert_still_serving(client)
    if case.path != "/predict":
        assert_v2_still_serving(client)


def test_the_table_has_no_two_cases_with_the_same_id() -> None:
    ids = [case.id for case in REFUSALS]
    assert len(ids) == len(set(ids))


def test_type_is_decided_by_the_bytes_not_the_name_or_declared_type(client: TestClient) -> None:
    disguised = client.post("/predict", files={"file": ("notes.txt", valid_png(), "text/plain")})
    assert disguised.status_code == 200, disguised.text
    assert disguised.json()["predictions"][0]["filename"] == "notes.txt"
    mislabelled = client.post(
        "/predict", content=valid_png(), headers={"content-type": "image/gif"}
    )
    assert mislabelled.status_code == 200, mislabelled.text


def test_a_text_file_dressed_as_png_is_refused(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("x.png", b"hello world", "image/png")})
    assert response.status_code == 415
    assert "x.png: not an image" in response.json()["error"]


def test_an_unknown_route_gets_a_json_404_that_leaks_nothing(client: TestClient) -> None:
    response = client.get("/../../etc/passwd")
    assert response.status_code == 404
    assert response.json()["error"].startswith("no route")
    assert_no_internals(response.text)


def test_a_wrong_method_gets_a_405_that_says_which_are_allowed(client: TestClient) -> None:
    response = client.delete("/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "DELETE is not allowed" in response.json()["error"]
    assert_no_internals(response.text)
