#!/usr/bin/env bash
# Downloads (once) the header-only cuDNN frontend that the CUDA backend's convolutions are built
# with (PyPI nvidia-cudnn-frontend, pinned; only its include/ is kept) and prints the include
# directory. Safe to re-run: does nothing when the headers are there.
set -euo pipefail
version=1.32.0
dest="${KILN_DEPS:-$HOME/.cache/kiln/deps}/cudnn-frontend-$version"
if [ -f "$dest/include/cudnn_frontend.h" ]; then
  echo "$dest/include"
  exit 0
fi
echo "kiln: downloading the cuDNN frontend headers (nvidia-cudnn-frontend==$version)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.11 \
  --implementation cp --platform manylinux_2_28_x86_64 "nvidia-cudnn-frontend==$version" -d "$tmp/wheel" >&2
python3 - "$tmp"/wheel/*.whl "$tmp/out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith("include/"):
            z.extract(name, sys.argv[2])
PY
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "$dest/include"
