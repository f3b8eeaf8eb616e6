#!/usr/bin/env bash
# Kiln's GPU checks, in one call on the GPU machine: what the machine has (GPU, driver, CUDA
# libraries), then the unit tests that need a GPU. The bundle comes from
# tests/device/make_gpu_bundle.py. Logs go to $OUT when it is set.
#   bash tests/device/gpu_suite.sh .device/gpu.tar.gz
# KILN_GPU_TEST_FILTER narrows the unit tests ("none": none); KILN_GPU_MODELS=0 skips the model checks;
# the bundle's zoo cases (make_gpu_bundle.py --zoo-cases) run through tests/device/gpu_zoo_check.py
# (KILN_GPU_ZOO_ARGS: more arguments for it; KILN_GPU_ZOO=0 skips them);
# KILN_GPU_COMPARE_ARGS runs bench/gpu_compare.py with those arguments ("-" for its defaults).
# KILN_GPU_PYTHON=0 skips the Python package check (gpu_python_check.py) of a bundle that has one.
# KILN_GPU_KERNEL_PROFILE_ARGS runs bench/gpu_kernel_profile.py (Nsight Compute, Kiln against torch.compile).
set -uo pipefail
archive=${1:-.device/gpu.tar.gz}
out=${OUT:-/tmp/kiln-gpu-suite}
mkdir -p "$out"
unpack=$(mktemp -d)
tar -xzf "$archive" -C "$unpack" || { echo "cannot unpack $archive"; exit 1; }
bundle="$unpack/gpu"

# The CUDA libraries: the toolkit's and the ones Python wheels carry (cuDNN, cuBLAS, NVRTC).
libdirs="$bundle/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && libdirs="$libdirs:$d"; done
for py in python3 /opt/torch/.venv/bin/python3; do
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null) || continue
  for d in "$site"/nvidia/*/lib "$site"/nvidia/cu13/lib; do [ -d "$d" ] && libdirs="$libdirs:$d"; done
  break
done
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KILN_SOURCE_DIR="$bundle/src"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader
for lib in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9 libnvrtc.so.13; do
  found=$(ldconfig -p 2>/dev/null | grep -m1 "$lib" | awk '{print $NF}')
  for d in ${libdirs//:/ }; do [ -z "$found" ] && [ -e "$d/$lib" ] && found="$d/$lib"; done
  echo "$lib: ${found:-NOT FOUND}"
done

python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())' 2>&1 | tail -1
echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) ($(nproc) cores)"

status=0
if [ "${KILN_GPU_TEST_FILTER:-}" != none ]; then
  echo "== unit tests that need a GPU"
  "$bundle/bin/kiln_unit_tests" --gtest_filter="${KILN_GPU_TEST_FILTER:-*Cuda*}" --gtest_brief=0 2>&1 | tee "$out/gpu_unit_tests.log" || status=1
  if grep -q "SKIPPED" "$out/gpu_unit_tests.log"; then
    echo "GPU unit tests were skipped on a GPU machine: failing"; status=1
  fi
fi
# The kiln Python package with CUDA engines and PyTorch's DLPack tensors, when the bundle has the
# package (make_gpu_bundle.py --python-package; KILN_GPU_PYTHON=0 skips it).
if [ -d "$bundle/python/kiln" ] && [ "${KILN_GPU_PYTHON:-1}" != 0 ]; then
  echo "== tests/device/gpu_python_check.py"
  python3 "$(dirname "$0")/gpu_python_check.py" --kiln "$bundle/bin/kiln" --package-dir "$bundle/python" \
    --model "$bundle/src/models/demo" --workdir "$(mktemp -d)" 2>&1 | tee "$out/gpu_python_check.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi
# Each model: random inputs (same seed) through the CPU and through a conversion for the GPU;
# the outputs must agree to FP32 precision; then what ran where, and a short timing of each.
check_model() {  # name, dir, run args...
  local name=$1 dir=$2; shift 2
  local work; work=$(mktemp -d)
  echo "== $name: converted for the GPU against the CPU"
  if ! "$kiln" run "$dir" "$@" --seed 7 --output-dir "$work/cpu" > "$work/cpu.log" 2>&1; then
    echo "$name: CPU run FAILED"; tail -5 "$work/cpu.log"; status=1; return
  fi
  if ! "$kiln" convert "$dir" "$work/gpu_model" --device cuda > "$work/convert.log" 2>&1 ||
     ! "$kiln" run "$work/gpu_model" "$@" --seed 7 --output-dir "$work/gpu" > "$work/gpu.log" 2>&1; then
    echo "$name: GPU conversion or run FAILED"; tail -n 5 "$work/convert.log" "$work/gpu.log"; status=1; return
  fi
  "$kiln" summary "$work/gpu_model" 2>&1 | grep -E "^\[\*\]|^ +[0-9]+ +[A-Za-z]" | head -20
  python3 - "$work/cpu" "$work/gpu" <<'PY' || status=1
import sys, os, numpy as np
cpu, gpu = sys.argv[1], sys.argv[2]
worst = 0.0
for f in sorted(os.listdir(cpu)):
    a, b = np.load(os.path.join(cpu, f)).astype(np.float64), np.load(os.path.join(gpu, f)).astype(np.float64)
    err = np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-30)
    worst = max(worst, err)
    print("  %s: shape %s, relative L2 GPU vs CPU %.2e" % (f, a.shape, err))
print("  %s" % ("agree" if worst <= 1e-5 else "DISAGREE (bound 1e-5)"))
sys.exit(0 if worst <= 1e-5 else 1)
PY
  # FP16 engines on the same inputs: reported, not judged here (the bounds are in the unit tests).
  if "$kiln" convert "$dir" "$work/gpu16" --device cuda --precision FP16 > "$work/convert16.log" 2>&1 &&
     "$kiln" run "$work/gpu16" "$@" --seed 7 --output-dir "$work/gpu16_out" > "$work/gpu16.log" 2>&1; then
    python3 - "$work/cpu" "$work/gpu16_out" <<'PY'
import sys, os, numpy as np
for f in sorted(os.listdir(sys.argv[1])):
    a, b = np.load(os.path.join(sys.argv[1], f)).astype(np.float64), np.load(os.path.join(sys.argv[2], f)).astype(np.float64)
    print("  FP16 %s: relative L2 vs CPU FP32 %.2e" % (f, np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-30)))
PY
  else
    echo "  FP16 conversion or run FAILED"; tail -n 8 "$work/convert16.log" "$work/gpu16.log"; status=1
  fi
  for device in cuda cpu; do
    "$kiln" bench "$dir" --device $device "$@" --warmup 5 --duration 3 2>/dev/null |
      grep -E "throughput|latency|engine runs" | sed "s/^/  [$device] /"
  done
}

kiln="$bundle/bin/kiln"
if [ -f "$bundle/data/digits.npz" ] && [ "${KILN_GPU_DIGITS:-1}" != 0 ]; then
  echo "== tests/device/gpu_digits_accuracy.py"
  python3 "$(dirname "$0")/gpu_digits_accuracy.py" --kiln "$kiln" --digits "$bundle/data/digits.npz" \
    ${KILN_GPU_DIGITS_ARGS:-} 2>&1 | tee "$out/gpu_digits_accuracy.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi
# The test zoo against TensorFlow's outputs, FP32/FP16/BF16, SavedModels and ONNX exports.
if [ -d "$bundle/zoo" ] && [ "${KILN_GPU_ZOO:-1}" != 0 ]; then
  echo "== tests/device/gpu_zoo_check.py"
  # shellcheck disable=SC2086
  python3 "$(dirname "$0")/gpu_zoo_check.py" --kiln "$kiln" --cases "$bundle/zoo" ${KILN_GPU_ZOO_ARGS:-} 2>&1 |
    tee "$out/gpu_zoo_check.log" || status=1
fi
[ "${KILN_GPU_MODELS:-1}" = 0 ] || {
check_model demo "$bundle/src/models/demo" --batch-size 4
for m in "$bundle"/models/*/; do
  [ -d "$m" ] || continue
  check_model "$(basename "$m")" "$m" --batch-size 8
done
}

# The PyTorch comparison (bench/gpu_compare.py) when KILN_GPU_COMPARE_ARGS is set ("-" for its
# defaults); its table goes to the log and its JSON to $out/gpu_compare.json.
if [ -n "${KILN_GPU_COMPARE_ARGS:-}" ]; then
  echo "== bench/gpu_compare.py"
  args=$KILN_GPU_COMPARE_ARGS; [ "$args" = - ] && args=
  # shellcheck disable=SC2086
  python3 "$(dirname "$0")/../../bench/gpu_compare.py" --kiln "$kiln" --json "$out/gpu_compare.json" $args 2>&1 |
    grep --line-buffered -vE "Warning|warn\(|^ +(return|is_causal|torch\.)" || status=1
fi

# Kernel-by-kernel time of one inference, Kiln against torch.compile (bench/gpu_kernel_profile.py,
# Nsight Compute) when KILN_GPU_KERNEL_PROFILE_ARGS is set ("-" for its defaults).
if [ -n "${KILN_GPU_KERNEL_PROFILE_ARGS:-}" ]; then
  echo "== bench/gpu_kernel_profile.py"
  args=$KILN_GPU_KERNEL_PROFILE_ARGS; [ "$args" = - ] && args=
  # shellcheck disable=SC2086
  python3 "$(dirname "$0")/../../bench/gpu_kernel_profile.py" --kiln "$kiln" --json "$out/gpu_kernel_profile.json" $args 2>&1 |
    grep --line-buffered -vE "Warning|warn\(|^ +(return|is_causal|torch\.)" || status=1
fi

echo "== gpu_suite: $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status
