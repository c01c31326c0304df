"""Take the README's screenshot (docs/screenshot.png) from the live page: python docs/screenshot.py

Starts the service as a user does (``python -m service``, the shipped model repository) on a
free loopback port, opens its page in headless chromium (Debian's, driven by Playwright), draws
a 7 with the mouse, waits for the service's answer on the page and saves the window. Needs the
dev extra and /usr/bin/chromium (``apt-get install chromium``).
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from playwright.sync_api import sync_playwright

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, draw  # noqa: E402

OUTPUT = PROJECT_ROOT / "docs" / "screenshot.png"
VIEWPORT = {"width": 1000, "height": 680}
# A 7 as a person draws it, in fractions of the drawing pad: the bar, then the stem.
SEVEN = [(0.28, 0.22), (0.72, 0.2), (0.58, 0.46), (0.46, 0.84)]
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(port: int) -> subprocess.Popen:
    environment = os.environ | {
        "MNIST_HOST": "127.0.0.1",
        "MNIST_PORT": str(port),
        "MNIST_GRPC_ENABLED": "false",
        "MNIST_ACCESS_LOG": "false",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    server = subprocess.Popen([sys.executable, "-m", "service"], cwd=PROJECT_ROOT, env=environment)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited with {server.returncode}")
        try:
            with urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (URLError, OSError):
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"the service was not ready after {READY_TIMEOUT:.0f} s")


def take(url: str, output: Path) -> str:
    """Draw, wait for the answer, save the page; returns the digit the page shows."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT, reduced_motion="reduce")
        page.goto(url)
        with page.expect_response(lambda response: response.url.split("?")[0].endswith("/predict")):
            draw(page, SEVEN)
        page.wait_for_function("document.querySelector('#digit').textContent.trim() !== '\u2013'")
        digit = page.locator("#digit").text_content().strip()
        page.screenshot(path=output, full_page=True)
        browser.close()
    return digit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    arguments = parser.parse_args(argv)
    port = arguments.port or free_port()
    server = start_service(port)
    try:
        digit = take(f"http://127.0.0.1:{port}/", arguments.output)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{arguments.output}: the page reads the drawing as {digit}")
    return 0 if digit == "7" else 1


if __name__ == "__main__":
    sys.exit(main())
