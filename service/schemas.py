"""Response models shared by the routes, so /docs shows every body the service returns."""

from typing import Any

from pydantic import BaseModel, Field

ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    404: "Unknown model, version or route",
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


class ModelInfo(BaseModel):
    name: str = Field(examples=["mnist_mlp"])
    version: str = Field(examples=["1"])


class Prediction(BaseModel):
    digit: int = Field(ge=0, le=9, description="The most probable digit.")
    confidence: float = Field(ge=0.0, le=1.0, description="Its probability.")
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="Probability of each digit 0-9."
    )
    filename: str | None = Field(None, description="The uploaded file's name, when one was sent.")


class PredictResponse(BaseModel):
    model: ModelInfo
    predictions: list[Prediction] = Field(description="One per image, in the order sent.")
