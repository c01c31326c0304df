"""The robustness suite's transformations and its command, on real images and a real ONNX model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.inference.limits import ImageLimits
from service.inference.preprocessing import image_to_array
from tests.support.images import mnist_like, png_bytes
from tests.support.models import write_model
from tests.training.idx_writer import write_tiny_mnist
from training.distortions import COLUMNS, shift, uneven_paper
from training.robustness import (
    NON_DIGIT_COLUMN,
    main,
    mean_without_clean,
    table,
    through_service,
    transformed_inputs,
)

LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)


def digit() -> np.ndarray:
    """A bar of ink well inside the frame, like a '1'."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    return pixels


def test_columns_start_with_clean_and_cover_what_the_issue_lists() -> None:
    names = [column.name for column in COLUMNS]

    assert names[0] == "clean"
    assert len(names) == len(set(names)) == 18


@pytest.mark.parametrize("column", COLUMNS, ids=[column.name for column in COLUMNS])
def test_every_column_gives_the_model_a_28x28_uint8_digit(column) -> None:
    upload = column.transform(digit(), np.random.default_rng(0))

    model_input = through_service(upload)

    assert model_input.shape == (28, 28) and model_input.dtype == np.uint8
    assert model_input.max() > 100


def test_lossless_arrays_give_what_the_uploaded_png_gives() -> None:
    pixels = mnist_like()
    for upload in (pixels, 255 - pixels, np.kron(pixels, np.ones((4, 4), dtype=np.uint8))):
        assert np.array_equal(
            through_service(upload), image_to_array(png_bytes(upload), "auto", LIMITS)
        )


def test_shift_moves_the_ink_by_that_many_pixels() -> None:
    moved = shift(4)(digit(), np.random.default_rng(1))

    rows, columns = np.nonzero(moved)
    original_rows, original_columns = np.nonzero(digit())
    offsets = {(rows.min() - original_rows.min(), columns.min() - original_columns.min())}
    assert offsets <= {(4, 0), (-4, 0), (0, 4), (0, -4)}
    assert moved.sum() == digit().sum()


def test_the_same_seed_gives_the_same_columns() -> None:
    images = np.stack([mnist_like(seed) for seed in range(3)])

    first, again, other = (transformed_inputs(images, seed) for seed in (5, 5, 6))

    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["noise"], other["noise"])


def test_table_has_one_row_per_column_and_the_mean_without_clean() -> None:
    scores = {"a.onnx": {"clean": 1.0, "blur": 0.5, "noise": 0.7}}

    lines = table(scores).splitlines()

    assert lines[2] == "| clean | 100.00% |"
    assert lines[-1] == "| mean (without clean) | 60.00% |"
    assert mean_without_clean(scores["a.onnx"]) == pytest.approx(0.6)


def test_command_scores_an_onnx_model_on_every_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_model(tmp_path)
    (tmp_path / "mnist").mkdir()
    data = write_tiny_mnist(tmp_path / "mnist")
    output = tmp_path / "scores.json"

    status = main([str(model), "--data-dir", str(data), "--json", str(output)])

    printed = capsys.readouterr().out
    scores = json.loads(output.read_text(encoding="utf-8"))[str(model)]
    assert status == 0
    assert list(scores) == [column.name for column in COLUMNS] + [NON_DIGIT_COLUMN]
    assert scores.pop(NON_DIGIT_COLUMN) is None  # the tiny model has no digit_score
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert "| mean (without clean) |" in printed
    assert f"| {NON_DIGIT_COLUMN} | - |" in printed
    assert max(len(line) for line in printed.splitlines()) <= 100


def test_command_names_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_tiny_mnist(tmp_path)

    status = main([str(tmp_path / "absent.onnx"), "--data-dir", str(data)])

    assert status == 1
    assert "absent.onnx" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(8))
def test_uneven_paper_stays_within_its_ramp_in_every_direction(seed: int) -> None:
    photo = uneven_paper(np.zeros((28, 28), dtype=np.uint8), np.random.default_rng(seed))

    assert photo.min() == 140 and photo.max() == 250
