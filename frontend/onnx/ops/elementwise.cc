// ONNX importers of the elementwise family (being written).
#include "frontend/onnx/importer.h"

namespace kiln::onnxfe {

void RegisterElementwiseImporters(ImporterTable& table) { (void)table; }

}  // namespace kiln::onnxfe
