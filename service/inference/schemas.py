"""The ``POST /predict`` answer as pydantic models: what /docs shows, and what tests check."""

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str = Field(examples=["mnist_mlp"])
    version: str = Field(examples=["1"])


class Prediction(BaseModel):
    digit: int = Field(ge=0, le=9, description="The most probable digit.")
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description="The model's probability for that digit, if the image is a digit: calibrated "
        "on MNIST validation digits (of answers given at 0.9, about 90% are right there), so "
        "less certain on unusual handwriting. It says nothing about whether the image is a "
        "digit at all: see is_digit.",
    )
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="Probability of each digit 0-9 (calibrated)."
    )
    is_digit: bool = Field(
        description="False when the image does not look like a digit: it has no ink, or the "
        "model's digit_score is below the threshold in its card. `digit` is still the best guess."
    )
    digit_score: float | None = Field(
        ge=0.0,
        le=1.0,
        description="How digit-like the image is, 0-1 (higher = more); null when the model has "
        "no digit_score output (is_digit then only says whether there is ink).",
    )
    not_digit_reason: str | None = Field(
        None, description="Why is_digit is false, in words a page can show; absent when true."
    )
    filename: str | None = Field(None, description="The uploaded file's name, when one was sent.")


class PredictResponse(BaseModel):
    model: ModelInfo
    predictions: list[Prediction] = Field(description="One per image, in the order sent.")
