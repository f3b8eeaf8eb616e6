"""Packs what the GPU machine needs to run Kiln's GPU tests: the kiln binary and unit tests, the
shared libraries they need that a CUDA image lacks (oneDNN, protobuf, fmt, ...; the CUDA
libraries themselves come from the machine, matched to its driver), and the demo models.

    python3 tests/device/make_gpu_bundle.py [--build build] [--out .device/gpu.tar.gz]

It writes one gzip'd tar (about 20 MB: the device tool carries at most 64 MiB a call). Carry it
and, on the GPU machine, from the repository root:
    bash tests/device/gpu_suite.sh .device/gpu.tar.gz
"""

import argparse
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Present on any glibc system, or provided by the GPU machine's CUDA installation.
SYSTEM_PREFIXES = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so",
                   "libgcc_s.so", "libstdc++.so", "libz.so", "libcuda.so", "libcudart.so", "libcublas",
                   "libcudnn", "libnvrtc", "libnvJitLink")


def needed_libs(binary):
    """(name, resolved path) of each shared library `binary` needs that is not a system one."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and not parts[0].startswith(SYSTEM_PREFIXES):
            if parts[2] == "not":
                raise SystemExit("%s: %s is not found here" % (binary, parts[0]))
            libs.append((parts[0], os.path.realpath(parts[2])))
    return libs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--out", default=str(ROOT / ".device" / "gpu.tar.gz"))
    ap.add_argument("--models", nargs="*", default=["mlp_keras3", "cnn_keras3", "bert_keras3"],
                    help="test-zoo SavedModels (build/test_models) to check end to end on the GPU")
    ap.add_argument("--zoo", default=str(ROOT / "build" / "test_models"))
    ap.add_argument("--zoo-cases", nargs="*", metavar="NAME",
                    help="also pack these zoo models with TensorFlow's outputs (tests/device/make_zoo_cases.py, "
                         "run with --python) for tests/device/gpu_zoo_check.py; no names: every model")
    ap.add_argument("--python", default=str(Path.home() / ".cache" / "kiln" / "venv" / "bin" / "python"),
                    help="a Python with TensorFlow (for --zoo-cases) and scikit-learn (the digits)")
    ap.add_argument("--python-package", metavar="DIR",
                    help="also pack this built kiln Python package (BUILD/python/kiln of a build for the GPU "
                         "machine's Python, 3.12) for tests/device/gpu_python_check.py")
    args = ap.parse_args()
    build, out = Path(args.build), Path(args.out)
    binaries = [build / "tools" / "kiln", build / "kiln_unit_tests"]
    for b in binaries:
        if not b.is_file():
            raise SystemExit("%s is missing: build first (scripts/build.sh)" % b)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "gpu"
        libs = stage_bundle(binaries, stage)
        for name in args.models:
            src = Path(args.zoo) / name
            if not src.is_dir():
                raise SystemExit("%s is missing: generate the test zoo first (tests/models/zoo.py)" % src)
            shutil.copytree(src, stage / "models" / name)
        if args.python_package:
            package = Path(args.python_package)
            modules = list(package.glob("_kiln.cpython-*.so"))
            if not modules:
                raise SystemExit("%s has no built extension module (_kiln.cpython-*.so)" % package)
            shutil.copytree(package, stage / "python" / "kiln", ignore=shutil.ignore_patterns("__pycache__", "libkiln_tf_ops.so"))
            for name, path in needed_libs(modules[0]):
                if not (stage / "lib" / name).exists():
                    shutil.copy2(path, stage / "lib" / name)
                    libs[name] = path
        # scikit-learn's digits for tests/device/gpu_digits_accuracy.py (the GPU machine may lack it).
        digits = stage / "data" / "digits.npz"
        digits.parent.mkdir()
        subprocess.run([args.python, "-c", "import sys, numpy as np, sklearn.datasets as d; x = d.load_digits(); "
                        "np.savez_compressed(sys.argv[1], images=x.images.astype(np.uint8), target=x.target)",
                        str(digits)], check=True)
        if args.zoo_cases is not None:
            subprocess.run([args.python, str(ROOT / "tests" / "device" / "make_zoo_cases.py"), "--zoo", args.zoo,
                            "--out", str(stage / "zoo")] + (["--models"] + args.zoo_cases if args.zoo_cases else []),
                           check=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(stage, arcname="gpu")
        os.replace(partial, out)
    print("wrote %s (%.1f MB): %s; libs: %s" % (out, out.stat().st_size / 1e6, ", ".join(b.name for b in binaries),
                                               ", ".join(sorted(libs))))


def stage_bundle(binaries, out):
    (out / "bin").mkdir(parents=True)
    (out / "lib").mkdir()
    libs = {}
    for b in binaries:
        shutil.copy2(b, out / "bin" / b.name)
        libs.update(needed_libs(b))
    for name, path in sorted(libs.items()):
        shutil.copy2(path, out / "lib" / name)
    # The unit tests read models/demo through KILN_SOURCE_DIR.
    shutil.copytree(ROOT / "models" / "demo", out / "src" / "models" / "demo")
    return libs


if __name__ == "__main__":
    main()
