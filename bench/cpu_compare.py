#!/usr/bin/env python3
"""Kiln vs TensorFlow vs ONNX Runtime on the CPU, in one run.

    python bench/cpu_compare.py [--quick] [--threads T] [--models resnet50 ...]
                                [--batches 1,8] [--seq 128] [--json-out FILE]

For each zoo model (tests/models/zoo.py: resnet50, mobilenetv2, bert_keras3) and batch:
  Kiln   FP32 engines: `kiln convert MODEL OUT --build-shapes ...` (engines built for this
         batch), then `kiln bench OUT --json` (one caller thread; oneDNN's OpenMP team is
         OMP_NUM_THREADS=T; chain / reference kernels are single-threaded).
  TF     the original SavedModel's serving signature (a concrete tf.function), intra-op
         threads T, inter-op threads 1 (oneDNN on, TF's default on x86).
  ORT    the zoo's tf2onnx export (model.onnx, opset 17), CPU execution provider,
         ORT_ENABLE_ALL, intra-op threads T, inter-op threads 1, sequential execution.
--no-spin: Kiln runs with OMP_WAIT_POLICY=passive and ORT with allow_spinning=0 (TF has no
such knob). On a loaded machine libgomp's spin-waiting OpenMP workers take the core that the
single-threaded kernels between oneDNN calls need (see docs/benchmarks.md).
Protocol, the same for all three: W warmup iterations, then back-to-back calls for D seconds
from one thread; throughput = calls / elapsed wall time (samples/s = batch x calls/s).
--repeat R interleaves R such rounds (Kiln, TF, ORT, Kiln, ...) and reports the best of each,
which makes a comparison on a shared machine less a comparison of moments of load.
--kiln-baseline OTHER_KILN also converts and times each model with another kiln binary (an
older build, say), interleaved with the first in every round, and reports new/baseline: the
check that a change made nothing slower, measured under the same load.
--int8 adds INT8 rows: the same calibration batches (--int8-batches N of --int8-batch-size
random inputs, drawn like the measured ones) feed Kiln's INT8 conversion (`kiln convert
--precision INT8 --calibration-data DIR --calibrator C`, of the SavedModel and of model.onnx) and
ONNX Runtime's quantize_static (QDQ, per-channel int8 weights, uint8 activations, calibration
method C) of model.onnx; both are timed in the same rounds as the FP32 runs and compared with
TF's FP32 outputs (quantization error, not a pass/fail bound).
The three outputs on one identical input are compared (relative L2 against TF; Kiln's
through `kiln run --input`). The hook `kiln_onnx_bench()` also times Kiln on model.onnx:
until Kiln's ONNX frontend lands it prints 'n/a' with the reason.

Needs the venv of scripts/setup_venv.sh (tensorflow-cpu, onnxruntime, tf2onnx) and a built
kiln (build/tools/kiln or --kiln). Test models come from KILN_TEST_MODELS (default
build/test_models); missing or stale ones (and their ONNX exports) are generated first.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "models"))

import numpy as np  # noqa: E402

import reference  # noqa: E402

DEFAULT_MODELS = ["resnet50", "mobilenetv2", "bert_keras3"]


def log(msg):
    print("[cpu_compare] " + msg, file=sys.stderr, flush=True)


def cpu_model_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rel_l2(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    den = np.linalg.norm(ref)
    num = np.linalg.norm(got - ref)
    return float(num / den) if den > 0 else float(num)


def timed_loop(call, warmup, duration):
    """The protocol kiln bench uses: `warmup` calls, then calls for `duration` seconds."""
    for _ in range(warmup):
        call()
    lat = []
    start = time.perf_counter()
    deadline = start + duration
    while True:
        s = time.perf_counter()
        call()
        e = time.perf_counter()
        lat.append((e - s) * 1e3)
        if e >= deadline:
            break
    wall = time.perf_counter() - start
    lat.sort()
    return {"iterations": len(lat), "wall_s": wall, "inferences_per_s": len(lat) / wall,
            "median_ms": lat[len(lat) // 2], "min_ms": lat[0]}


# ---------------------------------------------------------------------------- Kiln

def run_kiln(cmd, env, timeout=3600):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", env=env, timeout=timeout)


def first_error_line(proc):
    lines = [l for l in (proc.stderr or "").splitlines() if "error" in l.lower()]
    return (lines or (proc.stderr or "").strip().splitlines() or ["exit %d" % proc.returncode])[-1][:200]


def shapes_arg(inputs):
    return ",".join("%s:%s" % (n, "x".join(str(d) for d in a.shape)) for n, a in sorted(inputs.items()))


def kiln_bench(kiln, model_path, inputs, args, env):
    proc = run_kiln([kiln, "bench", model_path, "--json", "--shapes", shapes_arg(inputs),
                     "--warmup", str(args.warmup), "--duration", str(args.duration)], env)
    if proc.returncode != 0:
        return None, first_error_line(proc)
    return json.loads(proc.stdout), None


def kiln_convert(kiln, model_dir, inputs, args, env, work, extra=()):
    out = os.path.join(work, "converted")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    proc = run_kiln([kiln, "convert", model_dir, out, "--build-shapes", shapes_arg(inputs)] + list(extra), env)
    if proc.returncode != 0:
        return None, None, "convert: " + first_error_line(proc)
    convert_s = time.time() - t0
    # The same input as TF and ORT, for the output check.
    in_dir = os.path.join(work, "in")
    out_dir = os.path.join(work, "out")
    os.makedirs(in_dir, exist_ok=True)
    run_args = [kiln, "run", out, "--output-dir", out_dir]
    for i, (name, arr) in enumerate(sorted(inputs.items())):
        p = os.path.join(in_dir, "%02d.npy" % i)
        np.save(p, arr)
        run_args += ["--input", "%s=%s" % (name, p)]
    proc = run_kiln(run_args, env)
    if proc.returncode != 0:
        return None, None, "run: " + first_error_line(proc)
    outputs = {}
    for f in os.listdir(out_dir):
        outputs[f[:-4]] = np.load(os.path.join(out_dir, f))
    return out, outputs, None


def kiln_onnx_bench(kiln, onnx_path, inputs, args, env):
    """HOOK (Kiln's ONNX frontend): time `kiln bench MODEL/model.onnx` (converted in memory to
    FP32 engines, like a SavedModel). Until `kiln::LoadModel` / `kiln::Converter` accept .onnx
    this fails and the table shows 'n/a' with the reason. Inputs are matched by the ONNX graph's
    input names, which tf2onnx keeps equal to the signature's for the zoo models."""
    if not onnx_path or not os.path.isfile(onnx_path):
        return None, "no ONNX export"
    return kiln_bench(kiln, onnx_path, inputs, args, env)


def calibration_batches(meta, args, dims):
    """--int8-batches batches of --int8-batch-size inputs, drawn like the measured ones (other seeds)."""
    return [reference.make_inputs(meta, np.random.default_rng(1000 + i), batch=args.int8_batch_size, dims=dims)
            for i in range(args.int8_batches)]


def write_calibration_dir(batches, path):
    """DIR/bNNN/<input>.npy: the layout of kiln's --calibration-data."""
    for i, batch in enumerate(batches):
        d = os.path.join(path, "b%03d" % i)
        os.makedirs(d)
        for name, arr in batch.items():
            np.save(os.path.join(d, name + ".npy"), arr)
    return path


def kiln_int8_extra(calib_dir, args):
    return ["--precision", "INT8", "--calibration-data", calib_dir, "--calibrator", args.int8_calibrator]


def ort_quantize(onnx_path, onnx_meta, batches, args, out_path):
    """ONNX Runtime's own INT8: quantize_static (QDQ, per-channel int8 weights, uint8 activations)."""
    from onnxruntime import quantization as q
    in_names = onnx_meta.get("input_names") or {k: k for k in batches[0]}

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{in_names[k]: v for k, v in b.items()} for b in batches])

        def get_next(self):
            return next(self.it, None)
    method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
              "percentile": q.CalibrationMethod.Percentile}[args.int8_calibrator]
    t0 = time.time()
    q.quantize_static(onnx_path, out_path, Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, calibrate_method=method)
    log("ORT quantize_static: %.1f s" % (time.time() - t0))
    return out_path


# ---------------------------------------------------------------------------- TF, ORT

_TF_CONFIGURED = False


def tf_prepare(model_dir, meta, inputs, args):
    global _TF_CONFIGURED
    import tensorflow as tf
    if not _TF_CONFIGURED:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        _TF_CONFIGURED = True
    loaded = tf.saved_model.load(model_dir, tags=meta.get("tags", ["serve"]))
    fn = loaded.signatures[meta.get("signature_key", "serving_default")]
    feeds = {k: tf.constant(v) for k, v in inputs.items()}

    def call():
        return {k: v.numpy() for k, v in fn(**feeds).items()}
    outputs = call()
    return (lambda: timed_loop(call, args.warmup, args.duration)), outputs


def ort_prepare(onnx_path, onnx_meta, meta, inputs, args):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if args.no_spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    in_names = onnx_meta.get("input_names") or {k: k for k in inputs}
    out_names = onnx_meta.get("output_names") or {k: k for k in meta["outputs"]}
    feeds = {in_names[k]: v for k, v in inputs.items()}
    names = [out_names[o] for o in meta["outputs"]]

    def call():
        return sess.run(names, feeds)
    outputs = dict(zip(meta["outputs"], call()))
    return (lambda: timed_loop(call, args.warmup, args.duration)), outputs


# ---------------------------------------------------------------------------- main

def fmt_num(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run: warmup 2, 2 s per measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="intra-op threads for all three (default: all cores, %(default)s)")
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--seq", type=int, default=128, help="sequence length of bert_keras3")
    ap.add_argument("--warmup", type=int, default=None, help="warmup iterations (default 5; --quick 2)")
    ap.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 10; --quick 2)")
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "tools", "kiln"))
    ap.add_argument("--models-dir", default=os.environ.get("KILN_TEST_MODELS") or os.path.join(REPO, "build", "test_models"))
    ap.add_argument("--repeat", type=int, default=1,
                    help="interleaved measurement rounds per framework; the best round is reported")
    ap.add_argument("--json-out", help="also write all results as JSON here")
    ap.add_argument("--no-spin", action="store_true",
                    help="idle threads sleep instead of spinning: Kiln OMP_WAIT_POLICY=passive, ORT "
                         "session.intra_op.allow_spinning=0 (TF has no such knob); helps on a loaded machine")
    ap.add_argument("--no-kiln-onnx", action="store_true", help="skip the Kiln-on-.onnx hook")
    ap.add_argument("--kiln-baseline", help="another kiln binary (an older build) timed in the same rounds; "
                                            "adds the ratio Kiln/baseline")
    ap.add_argument("--keep-work", metavar="DIR",
                    help="write the converted models, calibration data and ORT's QDQ models under DIR and keep them "
                         "(for profiling a row with kiln bench --profile-layers); default: a temporary folder, removed")
    ap.add_argument("--int8", action="store_true", help="add INT8 rows: Kiln INT8 vs Kiln FP32 vs ORT quantize_static")
    ap.add_argument("--int8-batches", type=int, default=4, help="calibration batches (default %(default)s)")
    ap.add_argument("--int8-batch-size", type=int, default=4, help="inputs per calibration batch (default %(default)s)")
    ap.add_argument("--int8-calibrator", default="minmax", choices=["minmax", "entropy", "percentile"],
                    help="calibration method for both Kiln and ORT (default %(default)s)")
    args = ap.parse_args(argv)
    if args.warmup is None:
        args.warmup = 2 if args.quick else 5
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    batches = [int(b) for b in args.batches.split(",")]
    if not os.path.isfile(args.kiln):
        ap.error("kiln not found at %s (build it or pass --kiln)" % args.kiln)
    if args.kiln_baseline and not os.path.isfile(args.kiln_baseline):
        ap.error("baseline kiln not found at %s" % args.kiln_baseline)

    # The test models and their ONNX exports (cheap when the stamps are up to date).
    cmd = [sys.executable, os.path.join(REPO, "tests", "models", "zoo.py"), "--out", args.models_dir,
           "--only"] + args.models
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=sys.stderr)

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    if args.no_spin:
        env["OMP_WAIT_POLICY"] = "passive"
    load_before = os.getloadavg()
    started = datetime.datetime.now()
    rows = []
    if args.keep_work:
        os.makedirs(args.keep_work, exist_ok=True)
        work_root = tempfile.mkdtemp(prefix="kiln-cpu-compare-", dir=args.keep_work)
    else:
        work_root = tempfile.mkdtemp(prefix="kiln-cpu-compare-")
    try:
        for name in args.models:
            meta = reference.load_meta(args.models_dir, name)
            model_dir = os.path.join(args.models_dir, name)
            onnx_meta = meta.get("onnx") or {}
            onnx_path = (os.path.join(model_dir, onnx_meta["file"])
                         if onnx_meta.get("file") and onnx_meta.get("status") == "ok" else None)
            for batch in batches:
                dims = {"seq": args.seq} if any("seq" in (s.get("dim_names") or [])
                                                for s in meta["inputs"].values()) else None
                inputs = reference.make_inputs(meta, np.random.default_rng(batch), batch=batch, dims=dims)
                row = {"model": name, "batch": batch,
                       "shapes": {k: list(v.shape) for k, v in inputs.items()}}
                log("%s batch %d: %s" % (name, batch, shapes_arg(inputs)))
                work = os.path.join(work_root, "%s_b%d" % (name, batch))
                os.makedirs(work)
                converted, k_out, k_err = kiln_convert(args.kiln, model_dir, inputs, args, env, work)
                base_converted, b_out, b_err = None, None, None
                if args.kiln_baseline:
                    base_work = os.path.join(work, "baseline")
                    os.makedirs(base_work)
                    base_converted, b_out, b_err = kiln_convert(args.kiln_baseline, model_dir, inputs, args, env,
                                                                base_work)
                int8 = {}
                if args.int8:
                    cal = calibration_batches(meta, args, dims)
                    cal_dir = write_calibration_dir(cal, os.path.join(work, "calibration"))
                    for key, src in (("kiln_int8", model_dir), ("kiln_int8_onnx", onnx_path)):
                        if not src:
                            int8[key] = (None, None, "no ONNX export")
                            continue
                        w = os.path.join(work, key)
                        os.makedirs(w)
                        int8[key] = kiln_convert(args.kiln, src, inputs, args, env, w, kiln_int8_extra(cal_dir, args))
                    if onnx_path:
                        try:
                            q_path = ort_quantize(onnx_path, onnx_meta, cal, args, os.path.join(work, "ort_int8.onnx"))
                            int8["ort_int8"] = ort_prepare(q_path, onnx_meta, meta, inputs, args) + (None,)
                            # Kiln running ORT's own QDQ model: its quantization as written.
                            w = os.path.join(work, "kiln_ort_qdq")
                            os.makedirs(w)
                            int8["kiln_ort_qdq"] = kiln_convert(args.kiln, q_path, inputs, args, env, w,
                                                                ["--precision", "INT8", "--no-calibration"])
                        except Exception as e:  # noqa: BLE001 - reported in the table
                            int8["ort_int8"] = (None, None, "quantize_static: %s" % str(e).splitlines()[0][:160])
                            int8["kiln_ort_qdq"] = (None, None, "no QDQ model")
                    else:
                        int8["ort_int8"] = (None, None, "no ONNX export")
                        int8["kiln_ort_qdq"] = (None, None, "no ONNX export")
                tf_run, t_out = tf_prepare(model_dir, meta, inputs, args)
                if onnx_path:
                    ort_run, o_out = ort_prepare(onnx_path, onnx_meta, meta, inputs, args)
                    row["ort_error"] = None
                else:
                    ort_run, o_out = None, None
                    row["ort_error"] = onnx_meta.get("error") or "no ONNX export"
                # Interleaved rounds (Kiln, TF, ORT, Kiln on .onnx); the best round of each counts.
                rounds = {"kiln": [], "kiln_base": [], "tf": [], "ort": [], "kiln_onnx": [],
                          "kiln_int8": [], "kiln_int8_onnx": [], "kiln_ort_qdq": [], "ort_int8": []}
                int8_err = {k: v[2] for k, v in int8.items()}
                ko_err = "skipped" if args.no_kiln_onnx else None
                for rnd in range(args.repeat):
                    if converted:
                        res, err = kiln_bench(args.kiln, converted, inputs, args, env)
                        if res is None:
                            k_err = err
                        else:
                            rounds["kiln"].append(res)
                    if base_converted:
                        res, err = kiln_bench(args.kiln_baseline, base_converted, inputs, args, env)
                        if res is None:
                            b_err = err
                        else:
                            rounds["kiln_base"].append(res)
                    for key in ("kiln_int8", "kiln_int8_onnx", "kiln_ort_qdq"):
                        if key in int8 and int8[key][0]:
                            res, err = kiln_bench(args.kiln, int8[key][0], inputs, args, env)
                            if res is None:
                                int8_err[key] = err
                            else:
                                rounds[key].append(res)
                    if "ort_int8" in int8 and int8["ort_int8"][0]:
                        rounds["ort_int8"].append(int8["ort_int8"][0]())
                    rounds["tf"].append(tf_run())
                    if ort_run:
                        rounds["ort"].append(ort_run())
                    if not args.no_kiln_onnx and ko_err is None:
                        res, err = kiln_onnx_bench(args.kiln, onnx_path, inputs, args, env)
                        if res is None:
                            ko_err = err  # HOOK: n/a until Kiln loads .onnx; not retried
                        else:
                            rounds["kiln_onnx"].append(res)
                    log("%s batch %d round %d/%d: kiln %s, tf %.2f, ort %s inferences/s" % (
                        name, batch, rnd + 1, args.repeat,
                        fmt_num(rounds["kiln"][-1]["throughput"]["inferences_per_s"] if rounds["kiln"] else None, "%.2f"),
                        rounds["tf"][-1]["inferences_per_s"],
                        fmt_num(rounds["ort"][-1]["inferences_per_s"] if rounds["ort"] else None, "%.2f")))
                best_k = max(rounds["kiln"], key=lambda r: r["throughput"]["inferences_per_s"], default=None)
                best_ko = max(rounds["kiln_onnx"], key=lambda r: r["throughput"]["inferences_per_s"], default=None)
                row["kiln"], row["kiln_error"] = best_k, (None if best_k else k_err)
                best_b = max(rounds["kiln_base"], key=lambda r: r["throughput"]["inferences_per_s"], default=None)
                row["kiln_base"], row["kiln_base_error"] = best_b, (None if best_b else b_err)
                row["rel_l2_kiln_base"] = (max(rel_l2(k_out[o], b_out[o]) for o in meta["outputs"])
                                           if k_out and b_out else None)
                row["tf"] = max(rounds["tf"], key=lambda r: r["inferences_per_s"])
                if args.int8:
                    for key in ("kiln_int8", "kiln_int8_onnx", "kiln_ort_qdq"):
                        best = max(rounds[key], key=lambda r: r["throughput"]["inferences_per_s"], default=None)
                        row[key], row[key + "_error"] = best, (None if best else int8_err.get(key))
                        outs = int8[key][1]
                        row["rel_l2_%s_tf" % key] = (max(rel_l2(outs[o], t_out[o]) for o in meta["outputs"])
                                                     if outs else None)
                    row["ort_int8"] = max(rounds["ort_int8"], key=lambda r: r["inferences_per_s"], default=None)
                    row["ort_int8_error"] = None if row["ort_int8"] else int8_err.get("ort_int8")
                    o8 = int8["ort_int8"][1]
                    row["rel_l2_ort_int8_tf"] = (max(rel_l2(o8[o], t_out[o]) for o in meta["outputs"]) if o8 else None)
                row["ort"] = max(rounds["ort"], key=lambda r: r["inferences_per_s"], default=None)
                row["kiln_onnx"], row["kiln_onnx_error"] = best_ko, (None if best_ko else ko_err)
                row["rounds_inferences_per_s"] = {
                    "kiln": [r["throughput"]["inferences_per_s"] for r in rounds["kiln"]],
                    "kiln_base": [r["throughput"]["inferences_per_s"] for r in rounds["kiln_base"]],
                    "tf": [r["inferences_per_s"] for r in rounds["tf"]],
                    "ort": [r["inferences_per_s"] for r in rounds["ort"]],
                    "kiln_onnx": [r["throughput"]["inferences_per_s"] for r in rounds["kiln_onnx"]],
                    "kiln_int8": [r["throughput"]["inferences_per_s"] for r in rounds["kiln_int8"]],
                    "kiln_int8_onnx": [r["throughput"]["inferences_per_s"] for r in rounds["kiln_int8_onnx"]],
                    "kiln_ort_qdq": [r["throughput"]["inferences_per_s"] for r in rounds["kiln_ort_qdq"]],
                    "ort_int8": [r["inferences_per_s"] for r in rounds["ort_int8"]]}
                # Output agreement on the same input (max over outputs of rel L2 against TF).
                row["rel_l2_kiln_tf"] = (max(rel_l2(k_out[o], t_out[o]) for o in meta["outputs"])
                                         if k_out else None)
                row["rel_l2_ort_tf"] = (max(rel_l2(o_out[o], t_out[o]) for o in meta["outputs"])
                                        if o_out else None)
                rows.append(row)
    finally:
        if args.keep_work:
            log("kept the work folder: %s" % work_root)
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    load_after = os.getloadavg()

    import onnxruntime
    import tensorflow as tf
    header = ("| model | batch | Kiln samples/s | TF samples/s | ORT samples/s | Kiln/TF | Kiln/ORT | "
              "Kiln (.onnx) samples/s | median ms Kiln / TF / ORT | rel L2 Kiln-TF | rel L2 ORT-TF |")
    lines = [header, "|" + "---|" * 11]
    notes = []

    def na(reason):
        reason = " ".join(str(reason).split())
        if reason not in notes:
            notes.append(reason)
        return "n/a [%d]" % (notes.index(reason) + 1)
    for r in rows:
        b = r["batch"]
        ks = r["kiln"]["throughput"]["samples_per_s"] if r["kiln"] else None
        ts = r["tf"]["inferences_per_s"] * b
        os_ = r["ort"]["inferences_per_s"] * b if r["ort"] else None
        kos = r["kiln_onnx"]["throughput"]["samples_per_s"] if r["kiln_onnx"] else None
        med = "%s / %.2f / %s" % (fmt_num(r["kiln"] and r["kiln"]["latency_ms"]["median"], "%.2f"),
                                  r["tf"]["median_ms"], fmt_num(r["ort"] and r["ort"]["median_ms"], "%.2f"))
        lines.append("| %s | %d | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], b, fmt_num(ks) if ks is not None else na(r["kiln_error"]), ts,
            fmt_num(os_) if os_ is not None else na(r["ort_error"]),
            fmt_num(ks / ts if ks else None, "%.2fx"),
            fmt_num(ks / os_ if ks and os_ else None, "%.2fx"),
            fmt_num(kos) if kos is not None else na(r["kiln_onnx_error"]), med,
            fmt_num(r["rel_l2_kiln_tf"], "%.1e"), fmt_num(r["rel_l2_ort_tf"], "%.1e")))
    if args.kiln_baseline:
        lines += ["", "Kiln against the baseline build %s (same rounds, same load):" % args.kiln_baseline,
                  "| model | batch | Kiln samples/s | baseline samples/s | Kiln/baseline | median ms Kiln / baseline "
                  "| rel L2 Kiln-baseline |", "|" + "---|" * 7]
        for r in rows:
            ks = r["kiln"]["throughput"]["samples_per_s"] if r["kiln"] else None
            bs = r["kiln_base"]["throughput"]["samples_per_s"] if r["kiln_base"] else None
            lines.append("| %s | %d | %s | %s | %s | %s / %s | %s |" % (
                r["model"], r["batch"], fmt_num(ks) if ks is not None else na(r["kiln_error"]),
                fmt_num(bs) if bs is not None else na(r["kiln_base_error"]),
                fmt_num(ks / bs if ks and bs else None, "%.3fx"),
                fmt_num(r["kiln"] and r["kiln"]["latency_ms"]["median"], "%.2f"),
                fmt_num(r["kiln_base"] and r["kiln_base"]["latency_ms"]["median"], "%.2f"),
                fmt_num(r["rel_l2_kiln_base"], "%.1e")))
    if args.int8:
        lines += ["", "INT8 (%s calibration, %d batches of %d; same rounds and load as above):"
                  % (args.int8_calibrator, args.int8_batches, args.int8_batch_size),
                  "| model | batch | Kiln FP32 samples/s | Kiln INT8 samples/s | Kiln INT8/FP32 | ORT INT8 samples/s "
                  "| Kiln INT8/ORT INT8 | Kiln INT8 (.onnx) samples/s | (.onnx)/ORT INT8 | Kiln on ORT's QDQ model "
                  "samples/s | (QDQ)/ORT INT8 | rel L2 vs TF FP32: Kiln INT8 / Kiln INT8 (.onnx) / Kiln on ORT's QDQ / "
                  "ORT INT8 |", "|" + "---|" * 12]
        for r in rows:
            b = r["batch"]
            kf = r["kiln"]["throughput"]["samples_per_s"] if r["kiln"] else None
            k8 = r["kiln_int8"]["throughput"]["samples_per_s"] if r.get("kiln_int8") else None
            ko8 = r["kiln_int8_onnx"]["throughput"]["samples_per_s"] if r.get("kiln_int8_onnx") else None
            o8 = r["ort_int8"]["inferences_per_s"] * b if r.get("ort_int8") else None
            kq = r["kiln_ort_qdq"]["throughput"]["samples_per_s"] if r.get("kiln_ort_qdq") else None
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s / %s |" % (
                r["model"], b, fmt_num(kf) if kf else na(r["kiln_error"]),
                fmt_num(k8) if k8 else na(r.get("kiln_int8_error")), fmt_num(k8 / kf if k8 and kf else None, "%.2fx"),
                fmt_num(o8) if o8 else na(r.get("ort_int8_error")), fmt_num(k8 / o8 if k8 and o8 else None, "%.2fx"),
                fmt_num(ko8) if ko8 else na(r.get("kiln_int8_onnx_error")),
                fmt_num(ko8 / o8 if ko8 and o8 else None, "%.2fx"),
                fmt_num(kq) if kq else na(r.get("kiln_ort_qdq_error")), fmt_num(kq / o8 if kq and o8 else None, "%.2fx"),
                fmt_num(r.get("rel_l2_kiln_int8_tf"), "%.1e"), fmt_num(r.get("rel_l2_kiln_int8_onnx_tf"), "%.1e"),
                fmt_num(r.get("rel_l2_kiln_ort_qdq_tf"), "%.1e"), fmt_num(r.get("rel_l2_ort_int8_tf"), "%.1e")))
    lines += [""] + ["[%d] %s" % (i + 1, n) for i, n in enumerate(notes)]
    if args.repeat > 1:
        lines += ["", "rounds (inferences/s, in order; best used above):"]
        for r in rows:
            lines.append("  %s b%d: %s" % (r["model"], r["batch"], "; ".join(
                "%s %s" % (fw, " ".join("%.2f" % v for v in vals))
                for fw, vals in r["rounds_inferences_per_s"].items() if vals)))
    info = [
        "date: %s; machine: %s, %d logical cores; load average before %.2f, after %.2f (1 min)"
        % (started.strftime("%Y-%m-%d %H:%M"), cpu_model_name(), os.cpu_count(), load_before[0], load_after[0]),
        "threads: %d (TF intra-op %d / inter-op 1; ORT intra-op %d / inter-op 1; Kiln OMP_NUM_THREADS=%d, one caller)"
        % (args.threads, args.threads, args.threads, args.threads),
        "protocol: %d warmup iterations, then %.1f s of back-to-back calls, one calling thread, %d interleaved "
        "round(s), best round reported; idle threads %s"
        % (args.warmup, args.duration, args.repeat, "sleep (--no-spin: Kiln OMP_WAIT_POLICY=passive, ORT allow_spinning=0)"
           if args.no_spin else "as each runtime defaults (libgomp, ORT and Eigen spin-wait)"),
        "TensorFlow %s, onnxruntime %s" % (tf.__version__, onnxruntime.__version__),
        "command: %s" % " ".join([os.path.relpath(sys.argv[0], REPO) if sys.argv else "bench/cpu_compare.py"]
                                  + (argv if argv is not None else sys.argv[1:])),
    ]
    print("\n".join(info + [""] + lines))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
