#!/usr/bin/env bash
# Builds the Python wheel (`pip wheel .`, scikit-build-core) and checks that the installed package
# works on its own: kiln.load and a conversion on the bundled demo model, and the kiln CLI the
# wheel installs. Incremental on re-runs (the wheel's CMake tree is build/wheel/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install_deps.sh"
venv="$("$root/scripts/setup_venv.sh")"
cd "$root"
rm -rf build/dist build/wheel-site
echo "== pip wheel ."
"$venv/bin/pip" wheel --no-build-isolation --no-deps -q -w build/dist .
wheel="$(ls build/dist/kiln-*.whl)"
echo "built $wheel ($(du -h "$wheel" | cut -f1))"
"$venv/bin/pip" install -q --no-deps --target build/wheel-site "$wheel"
echo "== the installed wheel"
cd /tmp
PYTHONPATH="$root/build/wheel-site" "$venv/bin/python" - "$root" <<'PY'
import os, sys, tempfile
import numpy as np
import kiln
root = sys.argv[1]
assert kiln.__file__.startswith(os.path.join(root, "build", "wheel-site")), kiln.__file__
f = kiln.load(os.path.join(root, "models", "demo")).signatures["serving_default"]
x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
out = f(image=x)["output_0"]
c = kiln.Converter(os.path.join(root, "models", "demo"), progress=False)
converted = c.convert()(image=x)["output_0"]
with tempfile.TemporaryDirectory() as d:
    c.save(os.path.join(d, "m"))
    saved = kiln.load(os.path.join(d, "m")).signatures["serving_default"](image=x)["output_0"]
err = max(float(np.linalg.norm(a - out) / np.linalg.norm(out)) for a in (converted, saved))
assert out.shape == (2, 10) and err <= 1e-5, (out.shape, err)
print("kiln %s from the wheel: demo model runs, converts and reloads (relative error %.2g)" % (kiln.__version__, err))
PY
"$root/build/wheel-site/bin/kiln" inspect "$root/models/demo" > /dev/null
echo "kiln CLI from the wheel: ok"
