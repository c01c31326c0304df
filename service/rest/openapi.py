"""OpenAPI pieces shared by the routes, so /docs shows every body the service returns."""

from typing import Any

from pydantic import BaseModel, Field

ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    404: "Unknown model, version or route",
    409: "Would reach only one of several workers",
    413: "Too large: bytes, pixels or images",
    415: "Not an image, or an unsupported content type",
    503: "The model is not loaded",
}


class ErrorBody(BaseModel):
    """Every refusal, whatever the route."""

    error: str = Field(description="What is wrong and how to fix it.")


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the ``{"error": ...}`` body."""
    return {
        code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in status_codes
    }
