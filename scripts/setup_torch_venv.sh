#!/usr/bin/env bash
# Creates (once) the Python venv with PyTorch and its ONNX exporters that scripts/torch_export_sweep.py
# needs, and prints its path. Not part of the test suite (PyTorch is several GB). torch's wheel
# declares the CUDA toolkit wheels as dependencies; the sweep runs on the CPU, so torch and
# torchvision install with --no-deps, then the pure-Python needs and the few NVIDIA libraries that
# torch's CUDA build loads at import and the CUDA toolkit of this machine does not provide.
# Safe to re-run: the venv is rebuilt only when this script changes.
set -euo pipefail
venv="${KILN_TORCH_VENV:-$HOME/.cache/kiln/torch-venv}"
stamp="$venv/.kiln-script.sha256"
want="$(sha256sum "$0" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv"
  exit 0
fi
echo "kiln: creating the PyTorch venv at $venv (several GB; minutes once)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" --no-deps torch==2.15.0 torchvision==0.29.2 >&2
"${pip[@]}" filelock typing-extensions "setuptools>=77" sympy networkx jinja2 fsspec numpy pillow \
  onnx==1.23.2 onnxruntime onnxscript "transformers==5.25.0" "cuda-bindings<14" ml_dtypes >&2
"${pip[@]}" --no-deps nvidia-cusparselt-cu13 nvidia-nvshmem-cu13 nvidia-cufile nvidia-nccl-cu13 >&2
"$venv/bin/python" -c "import torch, torchvision, transformers, onnxscript" >&2
echo "$want" > "$stamp"
echo "$venv"
