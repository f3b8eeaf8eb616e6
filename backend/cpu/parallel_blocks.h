// Splitting a flat loop over n elements into blocks of 16 Ki elements on the OpenMP team oneDNN
// uses (its threads are idle between oneDNN calls), when the including file is built with OpenMP;
// small tensors (up to two blocks) stay on the calling thread.
#pragma once

#include <algorithm>
#include <cstdint>

namespace kiln::backend::cpu {

// block(begin, count) handles one block.
template <typename Block>
void ForBlocks(int64_t n, const Block& block) {
  constexpr int64_t kBlock = 16384;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (blocks > 2)
#endif
  for (int64_t b = 0; b < blocks; ++b) block(b * kBlock, std::min(kBlock, n - b * kBlock));
}

}  // namespace kiln::backend::cpu
