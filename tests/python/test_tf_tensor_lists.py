"""TensorList ops behind tf.TensorArray's split / scatter / unstack and the raw TensorListScatterV2,
TensorListScatter, TensorListResize and TensorListPopBack, in tf.function programs saved as
SavedModels, run by `kiln run` and compared with TensorFlow (exact: the ops move values)."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import fail

tf = pytest.importorskip("tensorflow")
R = tf.raw_ops if tf else None


def check(kiln_bin, tmp_path, fn, signature, inputs):
    """Saves fn (a dict-returning tf.function of `signature`), runs it with Kiln and TensorFlow."""
    m = tf.Module()
    m.f = tf.function(fn, input_signature=signature)
    tf.saved_model.save(m, str(tmp_path / "m"), signatures={"serving_default": m.f})
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m"] + write_inputs(inputs, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed", proc)
    ref = m.f(**{k: tf.constant(v) for k, v in inputs.items()})
    for name, value in ref.items():
        got = np.load(tmp_path / "out" / ("%s.npy" % name))
        assert got.dtype == value.numpy().dtype, name
        np.testing.assert_array_equal(got, value.numpy(), err_msg=name)


def x_spec(dtype=tf.float32):
    return [tf.TensorSpec([None, 3], dtype, name="x")]


def x_value(rows=6, dtype=np.float32):
    return {"x": np.arange(rows * 3).reshape(rows, 3).astype(dtype)}


def test_tensor_array_split(kiln_bin, tmp_path):
    def f(x):
        n = tf.shape(x)[0] // 2
        ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True).split(x, tf.cast(tf.stack([n, n]), tf.int64))
        return {"stacked": ta.stack(), "second": ta.read(1), "size": ta.size()}

    check(kiln_bin, tmp_path, f, x_spec(), x_value(6))


def test_tensor_array_scatter_and_unstack(kiln_bin, tmp_path):
    def f(x):
        # Scatter into a sized array (rows in any order, elements left unset), into a dynamic one,
        # and unstack then overwrite by scatter. (Not past the end: TensorFlow 2.21's kernel grows
        # the list but misplaces the rows and reads uninitialised memory.)
        sized = tf.TensorArray(tf.float32, size=5, element_shape=[3]).scatter([4, 0, 2], x[:3])
        grown = tf.TensorArray(tf.float32, size=4, dynamic_size=True, element_shape=[3]).scatter([3, 1], x[3:5])
        over = tf.TensorArray(tf.float32, size=0, dynamic_size=True).unstack(x).scatter([0, 5], x[4:6])
        return {"sized": sized.stack(), "grown": grown.stack(), "over": over.stack()}

    check(kiln_bin, tmp_path, f, x_spec(), x_value(6))


@pytest.mark.parametrize("num_elements", [-1, 7])
def test_scatter_v2_and_v1(kiln_bin, tmp_path, num_elements):
    def f(x):
        es = tf.constant([3], tf.int32)
        # Indices of any shape (flattened), a repeated one (the later row wins), gaps (zeros).
        v2 = R.TensorListScatterV2(tensor=x, indices=[[5, 0, 2], [0, 4, 1]], element_shape=es,
                                   num_elements=num_elements)
        v1 = R.TensorListScatter(tensor=x[:4], indices=[3, 1, 0, 5], element_shape=tf.constant(-1))
        return {"v2": R.TensorListStack(input_handle=v2, element_shape=es, element_dtype=tf.float32),
                "v1": R.TensorListStack(input_handle=v1, element_shape=es, element_dtype=tf.float32),
                "len": R.TensorListLength(input_handle=v2)}

    check(kiln_bin, tmp_path, f, x_spec(), x_value(6))


def test_resize(kiln_bin, tmp_path):
    def f(x, size):
        lst = R.TensorListFromTensor(tensor=x, element_shape=tf.constant([3]))
        es = tf.constant([3], tf.int32)
        out = {}
        for name, n in (("grown", size + 2), ("shrunk", size - 2), ("empty", size * 0)):
            out[name] = R.TensorListStack(input_handle=R.TensorListResize(input_handle=lst, size=n), element_shape=es,
                                          element_dtype=tf.int32)
        return out

    check(kiln_bin, tmp_path, f, x_spec(tf.int32) + [tf.TensorSpec([], tf.int32, name="size")],
          {**x_value(4, np.int32), "size": np.int32(4)})


def test_pop_back(kiln_bin, tmp_path):
    def f(x):
        es = tf.constant([3], tf.int32)
        lst = R.TensorListFromTensor(tensor=x, element_shape=es)
        rest, last = R.TensorListPopBack(input_handle=lst, element_shape=es, element_dtype=tf.float32)
        # A list of unset elements of a known shape pops zeros.
        unset = R.TensorListReserve(element_shape=tf.constant([-1]), num_elements=2, element_dtype=tf.float32)
        _, zeros = R.TensorListPopBack(input_handle=unset, element_shape=es, element_dtype=tf.float32)
        # A stack in a loop: push every row, then pop them all (reverses the rows).
        pushed = tf.while_loop(lambda i, l: i < tf.shape(x)[0],
                               lambda i, l: (i + 1, R.TensorListPushBack(input_handle=l, tensor=x[i])),
                               (0, R.EmptyTensorList(element_shape=es, max_num_elements=-1,
                                                     element_dtype=tf.float32)))[1]

        def pop(i, l, acc):
            l, item = R.TensorListPopBack(input_handle=l, element_shape=es, element_dtype=tf.float32)
            return i + 1, l, acc.write(i, item)

        n = tf.shape(x)[0]
        _, left, acc = tf.while_loop(lambda i, l, acc: i < n, pop, (0, pushed, tf.TensorArray(tf.float32, size=n)))
        return {"rest": R.TensorListStack(input_handle=rest, element_shape=es, element_dtype=tf.float32),
                "last": last, "zeros": zeros, "reversed": acc.stack(), "left": R.TensorListLength(input_handle=left)}

    check(kiln_bin, tmp_path, f, x_spec(), x_value(5))


@pytest.mark.parametrize("case,message", [
    ("split_unequal", "lengths[1] is 2 but lengths[0] is 4; Kiln holds a list as one dense tensor"),
    ("split_unused", "lengths add up to 4 but the tensor has 6 rows"),
    ("scatter_negative", "indices must not be negative, got -1"),
    ("scatter_short", "index 5 is out of range for a list of 3 elements"),
    ("pop_empty", "trying to pop from an empty list"),
])
def test_run_time_errors_name_the_node_and_the_reason(kiln_bin, tmp_path, case, message):
    def f(x):
        es = tf.constant([-1, 3], tf.int32)
        n = tf.shape(x)[0]
        if case == "split_unequal":
            lst = R.TensorListSplit(tensor=x, element_shape=es, lengths=tf.cast(tf.stack([n - 2, 2]), tf.int64))
        elif case == "split_unused":
            lst = R.TensorListSplit(tensor=x, element_shape=es, lengths=tf.cast(tf.stack([n - 4, 2]), tf.int64))
        elif case == "scatter_negative":
            lst = R.TensorListScatterV2(tensor=x[:2], indices=tf.stack([n - 7, 0]), element_shape=tf.constant([3]),
                                        num_elements=-1)
        elif case == "scatter_short":
            lst = R.TensorListScatterV2(tensor=x[:2], indices=tf.stack([n - 1, 0]), element_shape=tf.constant([3]),
                                        num_elements=3)
        else:
            lst = R.TensorListResize(input_handle=R.TensorListFromTensor(tensor=x, element_shape=tf.constant([3])),
                                     size=n - 6)
            lst = R.TensorListPopBack(input_handle=lst, element_shape=tf.constant([3]), element_dtype=tf.float32)[0]
        # (Stacked: the list's length alone is known without running the op that fails.)
        return {"y": R.TensorListStack(input_handle=lst, element_shape=tf.constant(-1), element_dtype=tf.float32)}

    m = tf.Module()
    m.f = tf.function(f, input_signature=x_spec())
    tf.saved_model.save(m, str(tmp_path / "m"), signatures={"serving_default": m.f})
    x = tf.constant(x_value(6)["x"])
    if case == "split_unequal":
        # TensorFlow makes a list of elements of two shapes (stacking it fails); Kiln refuses the split.
        lengths = R.TensorListLength(input_handle=R.TensorListSplit(tensor=x, element_shape=tf.constant([-1, 3]),
                                                                    lengths=tf.constant([4, 2], tf.int64)))
        assert int(lengths) == 2
    else:
        with pytest.raises(tf.errors.InvalidArgumentError):
            m.f(x)
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m"] + write_inputs(x_value(6), tmp_path / "in"))
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
