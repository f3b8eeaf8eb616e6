"""Checks Kiln's CPU engines at FP32, FP16 and BF16 on the machine it runs on (the device's CPU),
against TensorFlow reference outputs packed by make_cpu_precision_bundle.py. Needs numpy only.

For each model and precision: `kiln convert --precision P --build-shapes ...`, `kiln summary`
(to see whether engines ran that precision or fell back), `kiln run` on the packed inputs,
relative L2 error per output against TensorFlow, and the median of N timed runs.
Bounds (docs/testing.md): FP32 the model's own (1e-5), FP16 2e-2, BF16 5e-2, or the model's own
reduced-precision bound (ResNet50 BF16 0.25), as the bundle's manifest gives them.

    python3 tests/device/cpu_precision_check.py BUNDLE_DIR [--iterations N]
Exit status 1 when any output is outside its bound or any command fails.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RTOL = {"FP16": 2e-2, "BF16": 5e-2}


def run(cmd, env):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print("FAILED: %s\n%s\n%s" % (" ".join(map(str, cmd)), p.stdout[-3000:], p.stderr[-3000:]))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    b = Path(args.bundle).resolve()
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(b / "lib") + ":" + env.get("LD_LIBRARY_PATH", "")
    kiln = b / "bin" / "kiln"
    flags = open("/proc/cpuinfo").read()
    model_name = re.search(r"model name\s*:\s*(.*)", flags)
    print("CPU: %s; cores: %d" % (model_name.group(1) if model_name else "?", os.cpu_count()))
    print("ISA flags: %s" % " ".join(f for f in ["avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"]
                                     if re.search(r"\b%s\b" % f, flags)))
    manifest = json.loads((b / "manifest.json").read_text())
    failures = 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in manifest:
            mdir = b / "models" / m["name"]
            shapes = ",".join("%s:%s" % (k, "x".join(map(str, v))) for k, v in sorted(m["shapes"].items()))
            inputs = ["--input=%s=%s" % (k, mdir / ("in_%s.npy" % k)) for k in m["inputs"]]
            for precision in ["FP32", "FP16", "BF16"]:
                conv = Path(tmp) / ("%s_%s" % (m["name"], precision))
                p = run([kiln, "convert", mdir / "saved_model", conv, "--precision", precision, "--build-shapes", shapes], env)
                if p.returncode != 0:
                    failures += 1
                    continue
                s = run([kiln, "summary", conv], env)
                notes = [l.strip() for l in s.stdout.splitlines() if "not honoured" in l or "Precision" in l]
                outdir = Path(tmp) / ("out_%s_%s" % (m["name"], precision))
                r = run([kiln, "run", conv] + inputs + ["--output-dir", outdir, "--iterations", args.iterations], env)
                if r.returncode != 0:
                    failures += 1
                    continue
                times = sorted(float(t) for t in re.findall(r"run \d+: ([0-9.]+) ms", r.stdout))
                median = times[len(times) // 2] if times else float("nan")
                bound = m["rtol"][precision] if "rtol" in m else m["fp32_rtol"] if precision == "FP32" else RTOL[precision]
                worst = 0.0
                for o in m["outputs"]:
                    ref = np.load(mdir / ("ref_%s.npy" % o)).astype(np.float64)
                    got = np.load(outdir / ("%s.npy" % o)).astype(np.float64)
                    err = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
                    worst = max(worst, err if np.isfinite(err) else np.inf)
                ok = worst <= bound
                failures += 0 if ok else 1
                stats = re.search(r"engines: .*", r.stdout)
                rows.append((m["name"], precision, worst, bound, "ok" if ok else "FAIL", median,
                             stats.group(0) if stats else "", "; ".join(notes)[:160]))
    print("\n| model | precision | rel L2 vs TF | bound | result | median ms (%d runs) | engines | summary notes |" % args.iterations)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %.2e | %.0e | %s | %.2f | %s | %s |" % r)
    print("\n%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
