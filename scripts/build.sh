#!/usr/bin/env bash
# Configures and builds Kiln in build/ (Release). Incremental on re-runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install_deps.sh"
# With the CUDA toolkit: the cuDNN frontend headers for the CUDA backend's convolutions and the
# CUTLASS headers for its Hopper int8 products.
extra=()
if command -v nvcc > /dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  if frontend="$("$root/scripts/fetch_cudnn_frontend.sh")"; then
    extra+=("-DKILN_CUDNN_FRONTEND_INCLUDE=$frontend")
  else
    echo "kiln: could not fetch the cuDNN frontend; CUDA convolutions will run natively" >&2
  fi
  if cutlass="$("$root/scripts/fetch_cutlass.sh")"; then
    extra+=("-DKILN_CUTLASS_INCLUDE=$cutlass")
  else
    echo "kiln: could not fetch CUTLASS; Hopper int8 products will use cuBLASLt only" >&2
  fi
fi
# KILN_PYTHON (scripts/test.sh sets it to the test venv's python, which has nanobind): build the
# Python extension for that interpreter, and fail if it cannot be.
if [ -n "${KILN_PYTHON:-}" ]; then
  extra+=("-DPython_EXECUTABLE=$KILN_PYTHON" "-DKILN_BUILD_PYTHON=ON")
fi
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" > "$root/build.cmake.log" 2>&1 || { cat "$root/build.cmake.log"; exit 1; }
rm -f "$root/build.cmake.log"
cmake --build "$root/build" -j "$(nproc)"
