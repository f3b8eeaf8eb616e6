"""INT8 and FP8 GPU engines on trained weights and real images: torchvision's ResNet
architectures trained here (PyTorch, on the GPU, seconds) on scikit-learn's digits, exported to
ONNX, converted by Kiln for the GPU in FP32, FP16, INT8 and FP8 (calibrated on training images),
and run on the held-out images. Each 8-bit engine's top-1 must stay within 1 point of Kiln's FP32
engine (the INT8 issue's target; docs/testing.md), and its logits must differ from FP32's (it is
quantized) by less than 0.25 relative L2 (a gross-error check: 8-bit rounding through 50 layers reaches
about 0.1; a wrong scale or layout gives about 1).

Random weights say little about 8-bit arithmetic: what matters is whether a trained network's
decisions survive it. ResNet-18 (basic blocks) and ResNet-50 (bottlenecks) both read each block's
input as its first convolution's input and as the identity shortcut, which the 8-bit engines store
in 8 bits once (INT8: int8; FP8: E4M3).

  python3 tests/device/gpu_digits_accuracy.py --kiln BUNDLE/bin/kiln --digits BUNDLE/data/digits.npz
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def log(msg):
    print(msg, flush=True)


def digits_split(path, size):
    """The digits (8x8, 0..16) as [n, 3, size, size] float32 images in [0, 1] (the gray value in
    three channels, as torchvision's models take), split 1,200 / 597 with seed 0."""
    d = np.load(path)
    x = (d["images"].astype(np.float32) / 16.0)
    y = d["target"].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    scale = size // 8
    x = np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)  # nearest upsampling to size x size
    x = np.ascontiguousarray(np.broadcast_to(x[:, None], (len(x), 3, size, size)))
    return x[:1200], y[:1200], x[1200:], y[1200:]


def train(torch, arch, train_x, train_y, epochs):
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=10).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = torch.from_numpy(train_x).cuda(), torch.from_numpy(train_y).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xs), device="cuda", generator=gen)
        for i in range(0, len(xs), 50):
            idx = perm[i:i + 50]
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def kiln(binary, args, what):
    proc = subprocess.run([binary] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=900)
    if proc.returncode != 0:
        log("%s FAILED (rc %d):\n%s\n%s" % (what, proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:]))
        raise SystemExit(1)
    return proc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--digits", required=True, help="digits.npz (images [1797, 8, 8], target [1797])")
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--precisions", default="FP16,INT8,FP8")
    ap.add_argument("--size", type=int, default=32, help="image side after upsampling (a multiple of 8)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    import torch

    work = args.workdir or tempfile.mkdtemp(prefix="kiln-digits-")
    train_x, train_y, test_x, test_y = digits_split(args.digits, args.size)
    np.save(os.path.join(work, "x.npy"), test_x)
    calib = os.path.join(work, "calib")
    for b in range(8):  # 8 batches of 25 training images
        os.makedirs(os.path.join(calib, "%03d" % b), exist_ok=True)
        np.save(os.path.join(calib, "%03d" % b, "x.npy"), train_x[25 * b:25 * (b + 1)])
    failures = []
    for arch in args.archs.split(","):
        start = time.time()
        model = train(torch, arch, train_x, train_y, args.epochs)
        model = model.cpu()  # the reference in FP32 on the CPU (cuDNN's convolutions may use TF32)
        with torch.no_grad():
            torch_logits = model(torch.from_numpy(test_x)).numpy()
        torch_top1 = float(np.mean(np.argmax(torch_logits, 1) == test_y))
        log("%s: trained %d epochs in %.1f s; PyTorch FP32 top-1 %.4f" % (arch, args.epochs, time.time() - start,
                                                                          torch_top1))
        if torch_top1 < 0.9:
            failures.append("%s did not train (%.4f)" % (arch, torch_top1))
            continue
        onnx_path = os.path.join(work, arch + ".onnx")
        torch.onnx.export(model, (torch.from_numpy(test_x[:2]),), onnx_path, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, do_constant_folding=True, dynamo=False)
        results = {}
        for precision in ["FP32"] + args.precisions.split(","):
            out = os.path.join(work, "%s_%s" % (arch, precision))
            convert = ["convert", onnx_path, out, "--device", "cuda", "--precision", precision,
                       "--build-shapes", "x:%dx3x%dx%d" % (len(test_x), args.size, args.size)]
            if precision in ("INT8", "FP8"):
                convert += ["--calibration-data", calib]
            t = time.time()
            kiln(args.kiln, convert, "%s %s conversion" % (arch, precision))
            built = time.time() - t
            kiln(args.kiln, ["run", out, "--input", "x=" + os.path.join(work, "x.npy"), "--output-dir", out + "_out"],
                 "%s %s run" % (arch, precision))
            logits = np.load(os.path.join(out + "_out", "logits.npy")).astype(np.float64)
            top1 = float(np.mean(np.argmax(logits, 1) == test_y))
            results[precision] = (top1, logits)
            ref = results["FP32"][1] if precision != "FP32" else torch_logits.astype(np.float64)
            rel = np.linalg.norm(logits - ref) / np.linalg.norm(ref)
            layers = ""
            if precision in ("INT8", "FP8"):
                summary = kiln(args.kiln, ["summary", out], "%s %s summary" % (arch, precision)).stdout
                layers = " | " + "; ".join(l.strip() for l in summary.splitlines() if "layers (" in l or "[*] " + precision in l)[:300]
            log("  %-4s top-1 %.4f, logits rel L2 vs %s %.2e (conversion %.1f s)%s" %
                (precision, top1, "Kiln FP32" if precision != "FP32" else "PyTorch FP32", rel, built, layers))
            if precision == "FP32" and rel > 1e-4:
                failures.append("%s FP32 logits %.2e from PyTorch's (bound 1e-4: TF32-free FP32 engines)" % (arch, rel))
            if precision in ("INT8", "FP8"):
                if abs(top1 - results["FP32"][0]) > 0.01:
                    failures.append("%s %s top-1 %.4f against FP32 %.4f (bound 1 point)" % (arch, precision, top1,
                                                                                            results["FP32"][0]))
                if not 0 < rel < 0.25:
                    failures.append("%s %s logits %.2e from FP32 (bound: above 0, below 0.25)" % (arch, precision, rel))
    for f in failures:
        log("FAILED: " + f)
    log("gpu_digits_accuracy: %s" % ("FAILED" if failures else "PASSED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
