#!/usr/bin/env python3
"""Packs test-zoo models with TensorFlow's outputs for the GPU machine, which has no TensorFlow.

For each zoo model (tests/models/zoo.py, built into build/test_models), this draws the inputs
the end-to-end tests draw (tests/models/reference.py), runs the SavedModel with TensorFlow here,
and writes into OUT/NAME/:
  model/        the SavedModel, with its tf2onnx export model.onnx when the export is usable
  in/, ref/     the inputs and TensorFlow's outputs (.npy); the ONNX export's inputs are the same
                arrays under its own input names (case.json maps them)
  case.json     outputs, the relative L2 bound per precision (reference.precision_rtol, the
                bounds of docs/testing.md), the build shapes, and the ONNX name maps

tests/device/gpu_zoo_check.py runs the cases on the GPU machine. make_gpu_bundle.py --zoo-cases
calls this. Run with the venv that has TensorFlow:
    ~/.cache/kiln/venv/bin/python tests/device/make_zoo_cases.py --out DIR [--models NAME ...]
"""
import argparse
import json
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "models"))
import reference  # noqa: E402

PRECISIONS = ["FP32", "FP16", "BF16"]


def safe(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def make_case(zoo, name, out):
    meta = reference.load_meta(str(zoo), name)
    case_dir = out / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    (case_dir / "in").mkdir(parents=True)
    (case_dir / "ref").mkdir()
    rng = np.random.default_rng([7, zlib.crc32(name.encode())])
    inputs = reference.make_inputs(meta, rng)
    ref = reference.tf_outputs(str(zoo / name), meta, inputs)
    files = {}
    for i, (k, v) in enumerate(sorted(inputs.items())):
        files[k] = "in/%02d_%s.npy" % (i, safe(k))
        np.save(case_dir / files[k], v)
    for k, v in ref.items():
        np.save(case_dir / "ref" / (safe(k) + ".npy"), v)
    shutil.copytree(zoo / name, case_dir / "model", ignore=shutil.ignore_patterns("*.onnx"))
    case = {
        "name": name,
        "outputs": {k: "ref/%s.npy" % safe(k) for k in ref},
        "rtol": {p: reference.precision_rtol(meta, p) for p in PRECISIONS},
        "inputs": files,
        "build_shapes": ",".join("%s:%s" % (k, "x".join(str(d) for d in v.shape)) for k, v in sorted(inputs.items())),
    }
    info = meta.get("onnx") or {}
    if info.get("status") == "ok":
        shutil.copy(zoo / name / info["file"], case_dir / "model.onnx")
        case["onnx"] = {
            "file": "model.onnx",
            "inputs": {info["input_names"][k]: f for k, f in files.items()},
            "output_files": {k: safe(v) for k, v in info["output_names"].items()},
            "build_shapes": ",".join("%s:%s" % (info["input_names"][k], "x".join(str(d) for d in v.shape))
                                     for k, v in sorted(inputs.items())),
        }
    with open(case_dir / "case.json", "w") as f:
        json.dump(case, f, indent=1)
    return case_dir


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default=str(ROOT / "build" / "test_models"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="*", help="zoo model names (default: every model of the zoo)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    import zoo as zoo_module
    names = args.models or zoo_module.MODEL_NAMES
    zoo, out = Path(args.zoo), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (zoo / (name + ".json")).is_file():
            raise SystemExit("%s is missing from %s: generate the test zoo first (tests/models/zoo.py)" % (name, zoo))
        d = make_case(zoo, name, out)
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
        print("case %s: %.1f MB" % (name, size / 1e6))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
