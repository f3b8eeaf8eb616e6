// ONNX importers of the nn family (being written).
#include "frontend/onnx/importer.h"

namespace kiln::onnxfe {

void RegisterNnImporters(ImporterTable& table) { (void)table; }

}  // namespace kiln::onnxfe
