"""Regenerate the stubs from the vendored proto: ``python -m service.grpc.proto.generate``.

Needs grpcio-tools (the ``dev`` extra). Two edits follow protoc, each for a reason given in
README.md beside this file: the descriptors go into a private pool (tritonclient.grpc registers
the same ``inference.*`` names from Triton's proto into the default one, and one process must be
able to hold both), and the service module imports its messages from this package.
"""

import argparse
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = "grpc_predict_v2.proto"
MODULE = "grpc_predict_v2_pb2"
PACKAGE = "service.grpc.proto"

EDITS = {
    f"{MODULE}.py": [
        (
            "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(",
            "POOL = _descriptor_pool.DescriptorPool()\nDESCRIPTOR = POOL.AddSerializedFile(",
        ),
        (f"(DESCRIPTOR, '{MODULE}', _globals)", f"(DESCRIPTOR, '{PACKAGE}.{MODULE}', _globals)"),
    ],
    f"{MODULE}_grpc.py": [
        (f"import {MODULE} as ", f"from . import {MODULE} as "),
    ],
}


def generate(output: Path) -> list[Path]:
    """Run protoc on the vendored proto into ``output``, apply ``EDITS``; the files written."""
    from grpc_tools import protoc

    arguments = [
        "protoc",
        f"-I{HERE}",
        f"--python_out={output}",
        f"--pyi_out={output}",
        f"--grpc_python_out={output}",
        str(HERE / PROTO),
    ]
    if protoc.main(arguments) != 0:
        raise RuntimeError(f"protoc failed on {HERE / PROTO}")
    header = (
        f"# Written by `python -m {PACKAGE}.generate` with grpcio-tools "
        f"{version('grpcio-tools')} from {PROTO}; see README.md.\n"
    )
    written = sorted(output.glob(f"{MODULE}*.py*"))
    for path in written:
        text = path.read_text(encoding="utf-8")
        for old, new in EDITS.get(path.name, []):
            if old not in text:
                raise RuntimeError(f"{path.name}: the generator no longer writes {old!r}")
            text = text.replace(old, new, 1)
        path.write_text(header + text, encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE, help=f"folder (default: {HERE})")
    for path in generate(parser.parse_args(argv).output):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
