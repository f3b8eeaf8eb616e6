# %% [markdown]
# # Kiln from Python: a walkthrough
#
# Notebook-style (cells separated by `# %%`; VS Code and Jupytext open it as a notebook). The tests
# run it from top to bottom (tests/python/test_docs.py), so every cell here works. It uses the demo
# model bundled with Kiln (models/demo: a small MNIST-style CNN SavedModel, input `image`
# [N,28,28,1] float32, output `output_0` [N,10]).

# %%
import json
import os
import tempfile

import numpy as np

import kiln

MODEL = os.environ.get("KILN_DEMO_MODEL", os.path.join(os.path.dirname(__file__), "..", "..", "models", "demo"))
work = tempfile.mkdtemp(prefix="kiln-walkthrough-")
print("kiln", kiln.__version__)

# %% [markdown]
# ## Load and run
# `kiln.load` reads a SavedModel (or .onnx, converted model, .kiln file). Signatures are called
# like TensorFlow's: keyword arguments by input name, or positionally.

# %%
model = kiln.load(MODEL)
f = model.signatures["serving_default"]
print(f.structured_input_signature)
images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
out = f(image=images)
print({name: array.shape for name, array in out.items()})

# %% [markdown]
# ## Convert, build, save
# TF-TRT's workflow: `convert()` returns the converted function, `build()` makes engines for the
# shapes its generator yields, `save()` writes a SavedModel.

# %%
converter = kiln.Converter(MODEL, maximum_cached_engines=2, progress=print)
converted = converter.convert()
converter.build(input_fn=lambda: iter([[images], [images[:1]]]))
converter.save(os.path.join(work, "demo_kiln"))
print(converter.summary(line_length=100, detailed=False))
np.testing.assert_allclose(converted(images)["output_0"], out["output_0"], rtol=1e-5, atol=1e-6)

# %%
reloaded = kiln.load(os.path.join(work, "demo_kiln")).signatures["serving_default"]
print(reloaded(image=images)["output_0"].argmax(axis=1), reloaded.stats())

# %% [markdown]
# ## INT8 with calibration
# Calibration batches come from a generator; the calibration table is saved with the model.

# %%
def calibration_batches():
    rng = np.random.default_rng(1)
    for _ in range(4):
        yield [rng.random((8, 28, 28, 1), dtype=np.float32)]


int8 = kiln.Converter(MODEL, precision_mode="INT8", progress=False)
int8_func = int8.convert(calibration_input_fn=calibration_batches)
table = json.loads(int8.calibration_table)  # save it to reuse: calibration_table="table.json"
print("calibrated tensors (%s):" % table["calibrator"], sorted(table["tensors"]))
print("INT8 vs FP32 top-1 agreement:", float(np.mean(int8_func(images)["output_0"].argmax(1) == out["output_0"].argmax(1))))

# %% [markdown]
# ## Errors are Python exceptions

# %%
try:
    f(image=images.astype(np.float64))
except kiln.InvalidArgumentError as e:  # also a ValueError
    print("InvalidArgumentError:", e)

# %% [markdown]
# ## TensorFlow runs the converted model (with TensorFlow installed)

# %%
try:
    import tensorflow as tf
except ImportError:
    tf = None
if tf is not None:
    import kiln.tf  # noqa: F401  registers Kiln's op library

    loaded = tf.saved_model.load(os.path.join(work, "demo_kiln"))
    tf_out = loaded.signatures["serving_default"](image=tf.constant(images))["output_0"].numpy()
    np.testing.assert_array_equal(tf_out, reloaded(image=images)["output_0"])
    print("tf.saved_model.load ran the Kiln-converted model")
