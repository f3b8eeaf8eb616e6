#!/usr/bin/env python3
"""The test zoo on the GPU against TensorFlow's outputs: each case of make_zoo_cases.py (a zoo
SavedModel, its ONNX export, inputs and TensorFlow's outputs made on a machine with TensorFlow)
is converted for the GPU in FP32, FP16 and BF16 with engines built for the case's shapes, saved,
then run by a second process from the saved model, which must load every engine and build none;
every output must match TensorFlow's within the precision's bound (case.json, docs/testing.md).

    python3 tests/device/gpu_zoo_check.py --kiln BUNDLE/bin/kiln --cases BUNDLE/zoo [--jobs 4]

Prints one row per model, format and precision, and exits 1 when any row fails. Conversions run
in parallel (--jobs): tactic timings then disturb each other, which can change which kernels are
chosen but never what they compute.
"""
import argparse
import concurrent.futures
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

STATS = re.compile(r"engines: (\d+) loaded, (\d+) built; engine runs: (\d+), native fallbacks: (\d+)")


def relative_l2(out, ref):
    o, r = out.astype(np.float64), ref.astype(np.float64)
    err, norm = float(np.linalg.norm((o - r).ravel())), float(np.linalg.norm(r.ravel()))
    return err / norm if norm > 0 else (0.0 if err == 0 else float("inf"))


def check(kiln, device, case_dir, case, fmt, precision, work):
    """One row: (model, format, precision, worst error, bound, stats, problems)."""
    if fmt == "onnx":
        model = case_dir / case["onnx"]["file"]
        inputs = case["onnx"]["inputs"]
        shapes = case["onnx"]["build_shapes"]
        out_files = case["onnx"]["output_files"]
    else:
        model = case_dir / "model"
        inputs = case["inputs"]
        shapes = case["build_shapes"]
        out_files = {k: Path(v).stem for k, v in case["outputs"].items()}
    bound = case["rtol"][precision]
    converted = work / "converted"
    problems = []
    conv = subprocess.run([kiln, "convert", str(model), str(converted), "--device", device, "--precision", precision,
                           "--build-shapes", shapes], capture_output=True, text=True, errors="replace")
    if conv.returncode != 0:
        return None, bound, None, ["convert failed: " + conv.stderr.strip()[-600:]]
    args = [kiln, "run", str(converted), "--output-dir", str(work / "out")]
    for name, f in sorted(inputs.items()):
        args += ["--input", "%s=%s" % (name, case_dir / f)]
    run = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if run.returncode != 0:
        return None, bound, None, ["run failed: " + run.stderr.strip()[-600:]]
    m = STATS.search(run.stdout)
    stats = tuple(int(g) for g in m.groups()) if m else None
    engines = re.search(r"Total number of engines: (\d+)", conv.stdout)
    if not engines:
        problems.append("no engine count in kiln convert's summary")
    elif int(engines.group(1)) == 0:
        pass  # nothing to compile (every op native): nothing to reload
    elif stats is None:
        problems.append("no engine statistics in kiln run's output")
    elif stats[1] != 0 or stats[0] < 1:
        problems.append("the saved model loaded %d engines and built %d (expected >= 1 loaded, 0 built)" % stats[:2])
    worst = 0.0
    for name, ref_file in case["outputs"].items():
        ref = np.load(case_dir / ref_file)
        path = work / "out" / (out_files[name] + ".npy")
        if not path.is_file():
            problems.append("%s: not written" % name)
            continue
        out = np.load(path)
        if out.shape != ref.shape or out.dtype != ref.dtype:
            problems.append("%s: %s %s, expected %s %s" % (name, out.dtype, out.shape, ref.dtype, ref.shape))
            continue
        if np.issubdtype(ref.dtype, np.floating):
            if not np.all(np.isfinite(out)) and np.all(np.isfinite(ref)):
                problems.append("%s: non-finite values where TensorFlow's are finite" % name)
                continue
            err = relative_l2(out, ref)
            worst = max(worst, err)
            if not err <= bound:
                problems.append("%s: relative L2 %.3g > %.3g" % (name, err, bound))
        elif np.any(out != ref):
            problems.append("%s: %d elements differ (exact match required for %s)" % (name, int(np.sum(out != ref)),
                                                                                       ref.dtype))
    return worst, bound, stats, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--precisions", nargs="*", default=["FP32", "FP16", "BF16"])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--device", default="cuda", help="the engines' device (cpu: to try the script without a GPU)")
    args = ap.parse_args()
    cases = sorted(p.parent for p in Path(args.cases).glob("*/case.json"))
    if not cases:
        sys.exit("no cases under %s (tests/device/make_zoo_cases.py makes them)" % args.cases)
    tasks = []
    for case_dir in cases:
        case = json.loads((case_dir / "case.json").read_text())
        for fmt in ["savedmodel"] + (["onnx"] if "onnx" in case else []):
            for precision in args.precisions:
                tasks.append((case_dir, case, fmt, precision))

    def run(task):
        case_dir, case, fmt, precision = task
        with tempfile.TemporaryDirectory() as work:
            return task, check(args.kiln, args.device, case_dir, case, fmt, precision, Path(work))

    failed = 0
    print("%-14s %-10s %-5s %10s %8s  %-22s %s" % ("model", "format", "prec", "rel L2", "bound", "engines", "result"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for (case_dir, case, fmt, precision), (worst, bound, stats, problems) in pool.map(run, tasks):
            engines = "%d loaded %d built %d nat" % (stats[0], stats[1], stats[3]) if stats else "-"
            err = "%.2e" % worst if worst is not None else "-"
            print("%-14s %-10s %-5s %10s %8.0e  %-22s %s" % (case["name"], fmt, precision, err, bound, engines,
                                                           "ok" if not problems else "FAILED: " + "; ".join(problems)),
                  flush=True)
            failed += bool(problems)
    print("%d of %d rows failed" % (failed, len(tasks)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
