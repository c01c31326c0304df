"""What the browser tests need: Debian's chromium, installed on demand, and a pen on the page."""

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

# A stroke: points in fractions of the drawing pad's width and height.
Stroke = list[tuple[float, float]]

CHROMIUM = Path("/usr/bin/chromium")
# Headless and quiet: nothing here may reach beyond the machine, so no background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
APT_INSTALL = ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=600", "chromium"]


class ChromiumUnavailable(Exception):
    """Chromium is missing and this process cannot install it; the message says why."""


def ensure_chromium() -> float | None:
    """Install Debian's chromium unless it is there; returns the seconds spent installing, if any.

    Playwright's own browser download needs the internet, so the tests drive the distribution's
    chromium instead, installed with apt-get from the mirror the machine already uses.
    """
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable(f"{CHROMIUM} is missing and there is no apt-get to install it")
    if os.geteuid() != 0:
        command = " ".join(APT_INSTALL)
        raise ChromiumUnavailable(f"{CHROMIUM} is missing; install it as root: {command}")
    started = time.monotonic()
    if _apt(APT_INSTALL).returncode != 0:
        _apt(["apt-get", "update"])  # the package lists may be missing or stale
        result = _apt(APT_INSTALL)
        if result.returncode != 0:
            reason = result.stderr[-2000:]
            raise ChromiumUnavailable(f"apt-get could not install chromium:\n{reason}")
    if not CHROMIUM.exists():
        raise ChromiumUnavailable(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return time.monotonic() - started


def _apt(command: list[str]) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, capture_output=True, text=True, env=environment, check=False)


def draw(page: "Page", stroke: Stroke) -> None:
    """Draw one stroke on the pad with the mouse: down, move through the points, up."""
    box = page.locator("#pad").bounding_box()
    if box is None:
        raise ValueError("the page has no visible drawing pad (#pad)")
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=8)
    page.mouse.up()
