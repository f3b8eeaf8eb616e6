"""Keras recurrent layers and tf.while_loop with tf.TensorArray: Keras 3 (TF backend) exports them
as While loops over TensorList ops, which Kiln holds as dense tensors (docs/ops/tensor_list.md).
Each model is exported with a dynamic batch (and, where said, a dynamic sequence length), run by
`kiln run` with batch 1 and 3 and compared with TensorFlow (FP32, relative L2 <= 1e-5)."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import compare, fail

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

L = keras.layers

# name -> (layer factory, input shape without batch)
CASES = {
    "simple_rnn": (lambda: L.SimpleRNN(5), (6, 4)),
    "simple_rnn_seq_tanh_relu": (lambda: L.SimpleRNN(5, activation="relu", return_sequences=True), (6, 4)),
    "lstm": (lambda: L.LSTM(5), (6, 4)),
    "lstm_sequences": (lambda: L.LSTM(5, return_sequences=True), (6, 4)),
    "lstm_state": (lambda: L.LSTM(5, return_state=True), (6, 4)),
    "lstm_sequences_state": (lambda: L.LSTM(5, return_sequences=True, return_state=True), (6, 4)),
    "lstm_go_backwards": (lambda: L.LSTM(5, go_backwards=True, return_sequences=True), (6, 4)),
    "lstm_dynamic_time": (lambda: L.LSTM(5, return_sequences=True), (None, 4)),
    "gru": (lambda: L.GRU(5), (6, 4)),
    "gru_reset_before": (lambda: L.GRU(5, reset_after=False, return_sequences=True), (6, 4)),
    "gru_go_backwards": (lambda: L.GRU(5, go_backwards=True), (6, 4)),
    "bidirectional_lstm": (lambda: L.Bidirectional(L.LSTM(3)), (6, 4)),
    "bidirectional_gru_sequences": (lambda: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"), (6, 4)),
    "conv_lstm_1d": (lambda: L.ConvLSTM1D(2, 3), (3, 6, 2)),
    "conv_lstm_2d": (lambda: L.ConvLSTM2D(2, 3, return_sequences=True), (3, 6, 6, 2)),
}


def run(kiln_bin, model, inputs, out_dir, tmp_path):
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", out_dir])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % model, proc)
    return proc


def check_against_tf(kiln_bin, path, feeds_per_batch, tmp_path):
    sig = tf.saved_model.load(str(path)).signatures["serving_default"]
    for batch, feeds in feeds_per_batch.items():
        ref = sig(**{k: tf.constant(v) for k, v in feeds.items()})
        out = tmp_path / ("out_b%d" % batch)
        run(kiln_bin, path, feeds, out, tmp_path)
        problems = []
        for name, value in ref.items():
            problems += compare(name, np.load(out / ("%s.npy" % name)), value.numpy(), 1e-5)
        assert not problems, "batch %d: %s" % (batch, problems)


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_recurrent_layer_matches_tensorflow(kiln_bin, tmp_path, case):
    make, shape = CASES[case]
    keras.utils.set_random_seed(0)
    x = keras.Input(shape, name="x")
    y = make()(x)
    model = keras.Model(x, y)
    path = tmp_path / case
    model.export(str(path), verbose=False)
    rng = np.random.default_rng(1)
    feeds = {}
    for batch in (1, 3):
        concrete = tuple(7 if d is None else d for d in shape)
        feeds[batch] = {"x": rng.standard_normal((batch,) + concrete).astype(np.float32)}
    check_against_tf(kiln_bin, path, feeds, tmp_path)


def test_keras_lstm_under_a_dense_head(kiln_bin, tmp_path):
    """Two stacked LSTMs (the second reads the first's sequence) and a Dense head."""
    keras.utils.set_random_seed(0)
    x = keras.Input((None, 3), name="x")
    h = L.LSTM(8, return_sequences=True)(x)
    h = L.LSTM(4)(h)
    model = keras.Model(x, L.Dense(2)(h))
    model.export(str(tmp_path / "m"), verbose=False)
    rng = np.random.default_rng(2)
    feeds = {b: {"x": rng.standard_normal((b, 5, 3)).astype(np.float32)} for b in (1, 3)}
    check_against_tf(kiln_bin, tmp_path / "m", feeds, tmp_path)


class TensorArrayLoops(tf.Module):
    """Raw tf.while_loop over tf.TensorArrays: unstack/read, write, stack, concat, size, a dynamic_size array."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32, name="x")])
    def f(self, x):
        steps = tf.shape(x)[0]
        xs = tf.TensorArray(tf.float32, size=steps).unstack(x)
        out = tf.TensorArray(tf.float32, size=steps)
        grown = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

        def body(i, acc, out, grown):
            acc = acc * 0.5 + tf.tanh(xs.read(i))
            return i + 1, acc, out.write(i, acc), grown.write(i, tf.reduce_sum(acc, axis=-1))

        _, acc, out, grown = tf.while_loop(lambda i, *_: i < steps, body,
                                           (0, tf.zeros_like(x[0]), out, grown))
        return {"seq": out.stack(), "last": acc, "sums": grown.stack(), "n": out.size(), "cat": out.concat()}


def test_while_loop_with_tensor_arrays(kiln_bin, tmp_path):
    m = TensorArrayLoops()
    tf.saved_model.save(m, str(tmp_path / "ta"), signatures={"serving_default": m.f})
    rng = np.random.default_rng(3)
    feeds = {b: {"x": rng.standard_normal((4, b, 3)).astype(np.float32)} for b in (1, 3)}
    check_against_tf(kiln_bin, tmp_path / "ta", feeds, tmp_path)


def test_lists_with_elements_of_different_shapes_are_refused(kiln_bin, tmp_path):
    """A dynamic-size TensorArray whose elements grow: TensorFlow allows it (infer_shape=False);
    Kiln holds a list as one dense tensor, so it must refuse it and say why, naming the node."""

    class Ragged(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def f(self, x):
            ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=None)

            def body(i, ta):
                return i + 1, ta.write(i, x[: i + 1])

            _, ta = tf.while_loop(lambda i, _: i < 3, body, (0, ta))
            return {"y": ta.read(2)}

    m = Ragged()
    tf.saved_model.save(m, str(tmp_path / "r"), signatures={"serving_default": m.f})
    proc = run_kiln(kiln_bin, ["run", tmp_path / "r"] + write_inputs({"x": np.ones(4, np.float32)}, tmp_path / "in"))
    assert proc.returncode != 0, proc.stdout
    assert "TensorListSetItem" in proc.stderr and "one shape" in proc.stderr, proc.stderr


def converted_ops_text(kiln_bin, model, tmp_path):
    """`kiln convert` + `kiln summary` output: engine ops and the ops left native, by op name."""
    out = tmp_path / "converted"
    proc = run_kiln(kiln_bin, ["convert", model, out])
    if proc.returncode != 0:
        fail("kiln convert failed on %s" % model, proc)
    proc = run_kiln(kiln_bin, ["summary", out])
    if proc.returncode != 0:
        fail("kiln summary failed on %s" % model, proc)
    return proc.stdout


@pytest.mark.parametrize("case,op", [
    ("lstm", "LSTM"), ("lstm_sequences", "LSTM"), ("lstm_state", "LSTM"), ("lstm_dynamic_time", "LSTM"),
    ("lstm_go_backwards", "LSTM"), ("bidirectional_lstm", "LSTM"), ("gru", "GRU"), ("gru_go_backwards", "GRU"),
    ("bidirectional_gru_sequences", "GRU"), ("gru_reset_before", "GRU"), ("simple_rnn", "RNN"),
    ("simple_rnn_seq_tanh_relu", None), ("lstm_relu", None), ("conv_lstm_1d", None),
])
def test_keras_recurrent_loops_become_one_op(kiln_bin, tmp_path, case, op):
    """The import pipeline's keras-rnn-fusion pass replaces Keras' LSTM / GRU (reset_after either
    way) / SimpleRNN While loop by one LSTM / GRU / RNN op; loops it does not recognise exactly
    (other activations, ConvLSTM) stay While loops. Results against TensorFlow."""
    make, shape = CASES.get(case) or (lambda: L.LSTM(5, activation="relu", return_sequences=True), (6, 4))
    keras.utils.set_random_seed(0)
    x = keras.Input(shape, name="x")
    keras.Model(x, make()(x)).export(str(tmp_path / case), verbose=False)
    text = converted_ops_text(kiln_bin, tmp_path / case, tmp_path)
    ops = {line.split(":")[0].strip(" -") for line in text.splitlines() if line.startswith("  - ")}
    ops |= {line.split()[1] for line in text.splitlines() if line[:1] == " " and line.split()[:1] and line.split()[0].isdigit()}
    if op:
        assert op in ops and "While" not in ops, text
    else:
        assert "While" in ops and not ops & {"LSTM", "GRU", "RNN"}, text
    rng = np.random.default_rng(4)
    concrete = tuple(7 if d is None else d for d in shape)
    feeds = {b: {"x": rng.standard_normal((b,) + concrete).astype(np.float32)} for b in (1, 3)}
    check_against_tf(kiln_bin, tmp_path / case, feeds, tmp_path)


@pytest.mark.parametrize("layer", ["lstm", "gru"])
def test_masked_recurrent_layers_keep_their_loop_and_match_tensorflow(kiln_bin, tmp_path, layer):
    """Masking before an LSTM / GRU: the loop carries the mask (Select of the new and the old
    state), which the fusion must not drop; padded steps (all-zero rows) are in the inputs."""
    keras.utils.set_random_seed(0)
    x = keras.Input((6, 4), name="x")
    rnn = L.LSTM(5, return_sequences=True) if layer == "lstm" else L.GRU(5)
    keras.Model(x, rnn(L.Masking(0.0)(x))).export(str(tmp_path / layer), verbose=False)
    text = converted_ops_text(kiln_bin, tmp_path / layer, tmp_path)
    assert "While" in text, text
    rng = np.random.default_rng(5)
    feeds = {}
    for b in (1, 3):
        v = rng.standard_normal((b, 6, 4)).astype(np.float32)
        v[0, 4:] = 0  # trailing padding
        v[-1, 1] = 0  # a masked step in the middle
        feeds[b] = {"x": v}
    check_against_tf(kiln_bin, tmp_path / layer, feeds, tmp_path)


def test_long_masked_lstm_matches_tensorflow(kiln_bin, tmp_path):
    """A masked LSTM over 300 steps with its sequence: the loop stays a While loop that writes one
    element of its output list per step (written in place by the reference executor, so the run
    is linear in the steps); padded steps at the end and in the middle."""
    keras.utils.set_random_seed(0)
    x = keras.Input((300, 4), name="x")
    keras.Model(x, L.LSTM(16, return_sequences=True)(L.Masking(0.0)(x))).export(str(tmp_path / "m"), verbose=False)
    rng = np.random.default_rng(6)
    feeds = {}
    for b in (1, 3):
        v = rng.standard_normal((b, 300, 4)).astype(np.float32)
        v[0, 280:] = 0
        v[-1, 100:110] = 0
        feeds[b] = {"x": v}
    check_against_tf(kiln_bin, tmp_path / "m", feeds, tmp_path)
