"""``inference.GRPCInferenceService`` over the core's dataplane: each method only translates.

Triton's definition of the service (``proto/grpc_service.proto``), of which KServe's is the core:
the methods defined here are served, every other one (shared memory, streaming, trace and log
settings) is left unregistered, so that the observer answers it UNIMPLEMENTED with its access-log
line. Refusals are the core's ``ServiceError``s, raised through: ``status.answered`` renders them
once as status codes, so no method here handles an error itself. ``add_to_server`` registers
the methods with their request readers: the servicer needs no interceptor to work.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel

from service.grpc.messages import ReceivedModelInfer, read_infer_request
from service.grpc.proto import grpc_predict_v2_pb2 as kserve_pb
from service.grpc.proto import grpc_service_pb2 as pb
from service.grpc.proto import model_config_pb2
from service.grpc.status import answered, lenient
from service.grpc.tensors import (
    infer_request_from_grpc,
    infer_response_to_grpc,
    repository_model_name,
)
from service.inference.auth import ApiKeys
from service.inference.classifier import Classifier
from service.inference.dataplane import DataPlane, server_metadata
from service.inference.errors import NotReady
from service.inference.limits import SMALL_BODY_BYTES
from service.inference.model_control import load_model, repository_index, unload_model
from service.inference.tracing import span

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
# Methods whose requests are not read by their generated protobuf deserializer.
REQUEST_READERS = {"ModelInfer": read_infer_request}
MessageT = TypeVar("MessageT", bound=Message)


def _version(version: str) -> str | None:
    """The protocol leaves a field unset as ""; the core takes None as "the default version"."""
    return version or None


def _ready(check: Callable[[], bool]) -> bool:
    """``check``'s answer, and ``False`` where it raises ``NotReady``: the protocol's answer is a
    flag, not UNAVAILABLE. Its other refusals (NOT_FOUND) go through."""
    try:
        return check()
    except NotReady:
        return False


def _message(answer: BaseModel | Mapping[str, Any], message_type: type[MessageT]) -> MessageT:
    """The core's answer, the document REST sends, as its gRPC message: protobuf's JSON mapping
    reads it by the protocol's field names, so both transports answer the same fields."""
    document = answer.model_dump() if isinstance(answer, BaseModel) else answer
    return json_format.ParseDict(document, message_type())


@dataclass(frozen=True)
class _ControlAnswer:
    """Triton's (empty) answer to a load or unload, carrying KServe's fields (``model_name`` and
    ``isLoaded`` or ``isUnloaded``) as fields Triton's clients skip: both kinds of client read
    their own answer."""

    triton: type[pb.RepositoryModelLoadResponse] | type[pb.RepositoryModelUnloadResponse]
    kserve: (
        type[kserve_pb.RepositoryModelLoadResponse] | type[kserve_pb.RepositoryModelUnloadResponse]
    )
    done_field: str

    def for_model(self, name: str) -> Any:
        kserve = self.kserve(model_name=name, **{self.done_field: True})
        return self.triton.FromString(kserve.SerializeToString())


LOADED = _ControlAnswer(
    pb.RepositoryModelLoadResponse, kserve_pb.RepositoryModelLoadResponse, "isLoaded"
)
UNLOADED = _ControlAnswer(
    pb.RepositoryModelUnloadResponse, kserve_pb.RepositoryModelUnloadResponse, "isUnloaded"
)


class InferenceServicer:
    """The V2 methods, Triton's model configuration and statistics, and the repository's three
    methods (index, load, unload) unless ``MNIST_MODEL_CONTROL=false``, which leaves them
    UNIMPLEMENTED as REST leaves its routes out."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self.metrics = dataplane.metrics
        keys = dataplane.settings.all_api_keys
        self.keys = ApiKeys(keys) if keys else None

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register every method this class defines, each with its request reader."""
        handlers = {}
        for method in SERVICE.methods:
            if not hasattr(self, method.name):
                continue
            request_type = getattr(pb, method.input_type.name)
            response_type = getattr(pb, method.output_type.name)
            reader = REQUEST_READERS.get(method.name, request_type.FromString)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                getattr(self, method.name),
                request_deserializer=lenient(reader),
                response_serializer=response_type.SerializeToString,
            )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
        )

    @answered(open_to_all=True)
    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @answered(open_to_all=True)
    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=_ready(self.dataplane.ready))

    @answered(open_to_all=True)
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        """NOT_FOUND for a model or version never served; ``ready: false`` while not loaded."""
        name, version = request.name, _version(request.version)
        return pb.ModelReadyResponse(
            ready=_ready(lambda: self.dataplane.model_ready(name, version).ready)
        )

    @answered()
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return _message(server_metadata(self.dataplane.settings), pb.ServerMetadataResponse)

    @answered()
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        metadata = self.dataplane.model_metadata(request.name, _version(request.version))
        return _message(metadata, pb.ModelMetadataResponse)

    @answered()
    async def ModelInfer(
        self, request: ReceivedModelInfer, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        """The request comes from ``read_infer_request`` (see ``REQUEST_READERS``): a small one
        runs on the event loop (where concurrent calls may share a model call), a large one in
        a worker thread."""
        message = request.message
        classifier = self.dataplane.model(message.model_name, message.model_version or None)
        if request.size <= SMALL_BODY_BYTES:
            with span("read request"):
                received = infer_request_from_grpc(request)
            result = await self.dataplane.infer(classifier, received)
            with span("encode response"):
                return infer_response_to_grpc(result)
        return await anyio.to_thread.run_sync(
            self._infer_off_loop, classifier, request, limiter=self.dataplane.heavy_work_limiter
        )

    def _infer_off_loop(
        self, classifier: Classifier, request: ReceivedModelInfer
    ) -> pb.ModelInferResponse:
        """Synchronous on purpose: large messages decode and run in a worker thread."""
        received = infer_request_from_grpc(request)
        return infer_response_to_grpc(self.dataplane.infer_now(classifier, received))

    @answered()
    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelConfigResponse:
        """The same ``ModelConfig`` REST answers in its JSON form, parsed into the message."""
        config = self.dataplane.model_config(request.name, _version(request.version))
        return pb.ModelConfigResponse(config=_message(config, model_config_pb2.ModelConfig))

    @answered()
    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        """Every model's statistics when no name is given, as REST's ``/v2/models/stats``."""
        name = request.name or None
        statistics = self.dataplane.model_statistics(name, _version(request.version))
        return _message(statistics, pb.ModelStatisticsResponse)

    @answered()
    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        """Every version loaded, unloaded or only on disk; reading the cards is off the loop."""
        await self._model_control_on(context)
        entries = await anyio.to_thread.run_sync(repository_index, self.dataplane, request.ready)
        return pb.RepositoryIndexResponse(
            models=[pb.RepositoryIndexResponse.ModelIndex(**vars(entry)) for entry in entries]
        )

    @answered()
    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelLoadResponse:
        """Re-read, verify and swap in the model, off the event loop (as over REST)."""
        return await self._model_control(request, context, load_model, LOADED)

    @answered()
    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelUnloadResponse:
        """Take the model out of service until it is loaded again."""
        return await self._model_control(request, context, unload_model, UNLOADED)

    async def _model_control(
        self,
        request: pb.RepositoryModelLoadRequest | pb.RepositoryModelUnloadRequest,
        context: grpc.aio.ServicerContext,
        action: Callable[[DataPlane, str], object],
        answer: _ControlAnswer,
    ) -> Any:
        """``action`` on the model the request names, off the event loop, and its answer."""
        await self._model_control_on(context)
        name = repository_model_name(request)
        await anyio.to_thread.run_sync(action, self.dataplane, name)
        return answer.for_model(name)

    async def _model_control_on(self, context: grpc.aio.ServicerContext) -> None:
        """UNIMPLEMENTED unless ``MNIST_MODEL_CONTROL=true``, as REST leaves its routes out."""
        if not self.dataplane.settings.model_control:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "model control is off (MNIST_MODEL_CONTROL=false)",
            )
