#!/usr/bin/env python3
"""Kiln (CPU engines: oneDNN's LSTM) vs ONNX Runtime on a stacked ONNX LSTM, in one run.

    python bench/rnn_compare.py [--precision FP32|BF16] [--layers 2] [--hidden 256] [--seq 64] [--batch 8]
                                [--threads T] [--duration 10] [--repeat 3] [--no-spin]
                                [--native]

The model: `--layers` forward LSTMs (ONNX LSTM, layout 0, random weights and biases as
initializers, written with onnx.helper), each layer's Y squeezed to [seq, batch, hidden] for the
next; input X [seq, batch, hidden]; outputs the last layer's Y and Y_h.
  Kiln  `kiln convert MODEL OUT --build-shapes X:...` (FP32 CPU engines), then
        `kiln bench OUT --json` (one caller thread; oneDNN's OpenMP team is OMP_NUM_THREADS=T).
        The engine plan (KILN_CPU_PLAN) is checked: every LSTM is a cpu.LSTM step on oneDNN.
  ORT   CPU execution provider, ORT_ENABLE_ALL, intra-op threads T, inter-op 1, sequential.
  --native also times `kiln bench MODEL --native` (the reference executor, no engines).
Both timed with the same protocol: W warmup calls, then calls for D seconds; --repeat R
interleaves R rounds (Kiln, ORT, Kiln, ...) and reports the best of each. The outputs on one
input are compared (relative L2, Kiln vs ORT).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np


def log(msg):
    print("[rnn_compare] " + msg, file=sys.stderr, flush=True)


def cpu_model_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_model(path, layers, hidden, seq, batch, seed=0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)
    nodes, inits = [], [numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    x = "X"
    for l in range(layers):
        for name, shape in (("W", [1, 4 * hidden, hidden]), ("R", [1, 4 * hidden, hidden]), ("B", [1, 8 * hidden])):
            inits.append(numpy_helper.from_array((rng.uniform(-scale, scale, shape)).astype(np.float32), "%s%d" % (name, l)))
        y, yh = "Y%d" % l, "Y_h%d" % l
        nodes.append(helper.make_node("LSTM", [x, "W%d" % l, "R%d" % l, "B%d" % l], [y, yh], name="lstm%d" % l,
                                      hidden_size=hidden))
        x = "S%d" % l
        nodes.append(helper.make_node("Squeeze", [y, "axis1"], [x], name="squeeze%d" % l))
    graph = helper.make_graph(nodes, "lstm_stack",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [seq, batch, hidden])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("Y_h%d" % (layers - 1), TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, path)
    return [x, "Y_h%d" % (layers - 1)]


def timed_loop(call, warmup, duration):
    for _ in range(warmup):
        call()
    lat = []
    start = time.perf_counter()
    while True:
        s = time.perf_counter()
        call()
        e = time.perf_counter()
        lat.append((e - s) * 1e3)
        if e >= start + duration:
            break
    wall = time.perf_counter() - start
    lat.sort()
    return {"iterations": len(lat), "inferences_per_s": len(lat) / wall, "median_ms": lat[len(lat) // 2], "min_ms": lat[0]}


def run(cmd, env):
    log("$ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(str(c) for c in cmd), proc.stderr[-3000:]))
    return proc


def kiln_numbers(report):
    """Throughput and median latency from `kiln bench --json`."""
    return {"inferences_per_s": report["throughput"]["inferences_per_s"], "median_ms": report["latency_ms"]["median"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-spin", action="store_true",
                    help="OMP_WAIT_POLICY=passive for Kiln, allow_spinning=0 for ORT (a loaded machine: spinning "
                         "OpenMP workers oversubscribed by other processes stall for seconds)")
    ap.add_argument("--precision", default="FP32", help="Kiln's conversion precision (FP32, BF16)")
    ap.add_argument("--native", action="store_true", help="also time Kiln's reference executor (slow)")
    ap.add_argument("--kiln", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "tools", "kiln"))
    args = ap.parse_args(argv)
    import onnxruntime as ort

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.no_spin:
        env["OMP_WAIT_POLICY"] = "passive"
    work = tempfile.mkdtemp(prefix="rnn_compare_")
    model = os.path.join(work, "lstm.onnx")
    out_names = build_model(model, args.layers, args.hidden, args.seq, args.batch)
    shape = "X:%dx%dx%d" % (args.seq, args.batch, args.hidden)
    x = np.random.default_rng(1).standard_normal((args.seq, args.batch, args.hidden)).astype(np.float32)

    converted = os.path.join(work, "converted")
    t0 = time.time()
    run([args.kiln, "convert", model, converted, "--build-shapes", shape, "--precision", args.precision], env)
    convert_s = time.time() - t0
    np.save(os.path.join(work, "x.npy"), x)
    proc = run([args.kiln, "run", converted, "--input", "X=" + os.path.join(work, "x.npy"), "--output-dir",
                os.path.join(work, "out")], dict(env, KILN_CPU_PLAN="1"))
    steps = re.findall(r"step\s+\S+\s+cpu\.LSTM\s+(\S+(?: \[[^\]]*\])?)", proc.stderr)
    if len(steps) != args.layers or not all(s.startswith("onednn:") for s in steps):
        sys.exit("expected %d cpu.LSTM steps on oneDNN, got %s:\n%s" % (args.layers, steps, proc.stderr))

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if args.no_spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    want = sess.run(out_names, {"X": x})
    errors = []
    for name, w in zip(out_names, want):
        got = np.load(os.path.join(work, "out", name + ".npy")).astype(np.float64)
        errors.append(float(np.linalg.norm(got - w) / max(np.linalg.norm(w), 1e-30)))

    best = {}
    for r in range(args.repeat):
        proc = run([args.kiln, "bench", converted, "--json", "--shapes", shape, "--warmup", str(args.warmup), "--duration",
                    str(args.duration)], env)
        k = json.loads(proc.stdout)
        kiln = kiln_numbers(k)
        o = timed_loop(lambda: sess.run(out_names, {"X": x}), args.warmup, args.duration)
        for key, val in (("kiln", kiln), ("ort", o)):
            if key not in best or (val["inferences_per_s"] or 0) > (best[key]["inferences_per_s"] or 0):
                best[key] = val
        if args.native and r == 0:
            proc = run([args.kiln, "bench", model, "--native", "--json", "--shapes", shape, "--warmup", "1", "--iterations", "3"], env)
            k = json.loads(proc.stdout)
            best["native"] = kiln_numbers(k)

    print("machine: %s, %d threads%s; %d-layer LSTM, hidden %d, seq %d, batch %d; Kiln %s, convert %.1f s" % (
        cpu_model_name(), args.threads, " (no spin)" if args.no_spin else "", args.layers, args.hidden, args.seq, args.batch, args.precision, convert_s))
    print("Kiln cpu.LSTM kernels: %s" % ", ".join(sorted(set(steps))))
    print("| runtime | inferences/s | samples/s | median ms |")
    print("|---|---|---|---|")
    for key, label in (("kiln", "Kiln %s (CPU engine, oneDNN lstm_forward)" % args.precision), ("ort", "ONNX Runtime (CPU EP)"),
                       ("native", "Kiln native (reference executor)")):
        if key in best:
            b = best[key]
            print("| %s | %.1f | %.1f | %.2f |" % (label, b["inferences_per_s"], b["inferences_per_s"] * args.batch, b["median_ms"]))
    print("relative L2, Kiln vs ONNX Runtime: %s" % ", ".join("%s %.2e" % (n, e) for n, e in zip(out_names, errors)))


if __name__ == "__main__":
    main()
