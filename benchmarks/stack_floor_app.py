"""The floor inside FastAPI: the raw-ASGI floor's job as an ASGI endpoint of a FastAPI app.

Every request passes through FastAPI's own middleware stack and router (FastAPI's telemetry off,
as the service runs it when no tracing is configured) and reaches benchmarks/floor_app.py's
callable; nothing else runs. So ``FastAPI floor / floor`` is what serving every route inside
FastAPI's one stack costs by itself, and ``ours / FastAPI floor`` what the service's own work
costs on top of it: validation, limits, metrics, statistics, the access log, and what batching
saves. Started by the benchmarks as ``uvicorn benchmarks.stack_floor_app:create_app --factory``
with the model path in ``BENCH_MODEL_PATH``.
"""

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks import floor_app

TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}


class Endpoint:
    """An ASGI endpoint (an object, not a function: Starlette calls a function endpoint with a
    ``Request``) that hands the request to the floor."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app() -> FastAPI:
    """The floor's two routes, first in FastAPI's router, and a health route."""
    endpoint = Endpoint(floor_app.create_app())
    app = FastAPI(telemetry=TELEMETRY_OFF)
    app.router.routes[:0] = [
        Route("/predict", endpoint, methods=["POST"]),
        Route("/v2/models/{model_name}/infer", endpoint, methods=["POST"]),
    ]

    @app.get("/health")
    async def health() -> dict:
        return {"ready": True}

    return app
