"""``GET /metrics`` in the Prometheus text format."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.rest.dependencies import DataPlaneDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
def metrics(dataplane: DataPlaneDep) -> Response:
    """Requests, latency, batch sizes, predicted digits and rejected inputs."""
    return Response(dataplane.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
