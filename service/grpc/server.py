"""The gRPC server beside HTTP: the V2 service, grpc.health.v1 and server reflection.

One ``GrpcServer`` per worker process, started and stopped by the app's lifespan on the worker's
own event loop. With several workers each binds the same port with SO_REUSEPORT and the kernel
spreads connections among them; with one, SO_REUSEPORT is off so that a port already taken
fails loudly instead of being shared with a stranger.
"""

import asyncio
import contextlib
import logging
import operator
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from service.grpc.admission import MARKER_METHOD, Admission
from service.grpc.bounds import server_options
from service.grpc.messages import ReceivedModelInfer
from service.grpc.observer import CallObserver
from service.grpc.proto import grpc_service_pb2 as pb
from service.grpc.servicer import SERVICE, InferenceServicer
from service.inference import tracing
from service.inference.dataplane import DataPlane
from service.inference.errors import NotReady, ServiceError

logger = logging.getLogger("service.grpc")

INFERENCE_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
# The stubs keep their descriptors out of the default pool (see proto/README.md): reflection
# answers from theirs, which also gets health's and its own.
for _file in (health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR):
    pb.POOL.AddSerializedFile(_file.serialized_pb)
SERVICE_NAMES = (INFERENCE_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MODEL_INFER = f"/{INFERENCE_SERVICE}/ModelInfer"
# Calls the server makes to itself: not a client's, so neither logged, counted nor traced.
INTERNAL_METHODS = frozenset({MARKER_METHOD})
SHAPE = operator.attrgetter("shape")
# Each worker also listens on a port of its own here, for the marker its stop sends itself.
LOOPBACK = "127.0.0.1"


class Health(health.aio.HealthServicer):
    """``""`` is SERVING while the process serves (liveness); ``inference.GRPCInferenceService``
    while the model is also ready (readiness), both NOT_SERVING once shutdown begins."""

    def __init__(self, dataplane: DataPlane) -> None:
        super().__init__()
        self.dataplane = dataplane
        self.stopping = False

    def _status(self, service: str) -> int:
        if self.stopping:
            return health_pb2.HealthCheckResponse.NOT_SERVING
        if service == INFERENCE_SERVICE:
            try:
                self.dataplane.ready()
            except NotReady:
                return health_pb2.HealthCheckResponse.NOT_SERVING
        return health_pb2.HealthCheckResponse.SERVING

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service in ("", INFERENCE_SERVICE):
            return health_pb2.HealthCheckResponse(status=self._status(request.service))
        return await super().Check(request, context)

    async def publish(self) -> None:
        """Hand the current statuses to ``Watch`` streams (``Check`` computes its own)."""
        for service in ("", INFERENCE_SERVICE):
            await self.set(service, self._status(service))


def model_call_bytes(dataplane: DataPlane) -> Callable[[object], int]:
    """What a ModelInfer request's model call holds, as REST charges it (``costs``)."""
    settings = dataplane.settings

    def cost(request: object) -> int:
        if not isinstance(request, ReceivedModelInfer):
            return 0  # Undecodable: refused before any work.
        message = request.message
        try:
            classifier = dataplane.model(message.model_name, message.model_version or None)
        except ServiceError:
            return 0  # Refused by the method before any work.
        return classifier.call_bytes(map(SHAPE, message.inputs), settings.max_batch_size)

    return cost


def address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """A grpc.aio server for one dataplane; ``start`` binds and serves, ``stop`` drains."""

    def __init__(self, dataplane: DataPlane) -> None:
        settings = dataplane.settings
        self.settings = settings
        self.health = Health(dataplane)
        servicer = InferenceServicer(dataplane)
        self.admission = Admission(
            dataplane.inflight,
            settings.max_request_bytes,
            settings.grpc_receive_seconds,
            dataplane.metrics,
            servicer.keys,
            {MODEL_INFER: model_call_bytes(dataplane)},
        )
        self.server = grpc.aio.server(
            # Tracing first (its span covers the call); then the observer: it sees (and logs)
            # what the admission refuses, and answers methods nobody serves.
            interceptors=[
                *tracing.grpc_interceptors(dataplane.tracer_provider, INTERNAL_METHODS),
                CallObserver(
                    dataplane.metrics,
                    settings.access_log,
                    frozenset(f"/{SERVICE.full_name}/{method.name}" for method in SERVICE.methods),
                    INTERNAL_METHODS,
                ),
                self.admission,
            ],
            options=server_options(settings),
        )
        servicer.add_to_server(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(SERVICE_NAMES, self.server, pool=pb.POOL)
        self.port: int | None = None
        self.marker_target = ""
        self.stopping: asyncio.Future[None] | None = None

    async def start(self) -> int:
        """Bind ``MNIST_HOST:MNIST_GRPC_PORT`` (0: a port the OS picks) and serve; the port."""
        wanted = address(self.settings.host, self.settings.grpc_port)
        try:
            self.port = self.server.add_insecure_port(wanted)
        except RuntimeError as error:
            raise OSError(f"gRPC cannot listen on {wanted}: {error}") from None
        marker_port = self.server.add_insecure_port(address(LOOPBACK, 0))
        self.marker_target = address(LOOPBACK, marker_port)
        await self.server.start()
        await self.health.publish()
        logger.info(
            "gRPC serving on %s", address(self.settings.host, self.port), extra={"port": self.port}
        )
        return self.port

    def begin_stop(self) -> asyncio.Future[None]:
        """Start the drain (once: a second call gets the first's)."""
        if self.stopping is None:
            self.stopping = asyncio.ensure_future(self._drain())
        return self.stopping

    async def stop(self) -> None:
        """Refuse new calls, let those in flight finish (up to ``MNIST_GRPC_DRAIN_SECONDS``)."""
        await asyncio.shield(self.begin_stop())

    async def _drain(self) -> None:
        """Calls received before the stop are served, later ones get UNAVAILABLE (see
        ``Admission``); once the first have ended, or the grace is over, grpc stops."""
        self.health.stopping = True
        await self.health.publish()
        grace = self.settings.grpc_drain_seconds
        logger.info("gRPC stopping: new calls refused, calls in flight get up to %.0f s", grace)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.admission.drained(self.marker_target), grace)
        await self.server.stop(max(0.0, grace - (loop.time() - started)))


@contextmanager
def stop_on_exit_signals(server: GrpcServer) -> Iterator[None]:
    """Begin gRPC's drain the moment SIGTERM or SIGINT arrives, beside HTTP's, rather than once
    HTTP's requests have all finished (when uvicorn ends the lifespan), and hand the signal on
    to the handler it had (uvicorn's). Only the main thread can take signals: elsewhere (an app
    served in a test's thread) the lifespan's end stops gRPC as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {number: signal.getsignal(number) for number in EXIT_SIGNALS}

    def handle(number: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(server.begin_stop)
        handler = previous[number]
        if callable(handler):
            handler(number, frame)

    for number in EXIT_SIGNALS:
        signal.signal(number, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@asynccontextmanager
async def serve_grpc(dataplane: DataPlane) -> AsyncIterator[GrpcServer]:
    """gRPC for as long as the ``with`` block: the app's lifespan holds it."""
    server = GrpcServer(dataplane)
    await server.start()
    try:
        with stop_on_exit_signals(server):
            yield server
    finally:
        await server.stop()
