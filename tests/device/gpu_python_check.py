"""The kiln Python package with CUDA engines, on the GPU machine (PyTorch there is the DLPack peer):
- a CUDA tensor passed through DLPack is read in place (the address Kiln reads is the tensor's own),
- a model converted for the GPU returns device arrays that PyTorch takes back through DLPack, equal
  to the CPU engines' outputs on the same inputs (FP32: relative L2 <= 1e-5),
- outputs returned earlier keep their values when the signature runs again (no buffer reuse),
- host (numpy) inputs to GPU engines work too, and every run is an engine run (no native fallback),
- the Converter API converts for device="cuda" and builds engines from a Python input_fn,
- the cost of the Python call over the engines' own time for a small model (reported).

    python3 tests/device/gpu_python_check.py --kiln BUNDLE/bin/kiln --package-dir BUNDLE/python \
        --model BUNDLE/src/models/demo --workdir /tmp/gpc
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--package-dir", required=True, help="the directory holding the kiln package")
    ap.add_argument("--model", required=True, help="a SavedModel with one float input")
    ap.add_argument("--workdir", default="/tmp/kiln-gpu-python")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    sys.path.insert(0, args.package_dir)
    import kiln
    import torch

    failures = []

    def check(ok, what):
        print("  %s: %s" % ("ok" if ok else "FAILED", what))
        if not ok:
            failures.append(what)

    os.makedirs(args.workdir, exist_ok=True)
    gpu_dir = os.path.join(args.workdir, "gpu_model")
    shutil.rmtree(gpu_dir, ignore_errors=True)
    subprocess.run([args.kiln, "convert", args.model, gpu_dir, "--device", "cuda"], check=True, capture_output=True)
    cpu_fn = kiln.load(args.model).signatures["serving_default"]
    gpu_model = kiln.load(gpu_dir)
    gpu_fn = gpu_model.signatures["serving_default"]
    print("kiln %s; GPU model input device %s" % (getattr(kiln, "__version__", "?"), gpu_fn.input_device))
    check(gpu_fn.input_device.startswith("cuda"), "a model converted for the GPU reads inputs on the GPU")
    spec = gpu_fn.inputs[0]
    shape = [args.batch if d is None or d < 0 else d for d in spec.shape]
    torch.manual_seed(0)
    x1 = torch.randn(*shape, device="cuda")
    x2 = torch.randn(*shape, device="cuda")

    check(kiln._kiln._data_address(x1) == x1.data_ptr(), "a CUDA tensor's own address is what Kiln reads (zero copy)")
    out1 = gpu_fn(**{spec.name: x1})
    first = next(iter(out1.values()))
    on_device = hasattr(first, "__dlpack_device__") and first.__dlpack_device__()[0] == 2  # kDLCUDA
    where = first.__dlpack_device__() if hasattr(first, "__dlpack_device__") else type(first).__name__
    check(on_device, "GPU inputs give outputs on the GPU (DLPack device %s)" % (where,))
    t1 = {k: torch.from_dlpack(v) for k, v in out1.items()}
    check(all(t.is_cuda for t in t1.values()), "torch.from_dlpack takes the outputs as CUDA tensors")
    saved1 = {k: t.cpu().numpy().copy() for k, t in t1.items()}
    ref1 = cpu_fn(**{spec.name: x1.cpu().numpy()})
    ref2 = cpu_fn(**{spec.name: x2.cpu().numpy()})
    for k in ref1:
        err = rel_l2(saved1[k], ref1[k])
        check(err <= 1e-5, "output %s of GPU engines vs CPU engines, FP32: relative L2 %.2e (bound 1e-5)" % (k, err))
    out2 = gpu_fn(**{spec.name: x2})
    for k in ref1:
        still = rel_l2(torch.from_dlpack(out1[k]).cpu().numpy(), saved1[k])
        check(still == 0.0, "output %s of the first run unchanged after a second run (difference %.2e)" % (k, still))
        err = rel_l2(torch.from_dlpack(out2[k]).cpu().numpy(), ref2[k])
        check(err <= 1e-5, "second run's output %s vs CPU: relative L2 %.2e" % (k, err))
    host_out = gpu_fn(**{spec.name: x1.cpu().numpy()})
    for k in ref1:
        v = host_out[k]
        arr = v if isinstance(v, np.ndarray) else torch.from_dlpack(v).cpu().numpy()
        check(rel_l2(arr, ref1[k]) <= 1e-5, "numpy input to GPU engines: output %s (%s) matches" % (k, type(v).__name__))
    stats = gpu_fn.stats()
    print("  stats: %s" % stats)
    check(stats.get("native_runs", 0) == 0, "no native fallback runs")

    # The Converter API for the GPU, engines built from a Python input_fn.
    params = kiln.ConversionParams(device="cuda")
    conv = kiln.Converter(input_saved_model_dir=args.model, conversion_params=params)
    conv.convert()
    conv.build(input_fn=lambda: iter([(x1.cpu().numpy(),)]))
    saved = os.path.join(args.workdir, "converter_gpu")
    shutil.rmtree(saved, ignore_errors=True)
    conv.save(saved)
    fn = kiln.load(saved).signatures["serving_default"]
    out = fn(**{spec.name: x1})
    for k in ref1:
        err = rel_l2(torch.from_dlpack(out[k]).cpu().numpy(), ref1[k])
        check(err <= 1e-5, "kiln.Converter(device='cuda') saved model: output %s relative L2 %.2e" % (k, err))

    # What a Python call costs over the engines: synchronous calls on device inputs.
    for _ in range(20):
        gpu_fn(**{spec.name: x1})
    torch.cuda.synchronize()
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        gpu_fn(**{spec.name: x1})
    torch.cuda.synchronize()
    per_call = (time.perf_counter() - t0) / n * 1e3
    bench = subprocess.run([args.kiln, "bench", gpu_dir, "--device", "cuda", "--io", "device", "--shapes",
                            "%s:%s" % (spec.name, "x".join(map(str, shape))), "--warmup", "20", "--iterations", "200",
                            "--json"], capture_output=True, text=True)
    if bench.returncode == 0:
        import json
        cpp = json.loads(bench.stdout)["latency_ms"]["median"]
        print("  Python call %.4f ms per run (mean of %d) against kiln bench (C++ RunWithBuffers) median %.4f ms: "
              "%+.1f%%" % (per_call, n, cpp, (per_call / cpp - 1) * 100))
    else:
        print("  kiln bench failed: %s" % bench.stderr[-500:])
    print("gpu_python_check: %s" % ("PASSED" if not failures else "FAILED (%d)" % len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
