#!/usr/bin/env bash
# Downloads (once) the header-only CUTLASS/CuTe library that the CUDA backend's Hopper int8 matrix
# products are compiled with (PyPI nvidia-cutlass, pinned; only its C++ headers are kept) and
# prints the include directory. Safe to re-run: does nothing when the headers are there.
set -euo pipefail
version=4.2.0.0
dest="${KILN_DEPS:-$HOME/.cache/kiln/deps}/cutlass-$version"
if [ -f "$dest/include/cutlass/cutlass.h" ] && [ -f "$dest/include/cutlass/util/packed_stride.hpp" ]; then
  echo "$dest/include"
  exit 0
fi
echo "kiln: downloading the CUTLASS headers (nvidia-cutlass==$version)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  "nvidia-cutlass==$version" -d "$tmp/wheel" >&2
python3 - "$tmp"/wheel/*.whl "$tmp/out" <<'PY'
import os, sys, zipfile
# The library's headers and its utilities' (cutlass/util: packed strides).
prefixes = ("cutlass_library/source/include/", "cutlass_library/source/tools/util/include/")
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        if prefix and not name.endswith("/"):
            target = os.path.join(sys.argv[2], "include", name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                out.write(src.read())
PY
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "$dest/include"
