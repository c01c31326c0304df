"""The ``POST /predict`` answer as pydantic models: what /docs shows, and what tests check."""

from pydantic import BaseModel, Field


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
