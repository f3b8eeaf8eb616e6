"""The kiln Python package (python/kiln): kiln.load, signatures called with numpy and DLPack
inputs, kiln.Converter, and the errors bad Python input raises. Oracle: TensorFlow."""

import numpy as np
import pytest

from kiln_checks import compare, tf_case

tf = pytest.importorskip("tensorflow")


def check(outputs, ref, rtol=1e-5):
    problems = []
    assert sorted(outputs) == sorted(ref), "output names %s, TensorFlow's %s" % (sorted(outputs), sorted(ref))
    for name in ref:
        problems += compare(name, outputs[name], ref[name], rtol)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("model_name", ["mlp_keras3", "two_io_tfkeras", "bert_keras3"])
def test_load_runs_signatures_like_tensorflow(kiln_py, zoo_dir, model_name):
    meta, inputs, ref = tf_case(zoo_dir, model_name)
    model = kiln_py.load(zoo_dir / model_name)
    tf_model = tf.saved_model.load(str(zoo_dir / model_name))
    assert sorted(model.signatures) == sorted(tf_model.signatures)
    f = model.signatures["serving_default"]
    tf_sig = tf_model.signatures["serving_default"]
    assert sorted(f.structured_input_signature[1]) == sorted(tf_sig.structured_input_signature[1])
    assert sorted(f.structured_outputs) == sorted(tf_sig.structured_outputs)
    for name, spec in f.structured_input_signature[1].items():
        assert spec.dtype == np.dtype(tf_sig.structured_input_signature[1][name].dtype.as_numpy_dtype)
    check(f(**inputs), ref)
    # Positional arguments in the order of f.inputs give the same result.
    positional = f(*[inputs[s.name] for s in f.inputs])
    for name in ref:
        np.testing.assert_array_equal(positional[name], f(**inputs)[name])


class DLPackOnly:
    """An object that offers its data only through the DLPack protocol (as a framework's tensor does)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_inputs_are_read_in_place_and_dlpack_objects_are_accepted(kiln_py, zoo_dir):
    meta, inputs, ref = tf_case(zoo_dir, "two_io_tfkeras")
    f = kiln_py.load(zoo_dir / "two_io_tfkeras").signatures["serving_default"]
    for name, array in inputs.items():
        assert array.flags.c_contiguous
        # The address Kiln reads is the array's own memory, for numpy arrays and DLPack objects.
        assert kiln_py._kiln._data_address(array) == array.ctypes.data
        assert kiln_py._kiln._data_address(DLPackOnly(array)) == array.ctypes.data
    check(f(**{k: DLPackOnly(v) for k, v in inputs.items()}), ref)
    # TensorFlow's eager tensors are accepted too.
    check(f(**{k: tf.constant(v) for k, v in inputs.items()}), ref)
    # Results own their memory: changing the inputs afterwards changes nothing.
    out = f(**inputs)
    before = {k: v.copy() for k, v in out.items()}
    for v in inputs.values():
        v[...] = 0
    for k in out:
        np.testing.assert_array_equal(out[k], before[k])


def test_bad_python_input_raises_clear_exceptions(kiln_py, zoo_dir, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, "mlp_keras3")
    f = kiln_py.load(zoo_dir / "mlp_keras3").signatures["serving_default"]
    (name, value), = inputs.items()
    with pytest.raises(kiln_py.InvalidArgumentError, match=name) as e:
        f(**{name: value.astype(np.float64)})
    assert isinstance(e.value, ValueError) and "float64" in str(e.value) and "float32" in str(e.value)
    with pytest.raises(TypeError, match="has no input 'nope'.*" + name):
        f(nope=value)
    with pytest.raises(TypeError, match="missing input"):
        f()
    with pytest.raises(TypeError, match="given twice"):
        f(value, **{name: value})
    with pytest.raises(kiln_py.InvalidArgumentError, match="ragged|rectangular"):
        f([[1.0, 2.0], [3.0]])
    with pytest.raises(kiln_py.InvalidArgumentError, match="int64|float32"):
        f(np.ones(value.shape, np.int64))
    with pytest.raises(kiln_py.InvalidArgumentError, match=name):
        f(np.ones((value.shape[0], value.shape[1] + 1), np.float32))
    for junk in (None, {"a": 1}, object()):
        with pytest.raises(kiln_py.InvalidArgumentError, match=name):
            f(junk)
    with pytest.raises(kiln_py.InvalidArgumentError, match="rank 0"):
        f(3.0)  # a Python scalar stays a scalar
    assert f(np.zeros((0, value.shape[1]), np.float32))[next(iter(ref))].shape[0] == 0  # empty batch
    # Python lists of floats take the input's dtype; non-contiguous arrays are read correctly.
    check(f(value.tolist()), ref)
    wide = np.zeros((value.shape[0], value.shape[1] * 2), np.float32)
    wide[:, ::2] = value
    check(f(wide[:, ::2]), ref)
    with pytest.raises(kiln_py.NotFoundError) as e:
        kiln_py.load(tmp_path / "does_not_exist")
    assert isinstance(e.value, ValueError)
    with pytest.raises(KeyError, match="serving_default"):
        kiln_py.load(zoo_dir / "mlp_keras3").signatures["nope"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0fnot a proto")
    with pytest.raises(kiln_py.KilnError):
        kiln_py.load(bad)


def test_converter_workflow_in_python(kiln_py, zoo_dir, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, "two_io_tfkeras")
    lines = []
    converter = kiln_py.Converter(zoo_dir / "two_io_tfkeras", maximum_cached_engines=4, progress=lines.append)
    func = converter.convert()
    assert any("converted signature" in l for l in lines), lines
    check(func(**inputs), ref)  # the converted function runs before save

    def input_fn():
        yield dict(inputs)  # by name
        yield [inputs[s.name] for s in func.inputs]  # in signature order

    converter.build(input_fn=input_fn)
    assert any("building engine" in l for l in lines), lines
    converter.save(tmp_path / "converted")
    summary = converter.summary()
    assert "Total number of engines" in summary and "% of OPs Converted" in summary
    loaded = kiln_py.load(tmp_path / "converted").signatures["serving_default"]
    check(loaded(**inputs), ref)
    assert loaded.stats()["engines_loaded"] >= 1 and loaded.stats()["native_runs"] == 0
    converter.save_kiln_file(tmp_path / "m.kiln")
    check(kiln_py.load(tmp_path / "m.kiln").signatures["serving_default"](**inputs), ref)
    with pytest.raises(kiln_py.FailedPreconditionError, match="already"):
        converter.build(input_fn=input_fn)


def test_generator_errors_are_python_exceptions(kiln_py, zoo_dir):
    meta, inputs, ref = tf_case(zoo_dir, "two_io_tfkeras")
    model = zoo_dir / "two_io_tfkeras"

    def converted():
        c = kiln_py.Converter(model, progress=False)
        c.convert()
        return c

    with pytest.raises(kiln_py.InvalidArgumentError, match="yielded no input sets"):
        converted().build(input_fn=lambda: iter(()))

    class Boom(Exception):
        pass

    def raising():
        yield dict(inputs)
        raise Boom("from the generator")

    with pytest.raises(Boom, match="from the generator"):
        converted().build(input_fn=raising)
    with pytest.raises(kiln_py.InvalidArgumentError, match="has 1 tensors; the signature takes 2"):
        converted().build(input_fn=lambda: iter([[next(iter(inputs.values()))]]))
    with pytest.raises(kiln_py.InvalidArgumentError, match="no input named nope"):
        converted().build(input_fn=lambda: iter([{"nope": 1}]))
    with pytest.raises(kiln_py.InvalidArgumentError, match="calibration_input_fn was given"):
        kiln_py.Converter(model, progress=False).convert(calibration_input_fn=lambda: iter([dict(inputs)]))
    with pytest.raises(TypeError, match="unknown parameter"):
        kiln_py.Converter(model, precison_mode="FP16")
    with pytest.raises(kiln_py.InvalidArgumentError, match="precision"):
        kiln_py.Converter(model, precision_mode="FP7")
    with pytest.raises(kiln_py.FailedPreconditionError):
        kiln_py.Converter(model, progress=False).build(input_fn=lambda: iter([dict(inputs)]))

    def log_raises(line):
        raise Boom("from the progress callback")

    with pytest.raises(Boom, match="progress callback"):
        kiln_py.Converter(model, progress=log_raises).convert()


@pytest.mark.parametrize("model_name", ["two_io_tfkeras", "bert_keras3"])
def test_tensorflow_loads_converted_models_with_kilns_op_library(kiln_py, kiln_bin, zoo_dir, model_name, tmp_path):
    """tf.saved_model.load of a Kiln-converted SavedModel (after `import kiln.tf`) runs the same
    engines as kiln.load, and both match TensorFlow on the original model."""
    import kiln.tf  # noqa: F401  (registers KilnRegisterModel and KilnSignatureOp)

    meta, inputs, ref = tf_case(zoo_dir, model_name)
    converter = kiln_py.Converter(zoo_dir / model_name, progress=False)
    converter.convert()
    converter.build(input_fn=lambda: iter([dict(inputs)]))
    converter.save(tmp_path / "converted")
    from conftest import run_kiln
    proc = run_kiln(kiln_bin, ["inspect", tmp_path / "converted"])
    assert proc.returncode == 0 and "Converted SavedModel" in proc.stdout and "Engines: 1" in proc.stdout, proc.stdout
    loaded = tf.saved_model.load(str(tmp_path / "converted"))
    assert list(loaded.signatures) == ["serving_default"]
    tf_func = loaded.signatures["serving_default"]
    out = {k: v.numpy() for k, v in tf_func(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    check(out, ref)
    kiln_out = kiln_py.load(tmp_path / "converted").signatures["serving_default"](**inputs)
    for name in ref:
        np.testing.assert_array_equal(out[name], kiln_out[name])
    # The model keeps working after it is moved (the op finds it through its asset path).
    moved = tmp_path / "moved"
    (tmp_path / "converted").rename(moved)
    again = tf.saved_model.load(str(moved)).signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    for name in ref:
        np.testing.assert_array_equal(again[name].numpy(), out[name])
    # A model whose files are gone by its first run: TensorFlow's error says Kiln cannot load it.
    import shutil
    shutil.copytree(moved, tmp_path / "gone")
    gone = tf.saved_model.load(str(tmp_path / "gone")).signatures["serving_default"]
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(tf.errors.FailedPreconditionError, match="Kiln cannot load the converted model"):
        gone(**{k: tf.constant(v) for k, v in inputs.items()})
