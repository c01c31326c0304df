"""``mnist-mlp predict``: real image files through the real command, in a fresh interpreter,
against the shipped model and tiny real repositories; the answers are the service's own."""

import csv
import io
import json
import os
import pty
import shutil
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.inference.limits import ImageLimits
from service.inference.preprocessing import NO_INK_REASON, image_to_array
from tests.support.images import drawn_seven, encode, mnist_like, png_bytes
from tests.support.repositories import reference, two_versions

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEVEN = PROJECT_ROOT / "docs" / "seven_28x28.png"
LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "grpc", "anyio", "httpx", "multipart")


def run_predict(
    *arguments: str, environment: dict[str, str] | None = None, **streams
) -> subprocess.CompletedProcess:
    """``python -m service.offline predict ...`` (the ``mnist-mlp`` script), with no MNIST_*
    variable but those given; stdout and stderr captured as text unless ``streams`` say
    otherwise (text turns the progress bar's carriage returns into newlines)."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("MNIST_")}
    return subprocess.run(
        [sys.executable, "-m", "service.offline", "predict", *arguments],
        cwd=PROJECT_ROOT,
        env={**inherited, "PYTHONPATH": str(PROJECT_ROOT), **(environment or {})},
        timeout=120,
        **({"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True} | streams),
    )


def image_folder(root: Path) -> Path:
    """Real image files in several formats, a subfolder, a hidden file and a note to skip."""
    folder = root / "images"
    (folder / "more").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    shutil.copy(SEVEN, folder / "a_seven.png")
    (folder / "b_scan.jpg").write_bytes(encode(drawn_seven(), "JPEG", quality=90))
    (folder / "c_mnist.bmp").write_bytes(encode(drawn_seven((60, 80), ink=255, paper=0), "BMP"))
    (folder / "more" / "d_digit.png").write_bytes(png_bytes(mnist_like(3)))
    (folder / ".hidden" / "e.png").write_bytes(png_bytes(mnist_like(4)))
    (folder / "notes.txt").write_text("not an image")
    return folder


def table_rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return image_folder(tmp_path)


def test_one_file_prints_a_table(shipped_model_path: Path) -> None:
    result = run_predict(str(SEVEN.relative_to(PROJECT_ROOT)))

    assert result.returncode == 0, result.stderr
    header, row = table_rows(result.stdout)
    assert header == ["file", "digit", "confidence", "is_digit", "digit_score"]
    assert row[:2] == ["docs/seven_28x28.png", "7"]
    assert row[2].endswith("%") and row[3] == "yes" and 0.0 <= float(row[4]) <= 1.0
    [summary] = result.stderr.splitlines()
    assert summary.startswith("mnist-mlp predict: 1 file classified by mnist_mlp version ")


def test_the_answers_are_the_services(folder: Path, shipped_client: TestClient) -> None:
    result = run_predict("--json", str(folder))
    offline = json.loads(result.stdout)

    names = ["a_seven.png", "b_scan.jpg", "c_mnist.bmp", "more/d_digit.png"]
    assert result.returncode == 0, result.stderr
    assert [item["filename"] for item in offline["predictions"]] == [
        str(folder / name) for name in names
    ]
    files = [("files", (name, (folder / name).read_bytes())) for name in names]
    served = shipped_client.post("/predict", files=files).json()
    assert offline["model"] == served["model"]
    for mine, theirs in zip(offline["predictions"], served["predictions"], strict=True):
        assert set(mine) == set(theirs)
        for key in ("digit", "is_digit", "not_digit_reason"):
            assert mine.get(key) == theirs.get(key), key
        for key in ("confidence", "digit_score", "probabilities"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-6), key
        assert isinstance(mine["digit_score"], float) and isinstance(mine["is_digit"], bool)


def test_a_bad_file_is_one_line_and_the_others_are_still_classified(folder: Path) -> None:
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "text.png").write_text("hello")

    result = run_predict(str(folder), str(folder / "absent.png"))

    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"mnist-mlp predict: {folder / 'broken.png'}: the PNG image is")
    assert errors[1] == (
        f"mnist-mlp predict: {folder / 'text.png'}: not an image this service reads: expected "
        "PNG, JPEG, GIF, BMP, TIFF or WebP bytes"
    )
    assert errors[2] == f"mnist-mlp predict: {folder / 'absent.png'}: no such file or folder"
    assert errors[3].startswith("mnist-mlp predict: 4 of 7 files classified by mnist_mlp")
    assert "Traceback" not in result.stderr
    header, *rows = table_rows(result.stdout)
    assert header == ["file", "digit", "confidence", "is_digit", "digit_score", "note"]
    assert [row[0] for row in rows] == [
        str(folder / name)
        for name in ("a_seven.png", "b_scan.jpg", "broken.png", "c_mnist.bmp",
                     "more/d_digit.png", "text.png", "absent.png")
    ]  # fmt: skip
    assert rows[2][1:6] == ["-", "-", "-", "-", "the"]
    assert rows[0][1] == "7"


def test_csv_has_a_row_per_file_with_every_probability(folder: Path) -> None:
    result = run_predict("--csv", str(folder / "a_seven.png"), str(folder / "nothing-here"))

    assert result.returncode == 1
    header, seven, missing = csv.reader(io.StringIO(result.stdout))
    assert header == [
        "filename", "digit", "confidence", "is_digit", "digit_score", "not_digit_reason",
        *(f"probability_{digit}" for digit in range(10)), "error",
    ]  # fmt: skip
    assert seven[1] == "7" and seven[3] == "true" and seven[5] == "" and seven[-1] == ""
    assert 0.0 <= float(seven[4]) <= 1.0
    probabilities = [float(value) for value in seven[6:16]]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert float(seven[2]) == max(probabilities)
    assert missing[0] == str(folder / "nothing-here") and missing[-1] == "no such file or folder"


def test_an_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images")

    result = run_predict(str(tmp_path))

    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(
        f"mnist-mlp predict: {tmp_path}: no image files in this folder (looked for .bmp, .gif"
    )


def test_versions_and_repository_as_the_service_names_them(tmp_path: Path) -> None:
    (tmp_path / "repository").mkdir()
    repository = two_versions(tmp_path / "repository")
    image = tmp_path / "digit.png"
    image.write_bytes(png_bytes(mnist_like(5)))
    pixels = image_to_array(image.read_bytes(), "auto", LIMITS)[np.newaxis]

    by_flag = run_predict(
        "--json", "--model-repository", str(repository), str(image),
        environment={"MNIST_MODEL_PATH": str(PROJECT_ROOT / "models" / "mnist_mlp.onnx")},
    )  # fmt: skip
    by_setting = run_predict(
        "--json", "--model-version", "1", str(image),
        environment={"MNIST_MODEL_REPOSITORY": str(repository)},
    )  # fmt: skip

    newest, older = json.loads(by_flag.stdout), json.loads(by_setting.stdout)
    assert newest["model"] == {"name": "mnist_mlp", "version": "2"}
    assert older["model"] == {"name": "mnist_mlp", "version": "1"}
    for answer, model_file in ((newest, "second.onnx"), (older, "first.onnx")):
        expected = reference(repository / model_file, pixels)[0]
        assert answer["predictions"][0]["probabilities"] == pytest.approx(expected, abs=1e-6)


def test_an_unknown_version_is_one_line(tmp_path: Path) -> None:
    repository = two_versions(tmp_path)

    result = run_predict("--model-repository", str(repository), "--model-version", "3", str(SEVEN))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "mnist-mlp predict: model 'mnist_mlp' has no version '3'; its versions: '1', '2'"
    ]


@pytest.mark.parametrize("version", ["20261206-56941f5d", "01", "9223372036854775808"])
def test_a_version_that_is_not_a_positive_integer_is_one_line(version: str) -> None:
    result = run_predict("--model-version", version, str(SEVEN))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"mnist-mlp predict: error: argument --model-version: {version!r}: expected a positive "
        'integer such as "1", as Triton names versions'
    ]


def test_a_model_that_cannot_load_is_one_line(tmp_path: Path) -> None:
    result = run_predict("--model-repository", str(tmp_path), str(SEVEN))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"mnist-mlp predict: model repository {tmp_path}: no *.onnx model in it"
    ]


@pytest.mark.parametrize(
    ("arguments", "environment", "line"),
    [
        (["--max-batch-size", "0"], {},
         "mnist-mlp predict: invalid setting: MNIST_MAX_BATCH_SIZE: Input should be greater"),
        ([], {"MNIST_API_KEYS": "not json"},
         "mnist-mlp predict: invalid setting: MNIST_API_KEYS is not valid JSON"),
        (["--max-batch-size", "many"], {},
         "mnist-mlp predict: error: argument --max-batch-size: invalid int value: 'many'"),
        (["--json", "--csv"], {},
         "mnist-mlp predict: error: argument --csv: not allowed with argument --json"),
    ],
    ids=["batch-size", "api-keys", "not-a-number", "two-formats"],
)  # fmt: skip
def test_bad_arguments_and_settings_are_one_line(
    arguments: list[str], environment: dict[str, str], line: str
) -> None:
    result = run_predict(*arguments, str(SEVEN), environment=environment)

    assert result.returncode == 2
    [error] = result.stderr.splitlines()
    assert error.startswith(line), error


def test_the_service_image_limits_apply(folder: Path) -> None:
    result = run_predict(str(folder / "b_scan.jpg"), environment={"MNIST_MAX_IMAGE_BYTES": "100"})

    assert result.returncode == 1
    size = (folder / "b_scan.jpg").stat().st_size
    assert result.stderr.splitlines()[0] == (
        f"mnist-mlp predict: {folder / 'b_scan.jpg'}: the file is {size} bytes; at most 100 "
        "are allowed (MNIST_MAX_IMAGE_BYTES)"
    )


def test_small_batches_give_the_same_answers(folder: Path, shipped_model_path: Path) -> None:
    whole = json.loads(run_predict("--json", str(folder)).stdout)
    in_pairs = json.loads(run_predict("--json", "--max-batch-size", "2", str(folder)).stdout)

    assert in_pairs == whole


def test_progress_bar_when_asked(folder: Path) -> None:
    result = run_predict("--progress", str(folder), text=False)

    bar, summary = result.stderr.decode().split("\n")[:2]
    assert bar.startswith("\rclassifying 1/4 [")
    assert (
        bar.rstrip().split("\r")[-1].startswith("classifying 4/4 [########################] 100%")
    )
    assert summary.startswith("mnist-mlp predict: 4 files classified")


def test_no_progress_bar_into_a_pipe_unless_asked(folder: Path) -> None:
    for arguments in ([str(folder)], ["--no-progress", str(folder)], ["--progress", str(SEVEN)]):
        stderr = run_predict(*arguments, text=False).stderr
        assert (b"\r" in stderr) == (arguments[0] == "--progress"), arguments


def test_progress_bar_on_a_terminal(folder: Path) -> None:
    controller, terminal = pty.openpty()
    with os.fdopen(controller, "rb", buffering=0) as screen:
        result = run_predict(
            str(folder), stderr=terminal, capture_output=False, stdout=subprocess.PIPE
        )
        os.close(terminal)
        shown = screen.read(65536).decode()

    assert result.returncode == 0
    assert "classifying 4/4 [########################] 100%" in shown


def test_a_closed_pipe_is_no_traceback(folder: Path) -> None:
    for _ in range(30):
        shutil.copy(folder / "a_seven.png", folder / f"copy_{_:02d}.png")
    command = [sys.executable, "-m", "service.offline", "predict", "--json", str(folder)]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in error


def test_no_web_framework_is_imported() -> None:
    probe = (
        "import sys, service.offline.cli; "
        f"print(sorted(name for name in sys.modules if name.split('.')[0] in {WEB_FRAMEWORKS}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_console_script_is_declared() -> None:
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert set(scripts) >= {"mnist-mlp", "mnist-mlp-serve", "mnist-mlp-train"}
    module, function = scripts["mnist-mlp"].split(":")
    assert getattr(import_module(module), function).__name__ == "main"


def test_the_command_is_required_and_listed() -> None:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("MNIST_")}
    command = [sys.executable, "-m", "service.offline"]
    bare = subprocess.run(command, env=inherited, capture_output=True, text=True, cwd=PROJECT_ROOT)
    listed = subprocess.run(
        [*command, "--help"], env=inherited, capture_output=True, text=True, cwd=PROJECT_ROOT
    )

    assert bare.returncode == 2
    assert bare.stderr.splitlines() == [
        "mnist-mlp: error: the following arguments are required: COMMAND"
    ]
    assert listed.returncode == 0 and "predict" in listed.stdout


def test_a_blank_image_is_not_a_digit_and_says_why(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    blank.write_bytes(png_bytes(np.full((120, 90), 255, dtype=np.uint8)))

    table = run_predict(str(blank))
    answer = json.loads(run_predict("--json", str(blank)).stdout)["predictions"][0]

    assert table.returncode == 0, table.stderr
    header, row = table_rows(table.stdout)
    assert header[-1] == "note" and row[3] == "no"
    assert " ".join(row[5:]) == NO_INK_REASON
    assert answer["is_digit"] is False and answer["not_digit_reason"] == NO_INK_REASON


def test_a_model_without_digit_score_answers_with_none(tmp_path: Path) -> None:
    repository = two_versions(tmp_path)

    table = run_predict("--model-repository", str(repository), str(SEVEN))
    answer = json.loads(
        run_predict("--json", "--model-repository", str(repository), str(SEVEN)).stdout
    )

    _, row = table_rows(table.stdout)
    assert row[3:] == ["yes", "-"]
    prediction = answer["predictions"][0]
    assert prediction["is_digit"] is True and prediction["digit_score"] is None
