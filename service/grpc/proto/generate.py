"""Regenerate the stubs from the vendored protos: ``python -m service.grpc.proto.generate``.

Needs grpcio-tools (the ``dev`` extra). Edits follow protoc, each for a reason given in
README.md beside this file: each proto family's descriptors go into a private pool of its own
(tritonclient.grpc registers Triton's ``inference.*`` names into the default pool, KServe's proto
defines the same names again, and one process must be able to hold all three), and the modules
import each other from this package.
"""

import argparse
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "service.grpc.proto"
DEFAULT_POOL_LINE = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("


@dataclass(frozen=True)
class Stub:
    """One proto's generated module; ``pool_from`` names the module whose pool it joins (its
    dependency's), None for a module that creates the pool."""

    proto: str
    pool_from: str | None = None
    imports: tuple[str, ...] = ()
    has_service: bool = True

    @property
    def module(self) -> str:
        return self.proto.removesuffix(".proto") + "_pb2"

    def edits(self) -> dict[str, list[tuple[str, str]]]:
        """Each generated file's (what protoc writes, what replaces it)."""
        if self.pool_from is None:
            pool = "POOL = _descriptor_pool.DescriptorPool()\nDESCRIPTOR = POOL.AddSerializedFile("
        else:
            alias = self.pool_from.replace("_", "__")
            pool = f"POOL = {alias}.POOL\nDESCRIPTOR = POOL.AddSerializedFile("
        module_edits = [
            (DEFAULT_POOL_LINE, pool),
            (
                f"(DESCRIPTOR, '{self.module}', _globals)",
                f"(DESCRIPTOR, '{PACKAGE}.{self.module}', _globals)",
            ),
        ]
        module_edits += [
            (f"\nimport {name} as ", f"\nfrom . import {name} as ") for name in self.imports
        ]
        grpc_edits = [(f"import {self.module} as ", f"from . import {self.module} as ")]
        return {f"{self.module}.py": module_edits, f"{self.module}_grpc.py": grpc_edits}


# KServe's Open Inference Protocol, and Triton's superset of it (which needs its model config).
STUBS = (
    Stub("grpc_predict_v2.proto"),
    Stub("model_config.proto", has_service=False),
    Stub("grpc_service.proto", pool_from="model_config_pb2", imports=("model_config_pb2",)),
)


def generate(output: Path) -> list[Path]:
    """Run protoc on every vendored proto into ``output``, apply the edits; the files written."""
    from grpc_tools import protoc

    written: list[Path] = []
    for stub in STUBS:
        arguments = [
            "protoc",
            f"-I{HERE}",
            f"--python_out={output}",
            f"--pyi_out={output}",
            str(HERE / stub.proto),
        ]
        if stub.has_service:
            arguments.insert(-1, f"--grpc_python_out={output}")
        if protoc.main(arguments) != 0:
            raise RuntimeError(f"protoc failed on {HERE / stub.proto}")
        header = (
            f"# Written by `python -m {PACKAGE}.generate` with grpcio-tools "
            f"{version('grpcio-tools')} from {stub.proto}; see README.md.\n"
        )
        edits = stub.edits()
        for path in sorted(output.glob(f"{stub.module}.py*")) + sorted(
            output.glob(f"{stub.module}_grpc.py")
        ):
            text = path.read_text(encoding="utf-8")
            for old, new in edits.get(path.name, []):
                if old not in text:
                    raise RuntimeError(f"{path.name}: the generator no longer writes {old!r}")
                text = text.replace(old, new, 1)
            path.write_text(header + text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE, help=f"folder (default: {HERE})")
    for path in generate(parser.parse_args(argv).output):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
