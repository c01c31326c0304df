"""Open Inference Protocol (KServe V2) REST routes."""

from fastapi import APIRouter, Request, Response

from service.schemas import error_responses

router = APIRouter(prefix="/v2", tags=["v2"])


@router.get("/health/live", summary="Liveness")
def live() -> dict[str, bool]:
    """The process answers; says nothing about the model."""
    return {"live": True}


@router.get("/health/ready", responses=error_responses(503), summary="Readiness")
def ready(request: Request, response: Response) -> dict[str, bool]:
    """Ready once the model is loaded and warmed up."""
    is_ready = request.app.state.classifier is not None
    if not is_ready:
        response.status_code = 503
    return {"ready": is_ready}
