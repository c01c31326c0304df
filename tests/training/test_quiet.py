"""TensorFlow's C++ log lines are dropped from stderr; everything else still reaches it."""

from __future__ import annotations

import os
import subprocess
import sys

from training.quiet import is_native_log_line

NATIVE_LINES = [
    b"I0000 00:00:1796116973.325294   12683 port.cc:153] oneDNN custom operations are on.",
    b"E0000 00:00:1796116975.337077   12683 cuda_platform.cc:52] failed call to cuInit",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild",
]


def test_absl_lines_are_recognised_and_ordinary_ones_are_not() -> None:
    assert all(is_native_log_line(line) for line in NATIVE_LINES)
    assert not is_native_log_line(b"mnist-mlp-train: error: /data: no such directory")
    assert not is_native_log_line(b"Epoch 1/20")


def test_only_native_lines_are_filtered_from_file_descriptor_2() -> None:
    script = (
        "import os, sys\n"
        "from training.quiet import without_native_logs\n"
        "with without_native_logs():\n"
        f"    os.write(2, b'{NATIVE_LINES[0].decode()}\\n')\n"
        "    os.write(2, b'kept by the filter\\n')\n"
        "    print('a python error line', file=sys.stderr)\n"
        "print('after the filter', file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        timeout=60,
    )

    assert result.returncode == 0
    assert result.stderr.decode().splitlines() == [
        "kept by the filter",
        "a python error line",
        "after the filter",
    ]
