"""Versions as training writes them: positive integers, as Triton names them; a new model gets
one more than the highest of its name in the output folder, and its int8 twin the next.

Cards only: nothing is trained (the trust stage's card functions take a stand-in for its result).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.inference.model_card import LARGEST_VERSION
from tests.support.models import build_tiny_model, write_model
from training.calibrate import build_parser as calibrate_parser
from training.calibrate import update_readme
from training.card import next_version
from training.cli import build_parser
from training.trust_report import int8_card, updated_card

SHIPPED = Path(__file__).resolve().parents[2] / "models"


def test_a_new_folder_starts_at_version_1(tmp_path: Path) -> None:
    assert next_version(tmp_path / "absent") == 1
    assert next_version(tmp_path) == 1


def test_the_next_version_follows_the_highest_of_the_model_in_the_folder(tmp_path: Path) -> None:
    write_model(tmp_path, stem="mnist_mlp", version="2")
    write_model(tmp_path, build_tiny_model(seed=1), stem="older", version="10")
    write_model(tmp_path, build_tiny_model(seed=2), stem="other", name="digits", version="50")
    write_model(tmp_path, build_tiny_model(seed=3), stem="label", version="20261206-56941f5d")
    write_model(tmp_path, build_tiny_model(seed=4), stem="broken").with_suffix(".json").write_text(
        "{not json"
    )
    (tmp_path / "lone.json").write_text(json.dumps({"name": "mnist_mlp", "version": "99"}))
    # Only the cards of *.onnx files count, of this model, with integer versions.
    assert next_version(tmp_path) == 11


def test_the_shipped_folder_would_get_version_3() -> None:
    assert next_version(SHIPPED) == 3


@pytest.mark.parametrize("parser", [build_parser, calibrate_parser])
def test_version_is_an_option_whose_help_says_the_default(
    parser, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parser().parse_args([*_positional(parser), "--version", "7"]).version == 7
    assert parser().parse_args(_positional(parser)).version is None
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--version VERSION the model's version, a positive integer" in help_text
    assert "the int8 model gets the next (default: one more than the highest version" in help_text


@pytest.mark.parametrize(
    "text", ["0", "-1", "v1", "1.5", "20261206-56941f5d", str(LARGEST_VERSION)]
)
def test_a_version_that_is_not_one_is_refused(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([f"--version={text}"])
    assert exited.value.code == 2
    assert "argument --version:" in capsys.readouterr().err


def test_the_trust_stage_keeps_the_version_and_the_int8_card_takes_the_next() -> None:
    card = json.loads((SHIPPED / "mnist_mlp.json").read_text(encoding="utf-8"))
    card = {**card, "version": "5"}
    trust = SimpleNamespace(
        onnx_bytes=(SHIPPED / "mnist_mlp.onnx").read_bytes(),
        calibration=card["calibration"],
        digit_score=card["digit_score"],
    )
    created = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    updated = updated_card(card, trust, card["calibration"]["parity"], created)
    assert (updated["version"], updated["created"]) == ("5", "2026-12-06T12:00:00Z")
    twin = int8_card(updated, b"int8 bytes", {"test_accuracy": 0.99})
    assert twin["version"] == "6"


def test_a_renumbered_model_changes_only_the_human_cards_identity_lines() -> None:
    """``training.calibrate`` renders the summary again: the old version (a short number) is
    not searched for and replaced through the text."""
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    card = json.loads((SHIPPED / "mnist_mlp.json").read_text(encoding="utf-8"))
    renumbered = {**card, "version": "3", "sha256": "f" * 64}
    changed = [
        (old, new)
        for old, new in zip(
            readme.splitlines(), update_readme(readme, card, renumbered).splitlines(), strict=True
        )
        if old != new
    ]
    assert changed == [
        ("# mnist_mlp — model card (version 1)", "# mnist_mlp — model card (version 3)"),
        (
            f"| version | `1`, created {card['created']} |",
            f"| version | `3`, created {card['created']} |",
        ),
        (f"| sha256 | `{card['sha256']}` |", f"| sha256 | `{'f' * 64}` |"),
    ]


def _positional(parser) -> list[str]:
    """The arguments a parser needs besides its options."""
    return ["model.onnx"] if parser is calibrate_parser else []
