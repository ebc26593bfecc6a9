#!/usr/bin/env bash
# Developer build: compile xanesnet._core in build/dev and place it in the source tree, so that
# `PYTHONPATH=. pytest` runs against the working copy. Usage: scripts/dev_build.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/dev}
python=${PYTHON:-python}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DXANESNET_BUILD_TESTS=ON \
  -DPython_EXECUTABLE="$(command -v "$python")" \
  -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build"
cp "$build"/_core*.so xanesnet/
