"""Triton's perf_analyzer for tests: found, or fetched and made runnable, or a reason why not.

perf_analyzer's PyPI wheel (``perf-analyzer``) is built for glibc >= 2.38. Where the system's is
older (Debian 12 has 2.36), the binary runs through the loader, glibc and libstdc++ of Debian 13
("trixie"), unpacked into a cache folder: nothing is installed on the system. Every step is
bounded in time; any failure becomes the reason a test skips.
"""

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PERF_ANALYZER_VERSION = "2.60.0"
DEBIAN_SOURCE = "deb http://deb.debian.org/debian trixie main"
DEBIAN_PACKAGES = ("libc6", "libgcc-s1", "libstdc++6")
STEP_SECONDS = 180
# Where a fetched perf_analyzer is kept between runs (PERF_ANALYZER_CACHE overrides it).
CACHE = Path(os.environ.get("PERF_ANALYZER_CACHE", Path(tempfile.gettempdir()) / "perf-analyzer"))


class Unavailable(Exception):
    """perf_analyzer cannot run here; the message says why."""


def _run(arguments: list[str], cwd: Path | None = None) -> None:
    try:
        subprocess.run(arguments, cwd=cwd, check=True, capture_output=True, timeout=STEP_SECONDS)
    except FileNotFoundError:
        raise Unavailable(f"{arguments[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{arguments[0]} took over {STEP_SECONDS} s") from None
    except subprocess.CalledProcessError as error:
        last = (error.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        raise Unavailable(f"{' '.join(arguments[:3])} failed: {' '.join(last)}") from None


def _wheel_binary() -> Path:
    """perf_analyzer's binary out of its wheel (downloaded, not installed)."""
    wheels = CACHE / "wheel"
    _run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--platform", "manylinux_2_38_x86_64", "--python-version", "3.11",
         f"perf-analyzer=={PERF_ANALYZER_VERSION}", "-d", str(wheels)]
    )  # fmt: skip
    (wheel,) = wheels.glob("perf_analyzer-*.whl")
    shutil.unpack_archive(wheel, wheels / "unpacked", format="zip")
    binary = next(path for path in (wheels / "unpacked").rglob("perf_analyzer") if path.is_file())
    binary.chmod(0o755)
    return binary


def _debian_libraries() -> Path:
    """Debian trixie's loader and C/C++ runtimes, unpacked: apt-get with its own state only."""
    apt = CACHE / "apt"
    for folder in ("etc", "lists/partial", "cache/archives/partial"):
        (apt / folder).mkdir(parents=True, exist_ok=True)
    (apt / "etc/status").touch()
    (apt / "etc/sources.list").write_text(DEBIAN_SOURCE + "\n")
    options = [
        f"-oDir::Etc::SourceList={apt}/etc/sources.list",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt}/lists",
        f"-oDir::State::Status={apt}/etc/status",
        f"-oDir::Cache={apt}/cache",
        "-oAPT::Get::List-Cleanup=0",
        "-oDebug::NoLocking=1",
    ]
    if os.geteuid() == 0:
        options.append("-oAPT::Sandbox::User=root")
    _run(["apt-get", *options, "update", "-qq"])
    _run(["apt-get", *options, "download", "-qq", *DEBIAN_PACKAGES], cwd=apt / "cache")
    root = CACHE / "root"
    for package in (apt / "cache").glob("*.deb"):
        _run(["dpkg-deb", "-x", str(package), str(root)])
    return root / "usr/lib/x86_64-linux-gnu"


def perf_analyzer() -> list[str]:
    """The command that runs perf_analyzer: ``PERF_ANALYZER`` if set, one on the PATH, or one
    fetched into ``CACHE``. ``Unavailable`` says why there is none."""
    named = os.environ.get("PERF_ANALYZER") or shutil.which("perf_analyzer")
    if named:
        return [named]
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise Unavailable("perf_analyzer's wheel is built for x86_64 Linux only")
    CACHE.mkdir(parents=True, exist_ok=True)
    launcher = CACHE / "perf_analyzer"
    if not launcher.exists():
        binary = _wheel_binary()
        libraries = _debian_libraries()
        search = f"{libraries}:/lib/x86_64-linux-gnu"
        loader = libraries / "ld-linux-x86-64.so.2"
        launcher.write_text(f'#!/bin/sh\nexec {loader} --library-path {search} {binary} "$@"\n')
        launcher.chmod(0o755)
    return [str(launcher)]
