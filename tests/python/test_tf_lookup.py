"""Static lookup tables (tf.lookup.StaticHashTable, Keras IntegerLookup / StringLookup) in SavedModels,
run by Kiln and compared with TensorFlow (exact: the outputs are looked-up values); mutable tables are
refused with the reason."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import fail

tf = pytest.importorskip("tensorflow")


def run(kiln_bin, model, inputs, tmp_path):
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % model, proc)
    return proc


def output(tmp_path, name):
    return np.load(tmp_path / "out" / ("%s.npy" % name))


@pytest.mark.parametrize("key_dtype,value_dtype", [(tf.int64, tf.int64), (tf.int32, tf.float32), (tf.int32, tf.int32),
                                                   (tf.int64, tf.float64), (tf.int64, tf.int32),
                                                   (tf.int32, tf.float64), (tf.int64, tf.float32)])
def test_static_hash_table(kiln_bin, tmp_path, key_dtype, value_dtype):
    # Keys out of order, one given twice with the same value; looked up with keys that miss.
    keys = tf.constant([40, -7, 3, 1000, 3, 0], key_dtype)
    values = tf.constant([4, -70, 30, 9, 30, 1], value_dtype)
    default = tf.constant(-1, value_dtype)

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], key_dtype, name="x")])
        def f(self, x):
            return {"y": self.table.lookup(x), "size": self.table.size()}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "t"), signatures={"serving_default": m.f})
    x = np.array([[40, -7, 3, 1000], [5, 0, -1, 41], [3, 3, 2**20, -8]], key_dtype.as_numpy_dtype)
    run(kiln_bin, tmp_path / "t", {"x": x}, tmp_path)
    ref = m.f(tf.constant(x))
    np.testing.assert_array_equal(output(tmp_path, "y"), ref["y"].numpy())
    assert output(tmp_path, "y").dtype == ref["y"].numpy().dtype
    np.testing.assert_array_equal(output(tmp_path, "size"), ref["size"].numpy())  # 5: the repeated key once


def test_static_hash_table_with_a_default_of_the_keys_shape(kiln_bin, tmp_path):
    # TensorFlow accepts it and, for a static table, gives every miss its first element.
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant([1, 2], tf.int64), tf.constant([10.5, 20.5])), 0.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x"),
                                      tf.TensorSpec([None], tf.float32, name="d")])
        def f(self, x, d):
            return {"y": tf.raw_ops.LookupTableFindV2(table_handle=self.table.resource_handle, keys=x, default_value=d)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "t"), signatures={"serving_default": m.f})
    x = np.array([2, 7, 1, 8], np.int64)
    d = np.array([-1, -2, -3, -4], np.float32)
    run(kiln_bin, tmp_path / "t", {"x": x, "d": d}, tmp_path)
    np.testing.assert_array_equal(output(tmp_path, "y"), m.f(tf.constant(x), tf.constant(d))["y"].numpy())


@pytest.mark.parametrize("output_mode,invert", [("int", False), ("one_hot", False), ("multi_hot", False),
                                                ("count", False), ("int", True)])
def test_keras_integer_lookup(kiln_bin, tmp_path, output_mode, invert):
    keras = pytest.importorskip("keras")
    layer = keras.layers.IntegerLookup(vocabulary=[12, 3, 7, 9], output_mode=output_mode, invert=invert)
    inp = keras.Input((5,), dtype="int32", name="x")
    keras.Model(inp, layer(inp)).export(str(tmp_path / "m"), verbose=False)
    # Values in the vocabulary, out of it, and (for invert) indices past its end.
    x = np.array([[12, 3, 0, 9, 9], [4, 7, 7, 1, 100]], np.int32)
    ref = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"](x=tf.constant(x))
    run(kiln_bin, tmp_path / "m", {"x": x}, tmp_path)
    (name, value), = ref.items()
    got = output(tmp_path, name)
    assert got.dtype == value.numpy().dtype
    np.testing.assert_array_equal(got, value.numpy())


def test_string_keyed_tables_through_the_python_api(kiln_py, tmp_path):
    keras = pytest.importorskip("keras")
    inp = keras.Input((3,), dtype="string", name="x")
    keras.Model(inp, keras.layers.StringLookup(vocabulary=["a", "bb", "c", "é"])(inp)).export(
        str(tmp_path / "s"), verbose=False)
    x = [[b"a", b"zz", "é".encode()], [b"bb", b"", b"a"]]
    ref = tf.saved_model.load(str(tmp_path / "s")).signatures["serving_default"](x=tf.constant(x))
    (name, value), = ref.items()
    got = kiln_py.load(tmp_path / "s").signatures["serving_default"](x=np.array(x, dtype=object))[name]
    np.testing.assert_array_equal(got, value.numpy())

    # int64 keys to string values (a table of names).
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant([3, 1], tf.int64), tf.constant(["three", "one"])), "?")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="k")])
        def f(self, k):
            return {"name": self.table.lookup(k)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "n"), signatures={"serving_default": m.f})
    k = np.array([1, 2, 3], np.int64)
    got = kiln_py.load(tmp_path / "n").signatures["serving_default"](k=k)["name"]
    assert [bytes(s) for s in got] == list(m.f(tf.constant(k))["name"].numpy())


def test_mutable_tables_are_refused_with_the_reason(kiln_bin, tmp_path):
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.experimental.MutableHashTable(tf.int64, tf.int64, default_value=-1)
            self.table.insert(tf.constant([1, 2], tf.int64), tf.constant([10, 20], tf.int64))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x")])
        def f(self, x):
            return {"y": self.table.lookup(x)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "t"), signatures={"serving_default": m.f})
    proc = run_kiln(kiln_bin, ["run", tmp_path / "t"] + write_inputs({"x": np.zeros(2, np.int64)}, tmp_path / "in"))
    assert proc.returncode != 0, proc.stdout
    assert "mutable lookup table (MutableHashTableV2" in proc.stderr, proc.stderr


def test_converted_model_with_a_table(kiln_bin, tmp_path):
    # The table lookup runs inside the engine (it holds the table as constants).
    keras = pytest.importorskip("keras")
    inp = keras.Input((5,), dtype="int32", name="x")
    layer = keras.layers.IntegerLookup(vocabulary=[12, 3, 7, 9], output_mode="multi_hot")
    keras.Model(inp, layer(inp)).export(str(tmp_path / "m"), verbose=False)
    proc = run_kiln(kiln_bin, ["convert", tmp_path / "m", tmp_path / "c"])
    if proc.returncode != 0:
        fail("kiln convert failed", proc)
    assert "% of OPs Converted: 100.00%" in proc.stdout, proc.stdout
    x = np.array([[12, 3, 0, 9, 9], [4, 7, 7, 1, 100]], np.int32)
    ref = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"](x=tf.constant(x))
    run(kiln_bin, tmp_path / "c", {"x": x}, tmp_path)
    (name, value), = ref.items()
    np.testing.assert_array_equal(output(tmp_path, name), value.numpy())


def test_table_read_inside_a_branch_and_a_loop(kiln_bin, tmp_path):
    # The table reaches If branches and While bodies as a resource argument.
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant([0, 1, 2, 3], tf.int64), tf.constant([2, 3, 0, 1],
                                                                                                    tf.int64)), -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x"), tf.TensorSpec([], tf.int32, name="n")])
        def f(self, x, n):
            y = tf.cond(n > 2, lambda: self.table.lookup(x), lambda: x)
            for _ in tf.range(n):
                y = self.table.lookup(y)
            return {"y": y}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "t"), signatures={"serving_default": m.f})
    x = np.array([0, 1, 2, 3, 7], np.int64)
    for n in (1, 3):
        run(kiln_bin, tmp_path / "t", {"x": x, "n": np.int32(n)}, tmp_path)
        np.testing.assert_array_equal(output(tmp_path, "y"), m.f(tf.constant(x), tf.constant(n))["y"].numpy())


def test_tables_kiln_cannot_hold_as_constants_are_refused_with_the_reason(kiln_bin, tmp_path):
    # A table filled from a vocabulary file (an asset).
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\nc\n")

    class Text(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                str(vocab), tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER), -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x")])
        def f(self, x):
            return {"y": self.table.lookup(x)}

    m = Text()
    tf.saved_model.save(m, str(tmp_path / "text"), signatures={"serving_default": m.f})
    proc = run_kiln(kiln_bin, ["run", tmp_path / "text"] + write_inputs({"x": np.zeros(2, np.int64)}, tmp_path / "in"))
    assert proc.returncode != 0, proc.stdout
    assert "the table is filled from a file or dataset (InitializeTableFromTextFileV2" in proc.stderr, proc.stderr


def test_a_key_with_two_values_is_an_error(kiln_bin, tmp_path):
    # TensorFlow cannot save such a table (it fails to initialise it), so the saved keys are edited.
    from tensorflow.core.protobuf import saved_model_pb2

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant([1, 2], tf.int64), tf.constant([10, 20], tf.int64)), -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x")])
        def f(self, x):
            return {"y": self.table.lookup(x)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "t"), signatures={"serving_default": m.f})
    pb = tmp_path / "t" / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb.read_bytes())
    edited = 0
    for node in sm.meta_graphs[0].graph_def.node:
        if node.op == "Const" and list(tf.make_ndarray(node.attr["value"].tensor).ravel()) == [1, 2]:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array([2, 2], np.int64)))
            edited += 1
    assert edited == 1
    pb.write_bytes(sm.SerializeToString())
    proc = run_kiln(kiln_bin, ["run", tmp_path / "t"] + write_inputs({"x": np.zeros(2, np.int64)}, tmp_path / "in"))
    assert proc.returncode != 0, proc.stdout
    assert "key 2 has the values 10 and 20" in proc.stderr, proc.stderr
