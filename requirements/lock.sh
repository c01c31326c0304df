#!/usr/bin/env bash
# Refresh the lock files from the ranges in pyproject.toml, each to the newest release the
# ranges allow:   pip install uv && bash requirements/lock.sh
#
#   all.txt    base + every extra (client, dev, train), resolved together: the one consistent
#              set. The README's commands and CI install with it as constraints (-c). Versions
#              only: pip checks no hashes for an editable install (`pip install -e .` with a
#              hashed constraint is refused), so hashes would make it unusable there.
#   serve.txt  the base dependencies alone, the same pins, with hashes: the serving image
#              installs it with --require-hashes.
#   train.txt  base + train, the same pins, with hashes: the training image.
# --universal resolves for every platform (markers where they differ), so the lock serves
# Linux, macOS and Windows checkouts alike.
set -euo pipefail
cd "$(dirname "$0")/.."

compile() {
    local output=$1
    shift
    uv pip compile pyproject.toml --quiet --no-config --universal --python-version 3.11 \
        --upgrade --custom-compile-command "bash requirements/lock.sh" \
        --output-file "requirements/$output" "$@"
}

compile all.txt --all-extras
compile serve.txt --generate-hashes --constraints requirements/all.txt
compile train.txt --generate-hashes --extra train --constraints requirements/all.txt
