"""Packs what the device machine needs to check Kiln's FP16/BF16 CPU engines against TensorFlow.

The device has no TensorFlow and no Debian packages, so this runs here (with the TF venv):
  - draws inputs for a few zoo models and computes TensorFlow's reference outputs;
  - copies the kiln binary and the shared libraries it needs that a CUDA image may lack
    (oneDNN, protobuf, fmt, onnx_proto, gomp);
  - writes everything to .device/cpu_precision/ (ignored by git), small enough to carry.
Then, on the device: `python3 tests/device/cpu_precision_check.py .device/cpu_precision`.

    ~/.cache/kiln/venv/bin/python tests/device/make_cpu_precision_bundle.py [--models ...]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "models"))
from reference import load_meta, make_inputs, precision_rtol, tf_outputs  # noqa: E402

LIBS = ["libdnnl.so.2", "libprotobuf.so.32", "libfmt.so.9", "libonnx_proto.so", "libgomp.so.1"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mlp_keras3", "cnn_keras3", "mobilenetv2", "bert_keras3"])
    ap.add_argument("--zoo", default=str(ROOT / "build" / "test_models"))
    ap.add_argument("--kiln", default=str(ROOT / "build" / "tools" / "kiln"))
    ap.add_argument("--out", default=str(ROOT / ".device" / "cpu_precision"))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "lib").mkdir(parents=True)
    (out / "bin").mkdir()
    shutil.copy2(args.kiln, out / "bin" / "kiln")
    # The unit tests too, so the BF16 kernel tests that skip on CPUs without BF16 run there
    # (run them with KILN_SOURCE_DIR=<bundle>/src: some load models/demo).
    unit_tests = Path(args.kiln).parents[1] / "kiln_unit_tests"
    if unit_tests.is_file():
        shutil.copy2(unit_tests, out / "bin" / "kiln_unit_tests")
        shutil.copytree(ROOT / "models" / "demo", out / "src" / "models" / "demo")
    ldd = subprocess.run(["ldd", args.kiln], capture_output=True, text=True, check=True).stdout
    for line in ldd.splitlines():
        parts = line.split()
        if len(parts) >= 3 and any(parts[0].startswith(lib) for lib in LIBS):
            shutil.copy2(os.path.realpath(parts[2]), out / "lib" / parts[0])
    rng = np.random.default_rng(args.seed)
    manifest = []
    for name in args.models:
        meta = load_meta(args.zoo, name)
        inputs = make_inputs(meta, rng)
        ref = tf_outputs(os.path.join(args.zoo, name), meta, inputs)
        mdir = out / "models" / name
        shutil.copytree(os.path.join(args.zoo, name), mdir / "saved_model")
        for k, v in inputs.items():
            np.save(mdir / ("in_%s.npy" % k), v)
        for k, v in ref.items():
            np.save(mdir / ("ref_%s.npy" % k), np.asarray(v))
        manifest.append({"name": name, "inputs": sorted(inputs), "outputs": sorted(ref),
                         "shapes": {k: list(v.shape) for k, v in inputs.items()},
                         "fp32_rtol": meta.get("rtol", 1e-5),
                         "rtol": {p: precision_rtol(meta, p) for p in ("FP32", "FP16", "BF16")}})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print("wrote %s (%.1f MB)" % (out, size / 1e6))


if __name__ == "__main__":
    main()
