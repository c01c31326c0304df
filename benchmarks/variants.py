"""The service with one lever moved: ``python -m benchmarks.variants NAME``, or in-process.

A variant is a set of attribute patches (held while the service runs), an optional change to
the built app, and optional uvicorn options. ``python -m benchmarks.variants NAME`` applies one
and then runs ``service.__main__.main`` exactly as ``python -m service`` does, so everything
else (settings from ``MNIST_*``, logging, uvicorn) stays as shipped; benchmarks/in_app.py holds
the same patches around in-process calls. Patches do not reach spawned workers: one worker.
"""

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import onnxruntime
import uvicorn
from fastapi import FastAPI

import service.__main__ as service_main
import service.app as served_app_module
from service.inference import classifier as classifier_module
from service.inference import dataplane as dataplane_module
from service.inference.metrics import Metrics
from service.logs import AccessLogHandler
from service.rest import multipart as multipart_module
from service.rest import uvicorn_hooks as protocol_module

Patch = tuple[object, str, object]


@dataclass(frozen=True)
class Variant:
    """What one lever changes; the empty variant is the service as shipped."""

    patches: tuple[Patch, ...] = ()
    change_app: Callable[[FastAPI], None] | None = None
    uvicorn_options: dict[str, str] = field(default_factory=dict)


def _open_default_session(model_path, model_bytes, intra_op_threads, arena=False):
    """onnxruntime's default session options: a thread per core, spinning."""
    return onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


@contextlib.asynccontextmanager
async def _heap_as_is(dataplane):
    """The garbage collector as CPython sets it: nothing frozen, the default thresholds."""
    yield


def _write_at_once(self, data: bytes) -> None:
    """The head and the body of a response in two writes, as uvicorn writes them."""
    self._transport.write(data)


def _write_now(self: AccessLogHandler, record: logging.LogRecord) -> None:
    """The record formatted and written by the request, as a plain StreamHandler does."""
    self.writer.handle(record)


VARIANTS: dict[str, Variant] = {
    "shipped": Variant(),
    "uvloop+httptools": Variant(uvicorn_options={"loop": "uvloop", "http": "httptools"}),
    "asyncio+h11": Variant(uvicorn_options={"loop": "asyncio", "http": "h11"}),
    "uvicorn's own httptools protocol": Variant(uvicorn_options={"http": "httptools"}),
    "no metrics": Variant(
        patches=(
            (Metrics, "observe_request", lambda self, *arguments: None),
            (Metrics, "observe_inference", lambda self, model, version, digits: None),
        )
    ),
    "decode in thread pool": Variant(patches=((dataplane_module, "SMALL_BODY_BYTES", -1),)),
    "onnxruntime defaults": Variant(
        patches=((classifier_module, "_open_session", _open_default_session),)
    ),
    "streaming multipart": Variant(
        patches=((multipart_module, "_split_simple", lambda body, boundary: None),)
    ),
    "garbage collector as CPython's": Variant(
        patches=((served_app_module, "startup_heap_frozen", _heap_as_is),)
    ),
    "head and body written apart": Variant(
        patches=((protocol_module.HeadWithBody, "write", _write_at_once),)
    ),
    "access log written on the event loop": Variant(
        patches=((AccessLogHandler, "emit", _write_now),)
    ),
}


@contextlib.contextmanager
def patched(variant: Variant) -> Iterator[None]:
    """Hold the variant's patches, then put the originals back."""
    originals = [(target, name, getattr(target, name)) for target, name, _ in variant.patches]
    for target, name, value in variant.patches:
        setattr(target, name, value)
    try:
        yield
    finally:
        for target, name, value in originals:
            setattr(target, name, value)


def _apply_for_good(variant: Variant) -> None:
    """Patch this process for the rest of its life, before ``main`` builds anything."""
    for target, name, value in variant.patches:
        setattr(target, name, value)
    if variant.change_app is not None:
        build = service_main.create_app

        def create_app(*arguments, **keywords) -> FastAPI:
            app = build(*arguments, **keywords)
            variant.change_app(app)
            return app

        service_main.create_app = create_app
    if variant.uvicorn_options:
        run = uvicorn.run

        def run_with_options(*arguments, **keywords) -> None:
            """The variant's options win over the service's own (``http`` among them)."""
            run(*arguments, **(keywords | variant.uvicorn_options))

        uvicorn.run = run_with_options


def main(argv: list[str] | None = None) -> int:
    """Apply the named variant, then serve as ``python -m service`` does."""
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1 or arguments[0] not in VARIANTS:
        print(f"usage: python -m benchmarks.variants {{{','.join(VARIANTS)}}}", file=sys.stderr)
        return 2
    _apply_for_good(VARIANTS[arguments[0]])
    return service_main.main([])


if __name__ == "__main__":
    raise SystemExit(main())
