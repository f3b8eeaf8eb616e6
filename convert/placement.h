// Device placement of a converted graph. Engine nodes run on their backend's device, every
// other node (the native executor) on the host; graph inputs arrive and outputs leave on the
// host. Every value gets its device, and where a value is read on the other side a copy node is
// inserted (MemcpyFromHost to the device, MemcpyToHost back), one per value and direction,
// shared by all its readers. An engine's outputs read by another engine on the same device
// stay there.
#pragma once

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::convert {

// Returns the number of copy nodes inserted (none when `engine_device` is the host).
int PlaceOnDevices(ir::Graph& graph, Device engine_device);

}  // namespace kiln::convert
