#!/usr/bin/env python3
"""Where one inference's GPU time goes, kernel by kernel: Kiln against torch.compile, same model.

Runs Nsight Compute (ncu) on one measured inference of each side, with only the kernel duration
metric (gpu__time_duration.sum) and the clocks left alone (--clock-control none), and prints both
kernel lists grouped by kind (matrix products, attention, Triton, Kiln's generated kernels, ...),
so a row that misses its goal says which kernels differ. Kernels are timed one by one (ncu
serializes them and, by default, flushes the caches before each), so the sums leave out launch
gaps and overlap: compare kinds, not totals, with bench/gpu_compare.py's end-to-end figures.

  Kiln:  ncu --profile-from-start off ... kiln bench MODEL.onnx --device cuda --iterations 1
         (kiln bench starts the profiler's capture around its measured runs only);
  torch: ncu --profile-from-start off ... python3 this_script --torch-child ... (the compiled
         model warmed up, then one call between cudaProfilerStart and cudaProfilerStop).

Needs the GPU machine (torch, transformers, onnx, ncu). Example:
  python3 bench/gpu_kernel_profile.py --kiln BUNDLE/bin/kiln --model bert_base --batch 32 --json OUT.json
"""
import argparse
import csv
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_compare  # noqa: E402  (the same models, inputs and export)

NCU_ARGS = ["--profile-from-start", "off", "--clock-control", "none", "--metrics", "gpu__time_duration.sum",
            "--csv", "--print-units", "base", "--print-kernel-base", "function"]


def find_ncu(given):
    if given:
        return given
    found = shutil.which("ncu")
    if found:
        return found
    for pattern in ("/usr/local/cuda/bin/ncu", "/opt/nvidia/nsight-compute/*/ncu", "/usr/local/cuda-*/bin/ncu"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    sys.exit("ncu (Nsight Compute) not found: pass --ncu")


def kernel_kind(name):
    n = name.lower()
    if n.startswith("kiln_"):
        return "kiln " + n.split("_")[1]
    if "fmha" in n or "flash" in n or "sdpa" in n or "attention" in n:
        return "attention"
    if n.startswith("triton"):
        parts = n.split("_")
        return "triton " + (parts[1] if len(parts) > 1 else "")
    if "gemm" in n or "xmma" in n or "cutlass" in n or "gemv" in n or "nvjet" in n or n.startswith(("sm90_", "sm80_")):
        return "matrix product"
    if "conv" in n or "implicit" in n:
        return "convolution"
    return "other"


def parse_ncu_csv(text):
    """[(kernel name, microseconds)] in launch order."""
    start = text.find('"ID"')
    if start < 0:
        raise RuntimeError("ncu printed no kernel table:\n" + text[-3000:])
    rows = []
    for r in csv.DictReader(io.StringIO(text[start:])):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "nsecond")
        scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6}.get(unit, 1e-3)
        rows.append((r["Kernel Name"], value * scale))
    return rows


def summarize(label, rows, top):
    total = sum(us for _, us in rows)
    kinds = {}
    for name, us in rows:
        k = kinds.setdefault(kernel_kind(name), [0, 0.0])
        k[0] += 1
        k[1] += us
    print("== %s: %d kernels, %.1f us in all (each timed alone)" % (label, len(rows), total))
    for kind, (count, us) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print("  %9.1f us  %4d  %s" % (us, count, kind))
    by_name = {}
    for name, us in rows:
        e = by_name.setdefault(name, [0, 0.0])
        e[0] += 1
        e[1] += us
    print("  slowest kernels (sum over calls):")
    for name, (count, us) in sorted(by_name.items(), key=lambda kv: -kv[1][1])[:top]:
        print("  %9.1f us  %4d  %s" % (us, count, name[:110]))
    return {"total_us": total, "kernels": len(rows),
            "by_kind": {k: {"count": c, "us": u} for k, (c, u) in kinds.items()},
            "launches": [{"kernel": n, "us": u} for n, u in rows]}


def run_ncu(ncu, cmd, env=None):
    p = subprocess.run([ncu] + NCU_ARGS + cmd, capture_output=True, text=True, env=env, timeout=900)
    if p.returncode != 0:
        raise RuntimeError("ncu failed (%s):\n%s\n%s" % (" ".join(cmd), p.stdout[-2000:], p.stderr[-3000:]))
    return parse_ncu_csv(p.stdout)


def torch_child(args):
    import torch
    make, make_inputs, _ = gpu_compare.MODELS[args.model]
    dtype = {"FP16": torch.float16, "BF16": torch.bfloat16, "FP32": torch.float32}[args.precision]
    model = make(torch).cuda()
    model = model.to(dtype) if dtype != torch.float32 else model
    inputs = make_inputs(torch, args.batch, args.seq)
    gin = [v.cuda().to(dtype) if v.is_floating_point() else v.cuda() for v in inputs.values()]
    fn = torch.compile(model, mode=args.compile_mode) if args.compile_mode != "none" else model
    with torch.inference_mode():
        for _ in range(args.warmup):
            fn(*gin)
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStart()
        fn(*gin)
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStop()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", "build/tools/kiln"))
    ap.add_argument("--ncu", default=None)
    ap.add_argument("--model", default="bert_base", choices=sorted(gpu_compare.MODELS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", default="FP16", choices=["FP16", "BF16", "FP32"])
    ap.add_argument("--compile-mode", default="reduce-overhead", help="torch.compile mode; 'none': eager")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child:
        return torch_child(args)

    import torch
    ncu = find_ncu(args.ncu)
    workdir = args.workdir or tempfile.mkdtemp(prefix="kiln-kernel-profile-")
    os.makedirs(workdir, exist_ok=True)
    make, make_inputs, _ = gpu_compare.MODELS[args.model]
    onnx_path = os.path.join(workdir, args.model + ".onnx")
    if not os.path.exists(onnx_path):
        gpu_compare.export_onnx(torch, make(torch), make_inputs(torch, 2, args.seq), onnx_path)
    inputs = make_inputs(torch, args.batch, args.seq)
    shapes = ",".join("%s:%s" % (n, "x".join(str(d) for d in t.shape)) for n, t in inputs.items())
    result = {"model": args.model, "batch": args.batch, "precision": args.precision, "ncu": ncu,
              "compile_mode": args.compile_mode}

    kiln_cmd = [args.kiln, "bench", onnx_path, "--device", "cuda", "--precision", args.precision, "--io", "device",
                "--shapes", shapes, "--warmup", str(args.warmup), "--iterations", "1"]
    result["kiln"] = summarize("Kiln", run_ncu(ncu, kiln_cmd), args.top)
    result["kiln"]["command"] = " ".join(kiln_cmd)
    if not args.skip_torch:
        child = [sys.executable, os.path.abspath(__file__), "--torch-child", "--model", args.model, "--batch",
                 str(args.batch), "--seq", str(args.seq), "--precision", args.precision, "--compile-mode",
                 args.compile_mode, "--warmup", str(args.warmup)]
        result["torch"] = summarize("torch.compile (%s)" % args.compile_mode, run_ncu(ncu, child), args.top)
        kinds = sorted(set(result["kiln"]["by_kind"]) | set(result["torch"]["by_kind"]))
        print("== side by side (us, kernels timed alone)")
        for k in kinds:
            a = result["kiln"]["by_kind"].get(k, {"us": 0.0, "count": 0})
            b = result["torch"]["by_kind"].get(k, {"us": 0.0, "count": 0})
            print("  %-22s kiln %8.1f (%3d)   torch %8.1f (%3d)" % (k, a["us"], a["count"], b["us"], b["count"]))
        print("  %-22s kiln %8.1f         torch %8.1f" % ("total", result["kiln"]["total_us"],
                                                          result["torch"]["total_us"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
