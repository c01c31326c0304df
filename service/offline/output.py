"""The outcomes as a table for people, JSON shaped like ``POST /predict``'s answer, or CSV."""

import csv
import io
import json
from collections.abc import Sequence

from service.offline.classify import Outcome

FORMATS = ("table", "json", "csv")
# One value per prediction, in the order the table and the CSV show them.
COLUMNS = ("digit", "confidence", "is_digit", "digit_score")
REASON = "not_digit_reason"
CLASS_COUNT = 10
MISSING = "-"


def render(outcomes: Sequence[Outcome], model: dict[str, str], form: str) -> str:
    """Every outcome in ``form`` (table, json or csv), in order."""
    if form == "json":
        return _json(outcomes, model)
    if form == "csv":
        return _csv(outcomes)
    if form == "table":
        return _table(outcomes)
    raise ValueError(f"unknown output format {form!r}; expected one of {', '.join(FORMATS)}")


def _json(outcomes: Sequence[Outcome], model: dict[str, str]) -> str:
    """``{"model": ..., "predictions": [...]}``, one per file in order; a file that could not be
    classified has ``error`` in place of the prediction's fields."""
    predictions = [
        {"filename": outcome.file, **(outcome.prediction or {"error": outcome.error})}
        for outcome in outcomes
    ]
    return json.dumps({"model": model, "predictions": predictions}, indent=2) + "\n"


def _csv(outcomes: Sequence[Outcome]) -> str:
    """One row per file: its values, why it is not a digit, the ten probabilities, any error."""
    probability_columns = [f"probability_{digit}" for digit in range(CLASS_COUNT)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", *COLUMNS, REASON, *probability_columns, "error"])
    for outcome in outcomes:
        prediction = outcome.prediction or {}
        values = [_csv_value(prediction.get(column)) for column in (*COLUMNS, REASON)]
        probabilities = prediction.get("probabilities") or [""] * CLASS_COUNT
        writer.writerow([outcome.file, *values, *probabilities, outcome.error or ""])
    return buffer.getvalue()


def _csv_value(value: object) -> object:
    """Booleans as ``true``/``false``, a missing value as an empty field."""
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else value


def _table(outcomes: Sequence[Outcome]) -> str:
    """Aligned columns, the file on the left and the values on the right, then a note column
    (why a file is not a digit, or could not be classified) when some file has one."""
    headers = ["file", *COLUMNS]
    rows = [[outcome.file, *_cells(outcome.prediction or {})] for outcome in outcomes]
    notes = [
        outcome.error or str((outcome.prediction or {}).get(REASON) or "") for outcome in outcomes
    ]
    widths = [max(len(row[index]) for row in [headers, *rows]) for index in range(len(headers))]
    lines = []
    for row, note in zip([headers, *rows], ["note" if any(notes) else "", *notes], strict=True):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([*cells, note]).rstrip())
    return "\n".join(lines) + "\n"


def _cells(prediction: dict[str, object]) -> list[str]:
    """Confidence as a percentage, the score to three decimals, yes/no, ``-`` for nothing."""
    cells = []
    for column in COLUMNS:
        value = prediction.get(column)
        if value is None:
            cells.append(MISSING)
        elif isinstance(value, bool):
            cells.append("yes" if value else "no")
        elif column == "confidence":
            cells.append(f"{value:.1%}")
        elif isinstance(value, float):
            cells.append(f"{value:.3f}")
        else:
            cells.append(str(value))
    return cells
