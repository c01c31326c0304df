"""Host-side helpers for smoke.sh, standard library only (the host needs no project deps).

python3 smoke_helper.py debian-mirror SUITE        the apt mirror this machine uses for SUITE
python3 smoke_helper.py pip-conf                   a pip.conf for the locally made base image
python3 smoke_helper.py free-port                  a free TCP port on 127.0.0.1
python3 smoke_helper.py digit-png MNIST_DIR INDEX OUT.png    prints the digit's label
python3 smoke_helper.py digit-hex MNIST_DIR INDEX          prints LABEL:PIXELS-IN-HEX
python3 smoke_helper.py probe URL                  exit 0 when URL answers 200
python3 smoke_helper.py predict URL PNG LABEL      POST the PNG to /predict, check the answer
python3 smoke_helper.py image-size README BYTES    check the size the README states (exit 1: stale)
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

SOURCES_DIR = Path("/etc/apt/sources.list.d")
SOURCES_LIST = Path("/etc/apt/sources.list")
# The base image's own CA bundle, which smoke.sh fills with the host's extra CAs.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# pip settings that mean the same inside the image as on the host.
PORTABLE_PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout")


def debian_mirror(suite: str) -> str:
    """The first `deb` URI apt uses for SUITE, from deb822 .sources or one-line .list files."""
    for path in sorted(SOURCES_DIR.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {key: value.split() for key, value in _deb822_fields(stanza).items()}
            if "deb" in fields.get("types", []) and suite in fields.get("suites", []):
                return fields["uris"][0]
    for path in [SOURCES_LIST, *sorted(SOURCES_DIR.glob("*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = _drop_options(line.split("#", 1)[0].split())
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    raise SystemExit(f"no apt source for {suite} in {SOURCES_LIST} or {SOURCES_DIR}")


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line.startswith("#"):
            continue
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _drop_options(words: list[str]) -> list[str]:
    """`deb [arch=amd64 signed-by=...] URI suite ...` -> `deb URI suite ...`."""
    if len(words) > 1 and words[1].startswith("["):
        end = next((i for i, w in enumerate(words) if w.endswith("]")), len(words) - 1)
        return [words[0], *words[end + 1 :]]
    return words


def pip_conf() -> str:
    """The host's pip index settings that work inside a container, trusting the image's CAs.

    Local paths and file:// indexes (wheel caches on this machine) are left out: the build
    cannot see them.
    """
    settings = {"cert": IMAGE_CA_BUNDLE}
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        listing = ""
    for line in listing.splitlines():
        name, _, value = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        value = value.strip().strip("'\"")
        if key in PORTABLE_PIP_KEYS:
            portable = [v for v in value.split() if not v.startswith(("file:", "/"))]
            if portable:
                settings[key] = " ".join(portable)
    return "[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mnist_test_digit(mnist_dir: Path, index: int) -> tuple[bytes, int]:
    """Pixels (28x28, uint8) and label of test image INDEX from the IDX files, gzipped or not."""
    images = _read_idx(mnist_dir, "t10k-images-idx3-ubyte", 2051)
    labels = _read_idx(mnist_dir, "t10k-labels-idx1-ubyte", 2049)
    count, rows, cols = struct.unpack(">III", images[4:16])
    if (rows, cols) != (28, 28) or not 0 <= index < count:
        raise SystemExit(f"{mnist_dir}: no 28x28 test image {index}")
    start = 16 + index * 28 * 28
    return images[start : start + 28 * 28], labels[8 + index]


def _read_idx(mnist_dir: Path, name: str, magic: int) -> bytes:
    for path in (mnist_dir / name, mnist_dir / f"{name}.gz"):
        if path.is_file():
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            if struct.unpack(">I", data[:4])[0] != magic:
                raise SystemExit(f"{path}: not an IDX file (magic number {magic} expected)")
            return data
    raise SystemExit(f"{mnist_dir}: no {name} (set MNIST_DIR to the MNIST files)")


def grayscale_png(pixels: bytes, width: int, height: int) -> bytes:
    """A lossless 8-bit grayscale PNG, so the service sees exactly the MNIST pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)

    rows = b"".join(b"\0" + pixels[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def predict(url: str, png: Path, label: int) -> str:
    """POST PNG as the multipart field `file`; fail unless the service answers LABEL."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{png.name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"POST {url}: HTTP {error.code}: {error.read()[:500]!r}") from None
    prediction = answer["predictions"][0]
    probabilities = prediction["probabilities"]
    problems = []
    if prediction["digit"] != label:
        problems.append(f"digit {prediction['digit']}, expected {label}")
    if len(probabilities) != 10 or abs(sum(probabilities) - 1) > 1e-3:
        problems.append(f"probabilities are not a distribution over 10 digits: {probabilities}")
    if prediction.get("filename") != png.name:
        problems.append(f"filename {prediction.get('filename')!r}, expected {png.name!r}")
    if problems:
        raise SystemExit(f"{png.name}: " + "; ".join(problems) + f"\nanswer: {answer}")
    return f"{png.name}: digit {prediction['digit']}, confidence {prediction['confidence']:.4f}"


# The README rounds the size it states; a build that drifts further than this makes it stale.
IMAGE_SIZE_TOLERANCE = 0.1


def check_image_size(readme: Path, size_bytes: int) -> str:
    """Compare the measured image size with the "NNN MB" the README's Docker section states."""
    stated = re.search(r"The image \((\d+) MB", readme.read_text(encoding="utf-8"))
    if stated is None:
        raise SystemExit(f"{readme} states no image size ('The image (NNN MB')")
    measured_mb = size_bytes / 1e6
    if abs(measured_mb - int(stated[1])) > IMAGE_SIZE_TOLERANCE * int(stated[1]):
        raise SystemExit(f"the README states {stated[1]} MB, the image is {measured_mb:.0f} MB")
    return f"the README's {stated[1]} MB holds (measured {measured_mb:.0f} MB)"


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "debian-mirror":
        print(debian_mirror(args[0]))
    elif command == "pip-conf":
        print(pip_conf(), end="")
    elif command == "free-port":
        print(free_port())
    elif command == "digit-png":
        pixels, label = mnist_test_digit(Path(args[0]), int(args[1]))
        Path(args[2]).write_bytes(grayscale_png(pixels, 28, 28))
        print(label)
    elif command == "digit-hex":
        pixels, label = mnist_test_digit(Path(args[0]), int(args[1]))
        print(f"{label}:{pixels.hex()}")
    elif command == "probe":
        return 0 if probe(args[0]) else 1
    elif command == "predict":
        print(predict(args[0], Path(args[1]), int(args[2])))
    elif command == "image-size":
        print(check_image_size(Path(args[0]), int(args[1])))
    else:
        raise SystemExit(f"unknown command {command!r}\n{__doc__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
