"""The drawing page in a real browser: Debian's chromium, driven by Playwright, on a live server.

The live server answers with the shipped model when it is built, else with the tiny test model;
the exact digit is asserted only with the shipped model (the tiny one answers arbitrary digits),
but either way the page must show exactly what the service answered.
"""

import base64
import io
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import APIResponse, Browser, Page, Response, Route, expect, sync_playwright

from service.rest.app import create_rest_app
from service.settings import DEFAULT_MODEL_PATH, Settings
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ChromiumUnavailable,
    Stroke,
    draw,
    ensure_chromium,
)
from tests.support.live_server import live_server
from tests.support.models import write_model

pytestmark = pytest.mark.slow

# MNIST_SCREENSHOT=1 writes the README's screenshot; see save_screenshot for why it is opt-in.
SCREENSHOT_ENV = "MNIST_SCREENSHOT"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
VIEWPORT = {"width": 1000, "height": 680}
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15 in CSS pixels
CSP = "Content Security Policy"
NO_DIGIT = "\N{EN DASH}"  # what the page shows while it has no answer


def arc(centre: tuple[float, float], radius: float, start: float, end: float) -> Stroke:
    """Points along a circular arc (degrees, clockwise on screen): curves the way people draw."""
    steps = max(2, round(abs(end - start) / 15))
    angles = (math.radians(start + (end - start) * step / steps) for step in range(steps + 1))
    return [(centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a)) for a in angles]


# One stroke per digit, as fractions of the pad's width and height.
STROKES: dict[int, Stroke] = {
    1: [(0.52, 0.14), (0.48, 0.86)],
    7: [(0.26, 0.2), (0.74, 0.2), (0.6, 0.45), (0.44, 0.86)],
    2: [*arc((0.5, 0.34), 0.19, 200, 380), (0.3, 0.82), (0.74, 0.82)],
}
FILE_DIGIT = 7


@dataclass(frozen=True)
class LiveService:
    url: str
    shipped: bool  # the shipped model answers, so the digits are known


@pytest.fixture(scope="session")
def chromium(pytestconfig: pytest.Config) -> Path:
    """Debian's chromium, installed with apt-get the first time (as root) and reused after."""
    try:
        seconds = ensure_chromium()
    except ChromiumUnavailable as error:
        pytest.skip(f"no browser for the page tests: {error}")
    if seconds is not None:
        capture = pytestconfig.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\ninstalled Debian's chromium with apt-get in {seconds:.1f} s")
    return CHROMIUM


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The real app on 127.0.0.1, on the shipped model when it is built."""
    shipped = DEFAULT_MODEL_PATH.exists()
    model = DEFAULT_MODEL_PATH if shipped else write_model(tmp_path_factory.mktemp("tiny"))
    with live_server(create_rest_app(Settings(model_path=model, access_log=False))) as url:
        yield LiveService(url, shipped)


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, service: LiveService) -> Iterator[Page]:
    """The page, freshly loaded; the test fails on a script error or a request off the machine."""
    with open_page(browser, service, viewport=VIEWPORT) as page:
        yield page


@contextmanager
def open_page(browser: Browser, service: LiveService, **context_options: object) -> Iterator[Page]:
    """The page in a new browser context with ``context_options`` (viewport, touch, ...)."""
    context = browser.new_context(reduced_motion="reduce", **context_options)
    escaped: list[str] = []
    script_errors: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            escaped.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    # Chromium reports each thing the Content-Security-Policy refused on the console.
    refused = []
    page.on("console", lambda message: refused.append(message.text) if CSP in message.text else 0)
    page.goto(service.url)
    yield page
    context.close()
    assert not script_errors, f"the page's script failed: {script_errors}"
    assert not escaped, f"the page tried to leave the machine: {escaped}"
    assert not refused, f"the Content-Security-Policy refused: {refused}"


def answer_to(page: Page, action: Callable[[], object]) -> Response:
    """Do ``action`` and return the service's answer to the /predict request it causes."""
    with page.expect_response(lambda response: urlsplit(response.url).path == "/predict") as info:
        action()
    return info.value


def read_bars(page: Page) -> list[dict]:
    """Each bar's label, value text, whether it is highlighted, and its filled fraction."""
    return page.locator("#bars li").evaluate_all(
        """(items) => items.map((item) => ({
            label: item.querySelector(".label").textContent,
            value: item.querySelector(".value").textContent,
            top: item.classList.contains("top"),
            fraction: item.querySelector(".fill").getBoundingClientRect().width
                / item.querySelector(".track").getBoundingClientRect().width,
        }))"""
    )


def assert_page_shows(page: Page, response: Response, expected_digit: int | None) -> None:
    """The page shows the service's answer; with the shipped model it is ``expected_digit``."""
    assert response.ok, response.text()
    prediction = response.json()["predictions"][0]
    expect(page.locator("#digit")).to_have_text(str(prediction["digit"]))
    confidence = page.locator("#confidence").text_content() or ""
    assert float(confidence.removesuffix("% confident")) == pytest.approx(
        prediction["confidence"] * 100, abs=0.051
    )
    bars = read_bars(page)
    assert [bar["label"] for bar in bars] == [str(digit) for digit in range(10)]
    assert [bar["top"] for bar in bars] == [d == prediction["digit"] for d in range(10)]
    for bar, probability in zip(bars, prediction["probabilities"], strict=True):
        assert float(bar["value"].removesuffix("%")) == pytest.approx(probability * 100, abs=0.051)
        assert bar["fraction"] == pytest.approx(probability, abs=0.01)
    expect(page.locator("#error")).to_be_hidden()
    if expected_digit is not None:
        assert prediction["digit"] == expected_digit, prediction


def digit_png(digit: int, size: int = 200) -> bytes:
    """A digit in dark ink on light paper, like a photo: the service must invert and centre it."""
    image = Image.new("L", (size, size), 235)
    pen = ImageDraw.Draw(image)
    points = [(x * size, y * size) for x, y in STROKES[digit]]
    pen.line(points, fill=20, width=size // 14, joint="curve")
    for x, y in (points[0], points[-1]):
        radius = size // 28
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=20)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def choose_file(page: Page, name: str, data: bytes, mime_type: str) -> None:
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime_type, "buffer": data}])


def drop_file(page: Page, name: str, data: bytes, mime_type: str) -> None:
    """Drop a file on the pad the way a file manager does: a drop event carrying a DataTransfer."""
    transfer = page.evaluate_handle(
        """([name, type, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            return transfer;
        }""",
        [name, mime_type, base64.b64encode(data).decode()],
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def save_screenshot(page: Page, service: LiveService, tmp_path: Path) -> None:
    """Always take the screenshot, so taking it keeps working; write the README's copy on request.

    Chromium's PNG differs a little from run to run, so writing docs/screenshot.png on every run
    would leave every checkout dirty; and only the shipped model's answer belongs in the README.
    """
    picture = page.screenshot(path=tmp_path / "page.png", full_page=True)
    if os.environ.get(SCREENSHOT_ENV, "0") in ("", "0"):
        return
    if not service.shipped:
        pytest.fail(f"{SCREENSHOT_ENV} is set but {DEFAULT_MODEL_PATH} is missing: build it first")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(picture)


def expected(service: LiveService, digit: int) -> int | None:
    return digit if service.shipped else None


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_a_drawing_is_read_when_predict_is_clicked(
    page: Page, service: LiveService, digit: int
) -> None:
    page.uncheck("#auto")
    draw(page, STROKES[digit])
    expect(page.locator("#digit")).to_have_text(NO_DIGIT)
    response = answer_to(page, lambda: page.click("#predict"))
    assert parse_qs(urlsplit(response.url).query) == {"invert": ["false"]}
    assert b'filename="drawing.png"' in (response.request.post_data_buffer or b"")
    assert_page_shows(page, response, expected(service, digit))
    expect(page.locator("#source")).to_have_text("from your drawing")


def test_lifting_the_pen_predicts(page: Page, service: LiveService, tmp_path: Path) -> None:
    response = answer_to(page, lambda: draw(page, STROKES[2]))
    assert_page_shows(page, response, expected(service, 2))
    save_screenshot(page, service, tmp_path)


@pytest.mark.parametrize("deliver", [choose_file, drop_file], ids=["file-input", "drop"])
def test_an_image_file_is_read(
    page: Page, service: LiveService, deliver: Callable[[Page, str, bytes, str], None]
) -> None:
    picture = digit_png(FILE_DIGIT)
    response = answer_to(page, lambda: deliver(page, "seven.png", picture, "image/png"))
    assert parse_qs(urlsplit(response.url).query) == {"invert": ["auto"]}
    assert_page_shows(page, response, expected(service, FILE_DIGIT))
    expect(page.locator("#source")).to_have_text("from seven.png")


def test_the_services_error_is_shown_and_cleared(page: Page) -> None:
    text = b"not a picture"
    response = answer_to(page, lambda: choose_file(page, "notes.txt", text, "text/plain"))
    assert response.status == 415
    expect(page.locator("#error")).to_have_text(response.json()["error"])
    expect(page.locator("#digit")).to_have_text(NO_DIGIT)
    expect(page.locator("#bars .top")).to_have_count(0)
    response = answer_to(page, lambda: draw(page, STROKES[1]))
    assert_page_shows(page, response, None)


def test_the_api_docs_render_offline_with_every_route(page: Page, service: LiveService) -> None:
    """Under its same-origin CSP (checked by ``open_page``): Swagger UI starts, shows the routes."""
    response = page.goto(f"{service.url}/docs")
    assert response is not None
    assert_security_headers(response, inline_scripts=1)
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible(timeout=15_000)
    paths = set(operations.all_inner_texts())
    assert {"/predict", "/metrics", "/v2/health/ready"} <= {path.strip() for path in paths}
    expect(page.locator(".models, .opblock-tag-section").first).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/predict").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()


def assert_security_headers(response: Response | APIResponse, inline_scripts: int = 0) -> None:
    headers = response.headers
    policy = headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; script-src 'self'")
    assert policy.count("'sha256-") == inline_scripts
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_page_and_its_files_come_with_the_security_headers(
    page: Page, service: LiveService
) -> None:
    for path in ("/", "/static/page.js", "/static/page.css"):
        response = page.request.get(f"{service.url}{path}")
        assert response.ok
        assert_security_headers(response)


def test_on_a_phone_the_prediction_is_in_view_after_drawing(
    browser: Browser, service: LiveService
) -> None:
    phone = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}
    with open_page(browser, service, **phone) as page:
        response = answer_to(page, lambda: draw(page, STROKES[7]))
        assert_page_shows(page, response, expected(service, 7))
        assert page.evaluate("window.scrollY") == 0
        for selector in ("#pad", "#digit", "#confidence"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["y"] >= 0, selector
            assert box["y"] + box["height"] <= PHONE["height"], f"{selector} is below the fold"
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector


def test_on_a_desktop_the_footer_is_centred(browser: Browser, service: LiveService) -> None:
    with open_page(browser, service, viewport={"width": 1280, "height": 800}) as page:
        centre = page.evaluate("document.documentElement.clientWidth") / 2
        for selector in (".masthead", ".layout", ".footer"):
            box = page.locator(selector).bounding_box()
            assert box is not None
            assert box["x"] + box["width"] / 2 == pytest.approx(centre, abs=1), selector


API_KEY = "page-test-key"


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A live server with MNIST_API_KEYS set: /predict answers 401 without the key."""
    model = write_model(tmp_path_factory.mktemp("keyed"))
    settings = Settings(model_path=model, access_log=False, api_keys=[API_KEY])
    with live_server(create_rest_app(settings)) as url:
        yield LiveService(url, shipped=False)


def test_the_page_asks_for_the_api_key_and_sends_it_as_a_bearer_token(
    browser: Browser, keyed_service: LiveService
) -> None:
    with open_page(browser, keyed_service, viewport=VIEWPORT) as page:
        expect(page.locator("#key-form")).to_be_hidden()
        refused = answer_to(page, lambda: draw(page, STROKES[1]))
        assert refused.status == 401
        expect(page.locator("#error")).to_have_text(refused.json()["error"])
        expect(page.locator("#key-form")).to_be_visible()
        page.fill("#key", API_KEY)
        response = answer_to(page, lambda: page.click("#key-form button"))
        assert response.request.headers["authorization"] == f"Bearer {API_KEY}"
        assert_page_shows(page, response, None)
        expect(page.locator("#key-form")).to_be_hidden()
        again = answer_to(page, lambda: draw(page, STROKES[7]))  # the key is kept
        assert again.ok and again.request.headers["authorization"] == f"Bearer {API_KEY}"


def test_an_empty_pad_is_not_sent(page: Page) -> None:
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if "/predict" in request.url else 0)

    page.click("#predict")

    expect(page.locator("#error")).to_have_text(
        "Draw a digit on the pad first, or choose an image."
    )
    expect(page.locator("#digit")).to_have_text(NO_DIGIT)
    page.click("#clear")
    page.click("#predict")
    expect(page.locator("#error")).to_be_visible()
    assert sent == []


def shape_png(size: int = 200) -> bytes:
    """A filled square and a ring of dots, dark on light: geometry, not a digit."""
    image = Image.new("L", (size, size), 235)
    pen = ImageDraw.Draw(image)
    pen.rectangle((size * 0.3, size * 0.3, size * 0.7, size * 0.7), fill=20)
    for step in range(8):
        x = size / 2 + size * 0.4 * math.cos(step * math.pi / 4)
        y = size / 2 + size * 0.4 * math.sin(step * math.pi / 4)
        pen.ellipse((x - 6, y - 6, x + 6, y + 6), fill=20)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_non_digit_is_called_one_with_the_best_guess_smaller(
    page: Page, service: LiveService
) -> None:
    """With the shipped model the shape is rejected; a blank image is rejected by any model."""
    buffer = io.BytesIO()
    Image.new("L", (120, 120), 255).save(buffer, format="PNG")
    response = answer_to(
        page, lambda: choose_file(page, "blank.png", buffer.getvalue(), "image/png")
    )
    assert_not_a_digit_shown(page, response)
    if service.shipped:
        response = answer_to(page, lambda: choose_file(page, "shape.png", shape_png(), "image/png"))
        assert_not_a_digit_shown(page, response)
    response = answer_to(page, lambda: draw(page, STROKES[7]))
    if response.json()["predictions"][0]["is_digit"]:
        assert_page_shows(page, response, expected(service, 7))
        expect(page.locator("#guess")).to_be_hidden()
        expect(page.locator("#result")).not_to_have_class("not-digit")


def assert_not_a_digit_shown(page: Page, response: Response) -> None:
    assert response.ok, response.text()
    prediction = response.json()["predictions"][0]
    assert prediction["is_digit"] is False, prediction
    expect(page.locator("#confidence")).to_have_text("This does not look like a digit")
    expect(page.locator("#guess")).to_be_visible()
    expect(page.locator("#guess")).to_contain_text(f"Best guess: {prediction['digit']}")
    expect(page.locator("#guess")).to_contain_text(prediction["not_digit_reason"])
    expect(page.locator("#digit")).to_have_text(str(prediction["digit"]))
    guess_size = page.locator("#digit").evaluate("(node) => getComputedStyle(node).fontSize")
    assert float(guess_size.removesuffix("px")) < 40  # smaller than a digit's 3.6rem
