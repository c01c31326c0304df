"""The outcomes as a table for people, JSON shaped like ``POST /predict``'s answer, or CSV."""

import csv
import io
import json
from collections.abc import Sequence

from service.offline.classify import Outcome

FORMATS = ("table", "json", "csv")
CLASS_COUNT = 10
MISSING = "-"


def render(
    outcomes: Sequence[Outcome], columns: Sequence[str], model: dict[str, str], form: str
) -> str:
    """``columns`` are the scalar fields of a prediction (digit, confidence, digit_score...)."""
    if form == "json":
        return _json(outcomes, model)
    if form == "csv":
        return _csv(outcomes, columns)
    if form == "table":
        return _table(outcomes, columns)
    raise ValueError(f"unknown output format {form!r}; expected one of {', '.join(FORMATS)}")


def _json(outcomes: Sequence[Outcome], model: dict[str, str]) -> str:
    """``{"model": ..., "predictions": [...]}``, one per file in order; a file that could not be
    classified has ``error`` in place of the prediction's fields."""
    predictions = [
        {"filename": outcome.file, **(outcome.prediction or {"error": outcome.error})}
        for outcome in outcomes
    ]
    return json.dumps({"model": model, "predictions": predictions}, indent=2) + "\n"


def _csv(outcomes: Sequence[Outcome], columns: Sequence[str]) -> str:
    """One row per file: its scalar fields, the ten probabilities, and the error if any."""
    probability_columns = [f"probability_{digit}" for digit in range(CLASS_COUNT)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", *columns, *probability_columns, "error"])
    for outcome in outcomes:
        prediction = outcome.prediction or {}
        probabilities = prediction.get("probabilities") or [""] * CLASS_COUNT
        scalars = [prediction.get(column, "") for column in columns]
        writer.writerow([outcome.file, *scalars, *probabilities, outcome.error or ""])
    return buffer.getvalue()


def _table(outcomes: Sequence[Outcome], columns: Sequence[str]) -> str:
    """Aligned columns: the file on the left, numbers on the right, and an error column only
    when a file could not be classified."""
    headers = ["file", *columns]
    rows = [
        [
            outcome.file,
            *(_cell(column, (outcome.prediction or {}).get(column)) for column in columns),
        ]
        for outcome in outcomes
    ]
    errors = [outcome.error or "" for outcome in outcomes]
    widths = [max(len(row[index]) for row in [headers, *rows]) for index in range(len(headers))]
    lines = []
    for row, error in zip([headers, *rows], ["error" if any(errors) else "", *errors], strict=True):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([*cells, error]).rstrip())
    return "\n".join(lines) + "\n"


def _cell(column: str, value: object) -> str:
    """Confidence as a percentage, other scores to three decimals, yes/no for a boolean."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column == "confidence" and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
