"""The README promises what CI runs, documents every setting and states the shipped accuracy."""

import json
import re
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import Settings
from tests.service.browser import live_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second_verbatim() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in command for command in commands)
    ci_lines = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci_lines


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"`MNIST_{name.upper()}`" in README, f"MNIST_{name.upper()} is not in the README"


def test_the_stated_accuracy_is_the_shipped_models() -> None:
    card = json.loads((PROJECT_ROOT / "models" / "mnist_mlp.json").read_text(encoding="utf-8"))
    accuracy = f"{100 * card['metrics']['test_accuracy']:.2f}% test accuracy"
    assert accuracy in README
    assert card["sha256"] in (PROJECT_ROOT / "models" / "README.md").read_text(encoding="utf-8")


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", README, flags=re.DOTALL)


def test_the_python_examples_work_against_a_live_server(
    shipped_model_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(model_path=shipped_model_path, access_log=False)
    monkeypatch.chdir(PROJECT_ROOT)
    examples = python_examples()
    assert len(examples) == 2
    with live_server(create_app(settings)) as url:
        for example in examples:
            exec(example.replace("http://127.0.0.1:8000", url).replace("127.0.0.1:8000", url[7:]))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "[7, 7]"
    assert printed[1].startswith("[") and len(printed[1].strip("[]").split()) == 2
