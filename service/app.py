"""The served application: the REST app, with the gRPC server in its lifespan.

``python -m service`` and every uvicorn worker build it here, so each worker serves both
transports; ``MNIST_GRPC_ENABLED=false`` leaves REST alone.
"""

from service.grpc.server import serve_grpc
from service.heap import startup_heap_frozen
from service.inference.repository import ModelRepository
from service.rest.app import App, create_rest_app
from service.settings import Settings


def create_app(settings: Settings | None = None, models: ModelRepository | None = None) -> App:
    """The REST app; with ``MNIST_GRPC_ENABLED`` (the default), gRPC lives in its lifespan.
    Once both serve, the start-up heap is frozen out of garbage collection (``service.heap``)."""
    settings = settings or Settings()
    companions = [serve_grpc] if settings.grpc_enabled else []
    companions.append(startup_heap_frozen)
    return create_rest_app(settings, models, companions=companions)
