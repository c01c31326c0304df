"""Is it a digit? The answer each /predict prediction carries beside the digit.

An image with no ink is never a digit (preprocessing decides that, whatever the model says).
Otherwise a model with a reject option decides by its card's ``digit_score`` threshold; a model
without one (an older version, the tests' tiny models) cannot tell, so its answers count as
digits and carry ``digit_score: null``.
"""

import numpy as np

from service.inference.model_card import DigitScoreRule
from service.inference.preprocessing import NO_INK_REASON, has_ink


def digit_verdicts(
    images: np.ndarray, scores: np.ndarray | None, rule: DigitScoreRule | None
) -> list[dict[str, object]]:
    """One verdict per model input: ``is_digit``, ``digit_score`` and, if not, the reason."""
    values = [None] * len(images) if scores is None else scores.tolist()
    return [digit_verdict(image, score, rule) for image, score in zip(images, values, strict=True)]


def digit_verdict(
    image: np.ndarray, score: float | None, rule: DigitScoreRule | None
) -> dict[str, object]:
    """``is_digit``, ``digit_score`` and, for a non-digit, ``not_digit_reason``."""
    if not has_ink(image):
        return {"is_digit": False, "digit_score": score, "not_digit_reason": NO_INK_REASON}
    if score is None or rule is None or score >= rule.threshold:
        return {"is_digit": True, "digit_score": score}
    reason = f"digit_score {score:.3f} is below the model's threshold of {rule.threshold:g}"
    return {"is_digit": False, "digit_score": score, "not_digit_reason": reason}
