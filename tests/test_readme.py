"""The README promises what CI runs, documents every setting and states the shipped accuracy."""

import importlib.util
import json
import re
import tomllib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from service.inference.limits import ImageLimits
from service.inference.preprocessing import image_to_array
from tests.support.grpc_servers import grpc_settings, served

PROJECT_ROOT = Path(__file__).resolve().parent.parent
README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second_verbatim() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in command for command in commands)
    ci_script = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci_script.splitlines()
    assert "install --upgrade pip" not in ci_script and "-U pip" not in ci_script


def test_the_full_run_line_sets_mnist_dir_for_pytest_not_for_pip() -> None:
    full_run = quick_start_commands()[1].replace(
        "python -m pytest", "MNIST_DIR=/path/to/mnist python -m pytest"
    )
    assert f"`{full_run}`" in README


def docs_script(name: str) -> ModuleType:
    """One of the scripts in docs/, imported from its file (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_table_is_generated_from_every_setting() -> None:
    settings_table = docs_script("settings_table")
    assert settings_table.readme_with_table(README) == README, (
        "the README's configuration table is stale: run python docs/settings_table.py"
    )


def test_performance_md_is_rendered_from_result_files_with_date_machine_and_command() -> None:
    performance = docs_script("performance")
    results = performance.load_results()
    assert results and all(result["date"][:4].isdigit() for result in results)
    assert performance.OUTPUT.read_text(encoding="utf-8") == performance.render(results), (
        "docs/performance.md is stale: run python docs/performance.py"
    )


def test_every_figure_in_the_performance_summary_is_in_a_result_file() -> None:
    summary = README.split("## Performance", 1)[1].split("\n## ", 1)[0]
    rendered = (PROJECT_ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    figures = re.findall(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", summary)
    assert len(figures) >= 5
    missing = [figure for figure in figures if figure not in rendered]
    assert not missing, f"the README's performance figures {missing} are in no result file"


@pytest.mark.parametrize("document", ["README.md", "docs/operations.md", "docs/performance.md"])
def test_every_relative_link_and_image_exists(document: str) -> None:
    path = PROJECT_ROOT / document
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
    assert targets
    missing = [target for target in targets if not (path.parent / target).exists()]
    assert not missing, missing


def test_the_stated_accuracy_is_the_shipped_models() -> None:
    card = json.loads((PROJECT_ROOT / "models" / "mnist_mlp.json").read_text(encoding="utf-8"))
    accuracy = f"{100 * card['metrics']['test_accuracy']:.2f}% test accuracy"
    assert accuracy in README
    assert card["sha256"] in (PROJECT_ROOT / "models" / "README.md").read_text(encoding="utf-8")


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", README, flags=re.DOTALL)


def promised_output(example: str) -> list[str]:
    """What an example says it prints: the comment after each ``print(...)``."""
    return re.findall(r"^print\(.*\)  # (.+)$", example, flags=re.MULTILINE)


def test_the_python_examples_print_what_they_promise_against_a_live_server(
    shipped_model_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    examples = python_examples()
    assert len(examples) == 3 and all(promised_output(example) for example in examples)
    with served(grpc_settings(shipped_model_path)) as server:
        for example in examples:
            live = example.replace("http://127.0.0.1:8000", server.url)
            live = live.replace("127.0.0.1:8000", server.url[7:])
            exec(live.replace("127.0.0.1:8001", server.target))
            assert capsys.readouterr().out.splitlines() == promised_output(example), example


def curl_example() -> tuple[str, dict]:
    """The curl command of "Using it" and the answer the README shows for it."""
    found = re.search(r"```sh\n(curl -F .*?)\n```\s*```json\n(.*?)\n```", README, re.DOTALL)
    assert found, "the README lost its curl example and the answer it shows"
    return found[1], json.loads(found[2])


def _two_digits(value: float) -> str:
    return repr(float(f"{value:.2g}"))


def shown_value(value: object) -> str:
    """A value as the README shows it: floats to two significant digits, the rest as JSON."""
    return _two_digits(value) if isinstance(value, float) else json.dumps(value)


def as_readme_shows_it(answer: dict) -> str:
    """The answer in the README's layout, two significant digits: what to paste when it moves."""
    prediction = dict(answer["predictions"][0])
    probabilities = ", ".join(_two_digits(value) for value in prediction.pop("probabilities"))
    filename = json.dumps(prediction.pop("filename"))
    first = ", ".join(f'"{key}": {shown_value(value)}' for key, value in prediction.items())
    return (
        f'{{"model": {json.dumps(answer["model"])},\n'
        f' "predictions": [{{{first},\n'
        f'                  "probabilities": [{probabilities}],\n'
        f'                  "filename": {filename}}}]}}'
    )


def numbers_and_rest(prediction: dict) -> tuple[list[float], dict]:
    """A prediction's floats in order (probabilities included), and its other values."""
    numbers = [value for _, value in sorted(prediction.items()) if isinstance(value, float)]
    numbers += prediction.get("probabilities", [])
    rest = {key: value for key, value in prediction.items() if not isinstance(value, float | list)}
    return numbers, rest


def test_the_curl_example_shows_what_the_shipped_model_answers(shipped_client) -> None:
    command, shown = curl_example()
    image = PROJECT_ROOT / command.split("file=@", 1)[1].split()[0]
    answer = shipped_client.post("/predict", files={"file": (image.name, image.read_bytes())})
    assert answer.status_code == 200
    real = answer.json()
    hint = f"the README's answer is stale; the real one in its layout:\n{as_readme_shows_it(real)}"
    assert shown.keys() == real.keys() and shown["model"] == real["model"], hint
    [shown_prediction], [real_prediction] = shown["predictions"], real["predictions"]
    assert shown_prediction.keys() == real_prediction.keys(), hint
    shown_numbers, shown_rest = numbers_and_rest(shown_prediction)
    real_numbers, real_rest = numbers_and_rest(real_prediction)
    assert shown_rest == real_rest, hint
    # Two significant digits are shown: rounding moves a value by at most 5%.
    assert shown_numbers == pytest.approx(real_numbers, rel=0.05), hint


def test_the_28x28_sample_is_the_seven_as_predict_prepares_it() -> None:
    seven = (PROJECT_ROOT / "docs" / "seven.png").read_bytes()
    prepared = image_to_array(seven, "auto", ImageLimits(max_pixels=10**6, max_side=1000))
    sample = np.asarray(Image.open(PROJECT_ROOT / "docs" / "seven_28x28.png"))
    np.testing.assert_array_equal(sample, prepared)


def test_the_docker_base_recipe_is_the_smoke_tests() -> None:
    """The documented registry-free base is the one CI builds on, and leaves no tree behind."""
    smoke = (PROJECT_ROOT / "tests" / "container" / "smoke.sh").read_text(encoding="utf-8")
    recipe = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    packages = re.search(r"BASE_PACKAGES=(\S+)", smoke)[1]
    suite = re.search(r"SUITE=(\S+)", smoke)[1]
    assert f"debootstrap --variant=minbase --include={packages} {suite} " in recipe
    assert "rootfs=$(mktemp -d)" in recipe and 'rm -rf "$rootfs"' in recipe
    assert "ARG PYTHON_IMAGE=" in (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--build-arg PYTHON_IMAGE=" in README


def test_the_serving_dockerfile_builds_no_training_stage() -> None:
    """A Docker CLI without buildx builds every stage of the file: none may be training's."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "requirements/serve.txt" in dockerfile and "--require-hashes" in dockerfile
    assert "train" not in re.findall(r"^FROM .*", dockerfile, flags=re.MULTILINE)[-1]
    assert not re.search(r"requirements/train|tensorflow|training/", dockerfile)
    assert "docker build -t mnist-mlp" in README and " --target " not in README


def test_docker_run_publishes_both_ports() -> None:
    run = re.search(r"^docker run .*mnist-mlp:\S+$", README, flags=re.MULTILINE)[0]
    assert "-p 8000:8000" in run and "-p 8001:8001" in run


def test_the_commands_the_readme_runs_are_installed_by_the_package() -> None:
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    commands = set(re.findall(r"\b(mnist-mlp-\w+) ", README))
    assert {"mnist-mlp-serve", "mnist-mlp-train"} <= commands
    assert commands <= set(scripts["project"]["scripts"]), commands
