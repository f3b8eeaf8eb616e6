// The CPU engine (cpu_engine.cc) reaches CloneGraph through this header; the graph helpers
// themselves live in ir/graph_util.h.
#pragma once

#include "ir/graph_util.h"

namespace kiln::backend::cpu {

using ir::CloneGraph;

}  // namespace kiln::backend::cpu
