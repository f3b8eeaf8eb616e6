// One libFuzzer executable per target: KILN_FUZZ_TARGET names it (CMake, KILN_FUZZ=ON).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kiln::fuzz::SetFuzzingLimits();
  if (!kiln::fuzz::FindTarget(KILN_FUZZ_TARGET)) {
    std::fprintf(stderr, "no fuzz target named %s\n", KILN_FUZZ_TARGET);
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kiln::fuzz::Target* target = kiln::fuzz::FindTarget(KILN_FUZZ_TARGET);
  target->run({data, size});
  return 0;
}
