// Work items run side by side but started in order, with failures reported as if they had run
// one after the other (engine builds prepare their steps this way).
#pragma once

#include <cstddef>
#include <functional>

namespace kiln {

// Runs work(0) ... work(count - 1) on up to `threads` threads, each taking the next index in
// order. `started(k)` runs on the calling thread only (it may be a host language's callback),
// after index k was taken, and not for every k when several are taken at once. Once an item fails
// (or `started` throws), no new index is taken; when the items taken have finished, the exception
// of the lowest failing index is rethrown: the one running them in order would have thrown (then
// `started`'s). If no thread can be started, the items run on the calling thread.
void RunInOrderOnThreads(size_t count, int threads, const std::function<void(size_t)>& work,
                         const std::function<void(size_t)>& started);

}  // namespace kiln
