#include "backend/cpu/cpu_features.h"

#include <dlfcn.h>

#include <fmt/format.h>

#include <dnnl.hpp>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace kiln::backend::cpu {

const CpuFeatures& HostCpu() {
  static const CpuFeatures cpu = [] {
    CpuFeatures f;
#if defined(__x86_64__)
    f.arch = "x86-64";
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (f.avx512f && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avx512_bf16 = (eax >> 5) & 1;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
      f.avx512_fp16 = f.avx512f && ((edx >> 23) & 1);
      f.amx_bf16 = (edx >> 22) & 1;
    }
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    f.int8_dot_product = isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
                         isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
#elif defined(__aarch64__)
    f.arch = "aarch64";
#else
    f.arch = "unknown-cpu";
#endif
    return f;
  }();
  return cpu;
}

std::string DeviceString(const CpuFeatures& cpu) {
  std::string s = cpu.arch;
  if (cpu.avx2) s += " avx2";
  if (cpu.fma) s += " fma";
  if (cpu.avx512f) s += " avx512f";
  if (cpu.avx512_bf16) s += " avx512_bf16";
  if (cpu.avx512_fp16) s += " avx512_fp16";
  if (cpu.amx_bf16) s += " amx_bf16";
  if (cpu.int8_dot_product) s += " int8_dot";
  return s;
}

PrecisionChoice ChoosePrecision(Precision requested, const CpuFeatures& cpu) {
  PrecisionChoice c;
  const std::string device = DeviceString(cpu);
  switch (requested) {
    case Precision::kFP32:
      break;
    case Precision::kBF16:
      if (cpu.native_bf16()) {
        c.precision = Precision::kBF16;
        c.bf16_math = true;
      } else {
        c.note = fmt::format("BF16 requested; this CPU ({}) has no native BF16 arithmetic, engine runs FP32", device);
      }
      break;
    case Precision::kFP16:
      c.note = cpu.avx512_fp16
                   ? fmt::format("FP16 requested; the CPU backend (oneDNN 2.6) has no FP16 kernels for this CPU ({}), engine runs FP32", device)
                   : fmt::format("FP16 requested; this CPU ({}) has no native FP16 arithmetic, engine runs FP32", device);
      break;
    case Precision::kINT8:
      break;  // the engine settles it: INT8 where its steps have quantized operands (CpuEngine::SettleInt8)
    case Precision::kFP8:
      c.note = fmt::format("FP8 requested; the CPU backend (oneDNN 2.6) has no FP8 kernels for this CPU ({}): the FP8 "
                           "quantize-dequantize steps run in FP32 kernels (FP8 accuracy, FP32 speed)",
                           device);
      break;
  }
  return c;
}

namespace {
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();
// libgomp is loaded as oneDNN's dependency; look its entry points up instead of linking it.
SetThreadsFn OmpSet() {
  static const auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}
GetThreadsFn OmpGet() {
  static const auto fn = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return fn;
}
}  // namespace

OmpThreadLimit::OmpThreadLimit(int threads) {
  if (threads <= 0 || !OmpSet() || !OmpGet()) return;
  previous_ = OmpGet()();
  OmpSet()(threads);
}

OmpThreadLimit::~OmpThreadLimit() {
  if (previous_ > 0) OmpSet()(previous_);
}

}  // namespace kiln::backend::cpu
