"""TensorFlow interop: ``import kiln.tf`` registers Kiln's op library with TensorFlow, after which
``tf.saved_model.load`` runs Kiln-converted SavedModels (for a TensorFlow source their graph is
the original TensorFlow graph with one ``KilnEngineOp`` per engine; otherwise one
``KilnSignatureOp`` runs the converted signature through Kiln).

    import kiln.tf  # noqa: F401  (registers KilnEngineOp and KilnSignatureOp)
    model = tf.saved_model.load("/models/resnet50_kiln")
    out = model.signatures["serving_default"](input_1=images)

The same library serves C++ TensorFlow programs and TF Serving: load ``kiln.tf_op_library()``
(it opens ``libkiln.so`` from its own directory).
"""

import tensorflow as _tf

from kiln._paths import tf_op_library

ops = _tf.load_op_library(tf_op_library())

__all__ = ["ops", "tf_op_library"]
