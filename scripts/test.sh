#!/usr/bin/env bash
# Runs every test: builds Kiln, the C++ unit tests (ctest), then the end-to-end tests that
# generate models with real TensorFlow and compare Kiln's outputs with TensorFlow's (pytest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install_deps.sh"
venv="$("$root/scripts/setup_venv.sh")"
KILN_PYTHON="$venv/bin/python" "$root/scripts/build.sh"

echo "== C++ unit tests"
ctest --test-dir "$root/build" --output-on-failure -j "$(nproc)"

echo "== End-to-end tests against TensorFlow"
export KILN_BIN="$root/build/tools/kiln"
export KILN_TEST_MODELS="${KILN_TEST_MODELS:-$root/build/test_models}"
export KILN_PYTHON_DIR="${KILN_PYTHON_DIR:-$root/build/python}"
export TF_CPP_MIN_LOG_LEVEL=2
cd "$root"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python "$@"
