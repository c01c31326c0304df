"""Live gRPC servers for tests: the served app (REST + gRPC) in a thread of the test process.

The service's stubs keep their descriptors in a private pool, so tritonclient.grpc and the
stubs both work in this one process (see service/grpc/proto/README.md).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from service.app import create_app
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from service.settings import Settings
from tests.support.live_server import live_server
from tests.support.ports import HOST, free_port


@dataclass(frozen=True)
class Served:
    """A running app: its REST base URL and its gRPC ``host:port``."""

    url: str
    target: str

    @property
    def port(self) -> int:
        """The gRPC port, for raw HTTP/2 connections."""
        return int(self.target.rsplit(":", 1)[1])


def grpc_settings(model_path: Path, **overrides: object) -> Settings:
    """Settings for a test server: the model given (a file, or a repository folder), gRPC on a
    free port, no access log."""
    model = {"model_repository": model_path} if model_path.is_dir() else {"model_path": model_path}
    values: dict[str, object] = {
        **model,
        "access_log": False,
        "grpc_port": free_port(),
    }
    return Settings(**(values | overrides))


@contextmanager
def served(settings: Settings) -> Iterator[Served]:
    """Serve REST and gRPC as ``python -m service`` does, until the ``with`` block ends."""
    with live_server(create_app(settings)) as url:
        yield Served(url=url, target=f"{HOST}:{settings.grpc_port}")


@contextmanager
def inference_stub(target: str) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """The service's own stub on a fresh channel: for what tritonclient.grpc cannot send."""
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
