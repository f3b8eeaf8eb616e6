// ONNX importers of the array family (being written).
#include "frontend/onnx/importer.h"

namespace kiln::onnxfe {

void RegisterArrayImporters(ImporterTable& table) { (void)table; }

}  // namespace kiln::onnxfe
