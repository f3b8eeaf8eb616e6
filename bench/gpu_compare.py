#!/usr/bin/env python3
"""Kiln on the GPU side by side with PyTorch eager and torch.compile, same weights, same GPU.

For each model (torchvision ResNet-50; BERT-base from transformers, random init, seq 128):
  1. build the PyTorch model (seeded random weights), export it to ONNX (FP32, dynamic batch);
  2. Kiln: `kiln bench MODEL.onnx --device cuda --precision P --io device` per batch size (inputs
     and outputs in GPU memory, one synchronous RunWithBuffers per inference; conversion and
     engine build time reported, cold: the run's own timing cache starts empty; then a second
     `kiln bench` for the warm-cache build time), and the accuracy of Kiln's engines on one real batch against
     PyTorch FP32 on the GPU (`kiln convert` + `kiln run` on the same inputs);
  3. PyTorch eager in the same precision (model.half() / bfloat16), and torch.compile(mode=...),
     each timed per inference with CUDA events around a synchronous call, median of --runs after
     --warmup.
--precision INT8 (or FP8): Kiln calibrates on --calibration-batches batches of the model's random inputs
(`--calibration-data`, entropy calibrator) and runs INT8 engines (what is not int8 runs FP16);
PyTorch runs FP16, as it has no INT8 GPU inference of these models to compare with.
Prints a table and writes --json. Needs torch, torchvision, transformers and onnx (the GPU
machine has them). Example (the GPU machine, kiln from tests/device/make_gpu_bundle.py):
  python3 bench/gpu_compare.py --kiln BUNDLE/bin/kiln --json $OUT/gpu_compare.json
--export-only writes the ONNX files and stops (to check Kiln's import on a machine without a GPU).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


KILN_TIMEOUT_S = 300  # one kiln process; a hang is reported and the comparison goes on


def log(msg):
    print(msg, flush=True)


# ---- the models ----

def make_resnet50(torch):
    import torchvision
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).eval()


def make_bert_base(torch):
    import transformers
    torch.manual_seed(0)
    config = transformers.BertConfig()  # bert-base-uncased's architecture
    config.attn_implementation = "eager"
    model = transformers.BertModel(config, add_pooling_layer=False).eval()

    class LastHidden(torch.nn.Module):  # one tensor output, for ONNX and compile alike
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHidden(model).eval()


def resnet_inputs(torch, batch, seq):
    g = torch.Generator().manual_seed(batch)
    return {"input": torch.randn(batch, 3, 224, 224, generator=g)}


def bert_inputs(torch, batch, seq):
    g = torch.Generator().manual_seed(batch)
    ids = torch.randint(0, 30522, (batch, seq), generator=g, dtype=torch.int64)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[:, seq - seq // 8:] = 0  # padding at the end of every sequence
    return {"input_ids": ids, "attention_mask": mask}


MODELS = {
    "resnet50": (make_resnet50, resnet_inputs, "img/s"),
    "bert_base": (make_bert_base, bert_inputs, "seq/s"),
}


def export_onnx(torch, model, inputs, path):
    names = list(inputs)
    dynamic = {n: {0: "batch"} for n in names}
    dynamic["output"] = {0: "batch"}
    torch.onnx.export(model, tuple(inputs.values()), path, input_names=names, output_names=["output"],
                      dynamic_axes=dynamic, opset_version=17, do_constant_folding=True, dynamo=False)


# ---- timing ----

def time_torch(torch, fn, inputs, warmup, runs):
    """Per-inference times (ms): CUDA events around each synchronous call."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*inputs.values())
        torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            start.record()
            fn(*inputs.values())
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    return times


CALIBRATION_DIRS = {}  # onnx path -> directory of calibration batches (INT8)


def precision_args(onnx_path, precision):
    """INT8: the first conversion calibrates and saves the table; later ones reuse it (calibration
    runs the FP32 model on the reference kernels: a minute for ResNet-50)."""
    args = ["--precision", precision]
    if precision in ("INT8", "FP8"):
        table = CALIBRATION_DIRS[onnx_path] + ".%s.table.json" % precision.lower()
        if os.path.exists(table):
            args += ["--calibration-table", table]
        else:
            args += ["--calibration-data", CALIBRATION_DIRS[onnx_path], "--save-calibration-table", table]
    return args


def write_calibration_batches(torch, make_inputs, seq, count, directory):
    """`count` batches of 8 random inputs as DIR/BATCH/NAME.npy."""
    for b in range(count):
        d = os.path.join(directory, "%03d" % b)
        os.makedirs(d, exist_ok=True)
        g_inputs = make_inputs(torch, 8 + b, seq)  # the batch size seeds the generator: distinct batches
        for n, t in g_inputs.items():
            np.save(os.path.join(d, n + ".npy"), t[:8].numpy())


def kiln_bench(kiln, onnx_path, inputs, precision, warmup, runs, profile_runs=0, cuda_graph="on"):
    shapes = ",".join("%s:%s" % (n, "x".join(str(d) for d in t.shape)) for n, t in inputs.items())
    cmd = [kiln, "bench", onnx_path, "--device", "cuda"] + precision_args(onnx_path, precision) + [
           "--io", "device", "--shapes", shapes,
           "--warmup", str(warmup), "--iterations", str(runs), "--cuda-graph", cuda_graph, "--json"]
    if profile_runs > 0:
        cmd += ["--profile-layers", str(profile_runs)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=KILN_TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError("kiln bench failed (%s):\n%s" % (" ".join(cmd), p.stderr[-3000:]))
    report = json.loads(p.stdout)
    report["command"] = " ".join(cmd)
    report["process_s"] = time.time() - t0
    return report


def kiln_accuracy(kiln, onnx_path, inputs, precision, reference, workdir):
    """Kiln's engines on `inputs` against PyTorch FP32's `reference`: relative L2."""
    conv = os.path.join(workdir, "converted_%s" % precision)
    p = subprocess.run([kiln, "convert", onnx_path, conv, "--device", "cuda"] + precision_args(onnx_path, precision),
                       capture_output=True, text=True, timeout=KILN_TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError("kiln convert failed:\n" + p.stderr[-3000:])
    args = [kiln, "run", conv, "--output-dir", os.path.join(workdir, "out")]
    for n, t in inputs.items():
        f = os.path.join(workdir, n + ".npy")
        np.save(f, t.numpy())
        args += ["--input", "%s=%s" % (n, f)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=KILN_TIMEOUT_S)
    if p.returncode != 0:
        raise RuntimeError("kiln run failed:\n" + p.stderr[-3000:])
    got = np.load(os.path.join(workdir, "out", "output.npy")).astype(np.float64)
    ref = reference.astype(np.float64)
    summary = subprocess.run([kiln, "summary", conv], capture_output=True, text=True).stdout
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)), summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", "build/tools/kiln"))
    ap.add_argument("--models", default="resnet50,bert_base")
    ap.add_argument("--resnet50-batches", default="1,32,128")
    ap.add_argument("--bert_base-batches", dest="bert_base_batches", default="1,32")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", default="FP16", choices=["FP16", "BF16", "FP32", "INT8", "FP8"])
    ap.add_argument("--calibration-batches", type=int, default=4, help="INT8: batches of 8 random inputs")
    ap.add_argument("--compile-mode", default="max-autotune",
                    help="torch.compile mode; 'none' skips torch.compile")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true", help="no accuracy check against PyTorch FP32 (time only)")
    ap.add_argument("--skip-warm-build", action="store_true",
                    help="no second kiln bench per shape to measure the build with a warm timing cache")
    ap.add_argument("--skip-torch", action="store_true", help="time Kiln only")
    ap.add_argument("--json", default=None)
    ap.add_argument("--also-without-cuda-graphs", action="store_true",
                    help="time Kiln a second time with --cuda-graph off (kiln_no_graph_ms)")
    ap.add_argument("--profile-layers", type=int, default=0,
                    help="after timing, N runs of kiln bench --profile-layers: per-layer times in the log and JSON")
    args = ap.parse_args()

    import torch
    workdir = args.workdir or tempfile.mkdtemp(prefix="kiln-gpu-compare-")
    os.makedirs(workdir, exist_ok=True)
    # A timing cache of this run's own: each shape's first build is cold (every tactic timed), the
    # second one (kiln_build_warm_s) takes them from the cache.
    timing_cache = os.path.join(workdir, "cuda-timing-cache")
    if os.path.exists(timing_cache):
        os.remove(timing_cache)
    os.environ["KILN_TIMING_CACHE"] = timing_cache
    have_gpu = torch.cuda.is_available()
    dtype = {"FP16": torch.float16, "BF16": torch.bfloat16, "FP32": torch.float32, "INT8": torch.float16, "FP8": torch.float16}[args.precision]
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join(sys.argv), "torch": torch.__version__, "precision": args.precision,
               "compile_mode": args.compile_mode, "warmup": args.warmup, "runs": args.runs, "rows": []}
    if have_gpu:
        results["gpu"] = torch.cuda.get_device_name(0)
        log("GPU: %s; torch %s (CUDA %s, cuDNN %s)" % (results["gpu"], torch.__version__, torch.version.cuda,
                                                      torch.backends.cudnn.version()))
    elif not args.export_only:
        sys.exit("no CUDA GPU visible: only --export-only works here")
    torch.backends.cuda.matmul.allow_tf32 = False  # FP32 reference outputs in exact FP32
    torch.backends.cudnn.allow_tf32 = False

    for name in args.models.split(","):
        make, make_inputs, unit = MODELS[name]
        batches = [int(b) for b in getattr(args, name + "_batches").split(",")]
        model = make(torch)
        onnx_path = os.path.join(workdir, name + ".onnx")
        t0 = time.time()
        export_onnx(torch, model, make_inputs(torch, 2, args.seq), onnx_path)
        log("%s: exported to %s in %.1f s" % (name, onnx_path, time.time() - t0))
        if args.export_only:
            continue
        if args.precision in ("INT8", "FP8"):
            CALIBRATION_DIRS[onnx_path] = os.path.join(workdir, name + "_calibration")
            write_calibration_batches(torch, make_inputs, args.seq, args.calibration_batches, CALIBRATION_DIRS[onnx_path])
        gpu_model = model.cuda()
        # Accuracy of Kiln's engines: one batch against PyTorch FP32 on the GPU.
        acc_inputs = make_inputs(torch, 2, args.seq)
        with torch.inference_mode():
            ref = gpu_model(*[v.cuda() for v in acc_inputs.values()]).float().cpu().numpy()
        acc_dir = os.path.join(workdir, name + "_acc")
        os.makedirs(acc_dir, exist_ok=True)
        t0 = time.time()
        rel = None
        try:
            if not args.skip_accuracy:
                rel, summary = kiln_accuracy(args.kiln, onnx_path, acc_inputs, args.precision, ref, acc_dir)
                log("%s: Kiln %s vs PyTorch FP32, relative L2 %.2e (convert and run %.1f s)" % (
                    name, args.precision, rel, time.time() - t0))
                log("\n".join(l for l in summary.splitlines()[:40]))
        except Exception as e:  # reported, and timing still runs
            rel = None
            log("%s: Kiln accuracy check FAILED: %s" % (name, e))

        half = model.to(dtype) if dtype != torch.float32 else model
        compiled = None
        if not args.skip_torch and args.compile_mode != "none":
            compiled = torch.compile(half, mode=args.compile_mode)
        for batch in batches:
            inputs = make_inputs(torch, batch, args.seq)
            row = {"model": name, "batch": batch, "unit": unit, "kiln_rel_l2_vs_torch_fp32": rel}
            try:
                rep = kiln_bench(args.kiln, onnx_path, inputs, args.precision, args.warmup, args.runs,
                                 args.profile_layers)
                if "layer_profile" in rep:
                    prof = rep["layer_profile"]
                    row["kiln_layer_profile"] = {"layer_ms_per_run": prof["layer_ms_per_run"],
                                                 "by_kernel": prof["by_kernel"], "top_layers": prof["layers"][:60]}
                    log("%s b%d: Kiln layers %.3f ms per run (timed one by one); by kernel:" % (
                        name, batch, prof["layer_ms_per_run"]))
                    for k, v in sorted(prof["by_kernel"].items(), key=lambda kv: -kv[1]["ms_per_run"]):
                        log("  %9.4f ms  %6.1f calls  %s" % (v["ms_per_run"], v["calls_per_run"], k))
                    for l in prof["layers"][:25]:
                        log("  %9.4f ms  %-26s %-24s %s" % (l["ms_per_run"], l["kernel"], l["detail"], l["layer"][-80:]))
                row["kiln_ms"] = rep["latency_ms"]["median"]
                log("%s b%d: kiln bench took %.1f s (convert %.1f s, build %.1f s)" % (
                    name, batch, rep["process_s"], (rep.get("convert_ms") or 0) / 1000.0,
                    (rep.get("engine_build_ms") or 0) / 1000.0))
                row["kiln_build_s"] = (rep.get("engine_build_ms") or 0) / 1000.0
                row["kiln_convert_s"] = (rep.get("convert_ms") or 0) / 1000.0
                row["kiln_native_fallbacks"] = rep["runs"]["native_fallbacks"]
                row["kiln_command"] = rep["command"]
                row["kiln_h2d_ms"] = rep["host_device_copies"]["h2d_ms"]
                if not args.skip_warm_build:
                    warm = kiln_bench(args.kiln, onnx_path, inputs, args.precision, 1, 3)
                    row["kiln_build_warm_s"] = (warm.get("engine_build_ms") or 0) / 1000.0
                    row["kiln_convert_warm_s"] = (warm.get("convert_ms") or 0) / 1000.0
                    log("%s b%d: second kiln bench (warm timing cache): convert %.1f s, build %.1f s, %.1f s in all" % (
                        name, batch, row["kiln_convert_warm_s"], row["kiln_build_warm_s"], warm["process_s"]))
                if args.also_without_cuda_graphs:
                    off = kiln_bench(args.kiln, onnx_path, inputs, args.precision, args.warmup, args.runs,
                                     cuda_graph="off")
                    row["kiln_no_graph_ms"] = off["latency_ms"]["median"]
                    log("%s b%d: Kiln without CUDA graphs %.3f ms" % (name, batch, row["kiln_no_graph_ms"]))
            except Exception as e:
                row["kiln_error"] = str(e)[-2000:]
                log("%s b%d: Kiln FAILED: %s" % (name, batch, str(e)[-1500:]))
            if not args.skip_torch:
                gin = {k: (v.cuda().to(dtype) if v.is_floating_point() else v.cuda()) for k, v in inputs.items()}
                row["eager_ms"] = statistics.median(time_torch(torch, half, gin, args.warmup, args.runs))
                if compiled is not None:
                    t0 = time.time()
                    with torch.inference_mode():
                        compiled(*gin.values())  # compiles (and autotunes) for this shape
                    torch.cuda.synchronize()
                    row["compile_s"] = time.time() - t0
                    row["compile_ms"] = statistics.median(time_torch(torch, compiled, gin, args.warmup, args.runs))
            for k in ("kiln_ms", "eager_ms", "compile_ms"):
                if k in row:
                    row[k.replace("_ms", "_per_s")] = batch * 1000.0 / row[k]
            if "kiln_ms" in row:
                for peer in ("eager", "compile"):
                    if peer + "_ms" in row:
                        row["speedup_vs_" + peer] = row[peer + "_ms"] / row["kiln_ms"]
            results["rows"].append(row)
            log("%-10s b%-4d kiln %s  eager %s  compile %s  (kiln/eager %s, kiln/compile %s; kiln build %s)" % (
                name, batch, fmt_ms(row.get("kiln_ms")), fmt_ms(row.get("eager_ms")), fmt_ms(row.get("compile_ms")),
                fmt_x(row.get("speedup_vs_eager")), fmt_x(row.get("speedup_vs_compile")),
                "%.1f s cold, %.1f s warm" % (row["kiln_build_s"], row.get("kiln_build_warm_s", -1)) if "kiln_build_s" in row
                else "-"))
        del gpu_model, half, compiled
        torch.cuda.empty_cache() if have_gpu else None
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def fmt_ms(v):
    return "%.3f ms" % v if v is not None else "-"


def fmt_x(v):
    return "%.2fx" % v if v is not None else "-"


if __name__ == "__main__":
    sys.exit(main())
