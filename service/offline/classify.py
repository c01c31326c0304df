"""Image files through the service's core: the preprocessing and model call of ``POST /predict``,
the limits of its settings, and one answer per file, so a bad file stops only itself."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.inference.classifier import Classifier
from service.inference.errors import PayloadTooLarge, ServiceError
from service.inference.limits import ImageLimits
from service.inference.preprocessing import InvertMode, image_to_array
from service.inference.verdict import digit_verdicts
from service.offline.files import Named
from service.settings import Settings


@dataclass(frozen=True)
class Outcome:
    """One file's answer: ``prediction`` as ``/predict`` gives it, or ``error``."""

    file: str
    prediction: dict[str, object] | None = None
    error: str | None = None


@dataclass(frozen=True)
class FileClassifier:
    """A loaded model version and what the service's settings bound: bytes, pixels, batch."""

    classifier: Classifier
    settings: Settings
    invert: InvertMode = "auto"

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(self.settings.max_image_pixels, self.settings.max_image_side)

    def classify(
        self, inputs: list[Named], advance: Callable[[], None] = lambda: None
    ) -> Iterator[Outcome]:
        """Every input's outcome in order, a model call per ``MNIST_MAX_BATCH_SIZE`` files;
        ``advance`` is called as each file is decoded."""
        batch = self.settings.max_batch_size
        for start in range(0, len(inputs), batch):
            yield from self._classify_batch(inputs[start : start + batch], advance)

    def _classify_batch(self, inputs: list[Named], advance: Callable[[], None]) -> list[Outcome]:
        decoded: list[np.ndarray | str] = []
        for named in inputs:
            decoded.append(self._decode(named))
            advance()
        images = [item for item in decoded if isinstance(item, np.ndarray)]
        predictions = iter(self._predict(np.stack(images)) if images else [])
        return [
            Outcome(str(named.path), next(predictions))
            if isinstance(item, np.ndarray)
            else Outcome(str(named.path), error=item)
            for named, item in zip(inputs, decoded, strict=True)
        ]

    def _decode(self, named: Named) -> np.ndarray | str:
        """The model's 28x28 input, or why the file gives none."""
        if named.problem is not None:
            return named.problem
        try:
            return image_to_array(self._read(named.path), self.invert, self.image_limits)
        except ServiceError as error:
            return error.message
        except OSError as error:
            return f"cannot read: {error.strerror or error}"

    def _read(self, path: Path) -> bytes:
        """The file's bytes, unless it is larger than the service would take."""
        size, limit = path.stat().st_size, self.settings.max_image_bytes
        if size > limit:
            raise PayloadTooLarge(
                f"the file is {size} bytes; at most {limit} are allowed (MNIST_MAX_IMAGE_BYTES)"
            )
        return path.read_bytes()

    def _predict(self, images: np.ndarray) -> list[dict[str, object]]:
        """``/predict``'s fields for each image: the digit, its confidence, the probabilities
        and the verdict (``is_digit``, ``digit_score``, ``not_digit_reason``)."""
        classifier = self.classifier
        names = [name for name in (classifier.output_name, classifier.score_name) if name]
        probabilities, *scores = classifier.run(names, images)
        verdicts = digit_verdicts(
            images, scores[0] if scores else None, classifier.card.digit_score
        )
        rows = zip(probabilities.tolist(), classifier.digits(probabilities), verdicts, strict=True)
        return [
            {"digit": int(digit), "confidence": max(row), "probabilities": row, **verdict}
            for row, digit, verdict in rows
        ]
