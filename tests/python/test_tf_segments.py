"""TensorFlow runs converted models segment by segment, as TF-TRT's TRTEngineOp did (issue 12): a
SavedModel converted from TensorFlow keeps the signature's own TF graph in saved_model.pb with one
KilnEngineOp per engine, and the ops kept out of the engines stay ordinary TensorFlow ops that
TensorFlow runs. Where that layout cannot be made, one KilnSignatureOp runs the whole signature and
the conversion says why. Oracles: TensorFlow on the original model, and kiln.load of the converted one."""

import collections

import numpy as np
import pytest

from conftest import run_kiln
from kiln_checks import tf_case

tf = pytest.importorskip("tensorflow")

RTOL = 1e-5  # FP32: relative L2 error


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.linalg.norm(np.asarray(actual, dtype=np.float64) - expected)
    return diff / max(np.linalg.norm(expected), 1e-30)


def convert(kiln_py, source, out, inputs, **params):
    """Converts `source` with `params`, builds for `inputs`, saves to `out`; returns the log lines."""
    lines = []
    converter = kiln_py.Converter(source, conversion_params=kiln_py.ConversionParams(**params), progress=lines.append)
    converter.convert()
    converter.build(input_fn=lambda: iter([dict(inputs)]))
    converter.save(out)
    return lines


def loaded_ops(converted):
    """The loaded signature's graph (as TensorFlow runs it) by op type, and the function."""
    import kiln.tf  # noqa: F401  (registers KilnRegisterModel, KilnEngineOp and KilnSignatureOp)
    fn = tf.saved_model.load(str(converted)).signatures["serving_default"]
    ops = collections.Counter(n.op for n in fn.graph.as_graph_def().node)
    return ops, fn


def check_outputs(kiln_py, converted, fn, inputs, ref):
    out = {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    kiln_out = kiln_py.load(converted).signatures["serving_default"](**inputs)
    assert sorted(out) == sorted(ref)
    for name in ref:
        assert out[name].shape == ref[name].shape, (name, out[name].shape, ref[name].shape)
        assert rel_l2(out[name], ref[name]) <= RTOL, (name, "vs TensorFlow", rel_l2(out[name], ref[name]))
        assert rel_l2(out[name], kiln_out[name]) <= RTOL, (name, "vs kiln.load", rel_l2(out[name], kiln_out[name]))


# (model, op types kept out of the engines, the TF op types TensorFlow must run itself)
PER_ENGINE = [
    ("mlp_keras3", ["Relu"], {"Relu": 1}),
    ("cnn_tfkeras", ["Relu"], {"Relu": 3}),
    ("cnn_keras3", ["MaxPool"], {"MaxPool": 1}),
    ("two_io_tfkeras", ["Tanh"], {"Tanh": 1}),
]


@pytest.mark.parametrize("model_name,denylist,native", PER_ENGINE, ids=[c[0] for c in PER_ENGINE])
def test_engines_are_ops_in_the_original_tensorflow_graph(kiln_py, kiln_bin, zoo_dir, model_name, denylist, native,
                                                          tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, model_name)
    converted = tmp_path / "converted"
    log = convert(kiln_py, zoo_dir / model_name, converted, inputs, denylist=denylist, minimum_segment_size=1)
    assert any("TensorFlow layout of saved_model.pb: per-engine" in line for line in log), log
    ops, fn = loaded_ops(converted)
    # Engines are KilnEngineOp nodes; the denylisted ops are TensorFlow's own; nothing runs the whole signature.
    assert ops["KilnEngineOp"] >= 2, ops
    assert ops["KilnSignatureOp"] == 0, ops
    for op, count in native.items():
        assert ops[op] == count, (op, ops)
    # No op an engine covers is left in the graph (the engines' ops are gone, not duplicated).
    assert set(ops) <= {"KilnEngineOp", "Placeholder", "Identity", "Const"} | set(native), ops
    check_outputs(kiln_py, converted, fn, inputs, ref)
    proc = run_kiln(kiln_bin, ["summary", converted])
    assert proc.returncode == 0, proc.stderr
    assert "TensorFlow layout of saved_model.pb: per-engine: %d KilnEngineOp" % ops["KilnEngineOp"] in proc.stdout, \
        proc.stdout


def test_a_fully_converted_model_is_one_engine_op(kiln_py, zoo_dir, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, "bert_keras3")
    converted = tmp_path / "converted"
    convert(kiln_py, zoo_dir / "bert_keras3", converted, inputs)
    ops, fn = loaded_ops(converted)
    assert ops["KilnEngineOp"] == 1 and ops["KilnSignatureOp"] == 0, ops
    check_outputs(kiln_py, converted, fn, inputs, ref)


# (model, denylist, what the reason names)
FALLBACK = [
    # Softmax kept out splits an Einsum's decomposition: an engine output is no TF tensor.
    ("bert_keras3", ["Softmax"], "is no TensorFlow tensor (internal to one TF node's decomposition"),
    # tf.cond whose branches read variables: TensorFlow would run the If itself, on variables the
    # converted graph no longer has (they are frozen into constants).
    ("raw_module", ["GatherV2"], "(If) uses a variable other than by ReadVariableOp"),
]


@pytest.mark.parametrize("model_name,denylist,reason", FALLBACK, ids=[c[0] for c in FALLBACK])
def test_fallback_runs_the_whole_signature_and_names_the_reason(kiln_py, kiln_bin, zoo_dir, model_name, denylist,
                                                                reason, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, model_name)
    converted = tmp_path / "converted"
    log = convert(kiln_py, zoo_dir / model_name, converted, inputs, denylist=denylist, minimum_segment_size=1)
    line = [l for l in log if "TensorFlow layout of saved_model.pb" in l]
    assert line and "whole signature (KilnSignatureOp): " in line[0] and reason in line[0], log
    ops, fn = loaded_ops(converted)
    assert ops["KilnSignatureOp"] == 1 and ops["KilnEngineOp"] == 0, ops
    check_outputs(kiln_py, converted, fn, inputs, ref)
    proc = run_kiln(kiln_bin, ["summary", converted])
    assert proc.returncode == 0 and "whole signature (KilnSignatureOp): " in proc.stdout and reason in proc.stdout, \
        proc.stdout


def test_engine_ops_use_the_saved_engines_and_build_for_new_shapes(kiln_py, zoo_dir, tmp_path, capfd):
    """The engines build() made are saved and used by the engine ops (no build at the shapes built
    for, as with kiln.load); a batch beyond them builds at run time (implicit batch), and every
    result matches TensorFlow."""
    meta, inputs, ref = tf_case(zoo_dir, "mlp_keras3")
    built_batch = next(iter(inputs.values())).shape[0]
    converted = tmp_path / "converted"
    convert(kiln_py, zoo_dir / "mlp_keras3", converted, inputs, denylist=["Relu"], minimum_segment_size=1)
    assert len(list((converted / "assets" / "kiln" / "engines").iterdir())) == 2
    ops, fn = loaded_ops(converted)
    assert ops["KilnEngineOp"] == 2, ops
    original = tf.saved_model.load(str(zoo_dir / "mlp_keras3")).signatures["serving_default"]
    capfd.readouterr()
    for batch, builds in ((built_batch, 0), (1, 0), (built_batch + 5, 2)):
        feed = {k: tf.constant(np.concatenate([v] * 8)[:batch]) for k, v in inputs.items()}
        want = {k: v.numpy() for k, v in original(**feed).items()}
        got = {k: v.numpy() for k, v in fn(**feed).items()}
        for name in want:
            assert got[name].shape == want[name].shape
            assert rel_l2(got[name], want[name]) <= RTOL, (batch, name, rel_l2(got[name], want[name]))
        err = capfd.readouterr().err
        assert err.count("kiln: built engine") == builds, (batch, err)


@pytest.fixture(scope="module")
def gather_module(tmp_path_factory):
    """ids [N,5] int32 -> tf.gather of a variable (ResourceGather, as tf-keras Embedding), a sum,
    Relu, a matmul with a variable and Tanh."""
    rng = np.random.default_rng(3)

    class GatherModule(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.Variable(rng.normal(size=(20, 8)).astype(np.float32))
            self.w = tf.Variable(rng.normal(size=(8, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.int32, name="ids")])
        def __call__(self, ids):
            h = tf.nn.relu(tf.reduce_sum(tf.gather(self.table, ids), axis=1))
            return {"y": tf.nn.tanh(tf.matmul(h, self.w))}

    m = GatherModule()
    path = tmp_path_factory.mktemp("gather") / "model"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.__call__.get_concrete_function()})
    ids = np.random.default_rng(4).integers(0, 20, size=(3, 5)).astype(np.int32)
    ref = {k: v.numpy() for k, v in
           tf.saved_model.load(str(path)).signatures["serving_default"](ids=tf.constant(ids)).items()}
    return path, {"ids": ids}, ref


def test_a_variable_read_by_an_engine_other_than_by_read_variable_op(kiln_py, gather_module, tmp_path):
    """ResourceGather inside an engine: the engine holds the frozen table, TensorFlow never sees
    the node; kept out of the engines, TensorFlow could not run it, so the whole signature runs in
    one KilnSignatureOp and the reason names the node."""
    path, inputs, ref = gather_module
    assert b"ResourceGather" in (path / "saved_model.pb").read_bytes()
    log = convert(kiln_py, path, tmp_path / "inside", inputs, denylist=["Tanh"], minimum_segment_size=1)
    assert any("TensorFlow layout of saved_model.pb: per-engine" in line for line in log), log
    ops, fn = loaded_ops(tmp_path / "inside")
    assert ops["KilnEngineOp"] == 1 and ops["Tanh"] == 1 and "ResourceGather" not in ops, ops
    check_outputs(kiln_py, tmp_path / "inside", fn, inputs, ref)

    log = convert(kiln_py, path, tmp_path / "outside", inputs, denylist=["ResourceGather"], minimum_segment_size=1)
    line = [l for l in log if "TensorFlow layout of saved_model.pb" in l]
    assert line and "whole signature (KilnSignatureOp): " in line[0] and "(ResourceGather) uses a variable" in line[0], log
    ops, fn = loaded_ops(tmp_path / "outside")
    assert ops["KilnSignatureOp"] == 1 and ops["KilnEngineOp"] == 0, ops
    check_outputs(kiln_py, tmp_path / "outside", fn, inputs, ref)


def test_onnx_sources_keep_the_signature_op(kiln_py, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    x = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)
    log = convert(kiln_py, tmp_path / "m.onnx", tmp_path / "converted", {"x": x}, minimum_segment_size=1)
    assert any("whole signature (KilnSignatureOp): the model was not converted from a TensorFlow SavedModel" in l
               for l in log), log
    ops, fn = loaded_ops(tmp_path / "converted")
    assert ops["KilnSignatureOp"] == 1 and ops["KilnEngineOp"] == 0, ops
    np.testing.assert_array_equal(fn(x=tf.constant(x))["y"].numpy(), np.maximum(x, 0))


def _compare_loaded(converted, original_dir, feeds):
    ops, fn = loaded_ops(converted)
    want = tf.saved_model.load(str(original_dir)).signatures["serving_default"](**feeds)
    got = fn(**feeds)
    for name in want:
        assert rel_l2(got[name].numpy(), want[name].numpy()) <= RTOL, (name, rel_l2(got[name].numpy(), want[name].numpy()))
    return ops


def test_keras_recurrent_layers_fused_into_an_engine_are_engine_ops(kiln_py, tmp_path):
    """Keras LSTM / GRU loops (While over TensorLists) that Kiln fuses into recurrent ops inside an
    engine leave no loop in TensorFlow's graph: their bodies are in its library, unused."""
    keras = pytest.importorskip("keras")
    inp = keras.Input((12, 8), name="x")
    y = keras.layers.GRU(8)(keras.layers.LSTM(16, return_sequences=True)(inp))
    keras.Model(inp, keras.layers.Dense(3)(y)).export(str(tmp_path / "rnn"), verbose=False)
    x = np.random.default_rng(7).standard_normal((3, 12, 8)).astype(np.float32)
    converted = tmp_path / "converted"
    log = convert(kiln_py, tmp_path / "rnn", converted, {"x": x})
    assert any("TensorFlow layout of saved_model.pb: per-engine" in line for line in log), log
    ops = _compare_loaded(converted, tmp_path / "rnn", {"x": tf.constant(x)})
    assert ops["KilnEngineOp"] == 1 and ops["KilnSignatureOp"] == 0, ops
    assert not {"While", "StatelessWhile"} & set(ops), ops


def test_control_flow_kiln_leaves_native_stays_tensorflows(kiln_py, tmp_path):
    """A tf.cond on a run-time predicate (no variables) is not in an engine: TensorFlow runs the If
    node with its branches from the converted graph's library, and both branches give
    TensorFlow's original results."""

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.constant(np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
        def __call__(self, x):
            h = tf.matmul(x, self.w) + 0.5
            h = tf.cond(tf.reduce_sum(x) > 0, lambda: tf.tanh(h) * 2.0, lambda: tf.nn.relu(h) - 1.0)
            return {"y": tf.matmul(h, tf.transpose(self.w)) * 0.25}

    tf.saved_model.save(Module(), str(tmp_path / "cond"))
    x = np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)
    converted = tmp_path / "converted"
    log = convert(kiln_py, tmp_path / "cond", converted, {"x": x}, minimum_segment_size=1)
    assert any("TensorFlow layout of saved_model.pb: per-engine" in line for line in log), log
    for sign in (1.0, -1.0):
        feed = np.abs(x) * sign
        ops = _compare_loaded(converted, tmp_path / "cond", {"x": tf.constant(feed)})
    assert ops["KilnEngineOp"] >= 2 and ops["KilnSignatureOp"] == 0, ops
    assert {"If", "StatelessIf"} & set(ops), ops


def test_a_variable_read_by_a_tensorflow_op_is_a_const_with_its_value(kiln_py, tmp_path):
    """With MatMul kept out, TensorFlow's MatMul reads the frozen variable as a Const holding its
    value (the engine reads the bias inside itself)."""

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32))
            self.b = tf.Variable(np.linspace(-1, 1, 4).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.tanh(tf.matmul(x, self.w) + self.b) * 3.0}

    tf.saved_model.save(Module(), str(tmp_path / "var"))
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    converted = tmp_path / "converted"
    log = convert(kiln_py, tmp_path / "var", converted, {"x": x}, denylist=["MatMul"], minimum_segment_size=1)
    assert any("TensorFlow layout of saved_model.pb: per-engine" in line for line in log), log
    ops = _compare_loaded(converted, tmp_path / "var", {"x": tf.constant(x)})
    assert ops["MatMul"] == 1 and ops["KilnEngineOp"] == 1 and ops["Const"] >= 1, ops


def test_a_read_after_a_variable_write_is_an_identity_of_the_written_value(kiln_py, tmp_path):
    """A read ordered after AssignVariableOp sees the written value (TensorFlow's first call): with
    Relu kept out, TensorFlow reads it through an Identity of that value; an AssignAddVariableOp's
    new value is no TensorFlow tensor, so that model falls back to the signature op and says why."""

    class Module(tf.Module):
        def __init__(self, add):
            super().__init__()
            self.add = add
            self.v = tf.Variable([1.0, 2.0])

        @tf.function(input_signature=[tf.TensorSpec([2], tf.float32, name="x")])
        def __call__(self, x):
            a = self.v.read_value() * 2
            if self.add:
                self.v.assign_add(x)
            else:
                self.v.assign(self.v * 3 + x)
            return {"a": a, "b": tf.nn.relu(self.v.read_value())}

    x = np.array([0.25, -40.0], np.float32)
    for add, layout in [(False, "per-engine"), (True, "whole signature")]:
        src, converted = tmp_path / ("src%d" % add), tmp_path / ("converted%d" % add)
        tf.saved_model.save(Module(add), str(src))
        log = convert(kiln_py, src, converted, {"x": x}, denylist=["Relu"], minimum_segment_size=1)
        assert any("TensorFlow layout of saved_model.pb: " + layout in line for line in log), log
        if add:
            assert any("AssignAddVariableOp" in line and "is no TensorFlow tensor" in line for line in log), log
        ops = _compare_loaded(converted, src, {"x": tf.constant(x)})
        if not add:
            assert ops["Relu"] == 1 and ops["KilnEngineOp"] >= 1, ops
