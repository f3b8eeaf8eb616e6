"""TensorFlow's FFT family (tf.signal fft/ifft, rfft/irfft in 1, 2 and 3 dims, with fft_length
shorter and longer than the input) and the complex ops (tf.complex, tf.math.real / imag / angle /
conj, tf.abs of a complex tensor, complex add / sub / mul / div, tf.cast) in generated SavedModels, run by `kiln run` and compared with
TensorFlow, plus a log-mel spectrogram front end (tf.signal.stft -> abs -> tensordot with
linear_to_mel_weight_matrix -> log). Complex results leave the model as [..., 2] (real, imag), and one
as a complex tensor.
Bounds: docs/testing.md (FFT error grows like log n * eps)."""

import numpy as np
import pytest

from kiln_checks import run_outputs

tf = pytest.importorskip("tensorflow")

# Relative L2 error per output: TensorFlow transforms float32 in float32 (error ~ eps * log2 n, n up to
# 1024 here: ~1e-6), Kiln in double rounded once; float64 both in double.
BOUNDS = {tf.float32: 1e-5, tf.float64: 1e-12}


def rel_l2(actual, expected):
    wide = np.complex128 if np.iscomplexobj(expected) else np.float64
    expected = np.asarray(expected, dtype=wide)
    diff = np.linalg.norm(np.asarray(actual, dtype=wide) - expected)
    return diff / max(np.linalg.norm(expected), 1e-30)


def parts(z):
    return tf.stack([tf.math.real(z), tf.math.imag(z)], -1)


def check(kiln_bin, tmp_path, module, inputs, dtype_of=lambda name: tf.float32):
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={"serving_default": module.f})
    got = run_outputs(kiln_bin, tmp_path / "model", inputs, tmp_path)
    ref = {k: v.numpy() for k, v in module.f(*[tf.constant(v) for v in inputs.values()]).items()}
    assert set(got) == set(ref)
    problems = []
    for name, r in sorted(ref.items()):
        o = got[name]
        if o.shape != r.shape or o.dtype != r.dtype:
            problems.append("%s: %s %s, TensorFlow %s %s" % (name, o.dtype, o.shape, r.dtype, r.shape))
            continue
        err = rel_l2(o, r)
        if err > BOUNDS[dtype_of(name)]:
            problems.append("%s: relative L2 error %.3g" % (name, err))
    assert not problems, "\n".join(problems)


# Odd and even lengths, one past the direct-definition limit (64) both ways, a power of two.
LENGTHS = [1, 7, 8, 65, 100, 128]


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=["float32", "float64"])
def test_fft_family_matches_tensorflow(kiln_bin, tmp_path, dtype):
    class Ffts(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2, None], dtype, name="re%d" % n) for n in LENGTHS] +
                     [tf.TensorSpec([2, None], dtype, name="im%d" % n) for n in LENGTHS] +
                     [tf.TensorSpec([2, 5, 6], dtype, name="cube_re"), tf.TensorSpec([2, 5, 6], dtype, name="cube_im")])
        def f(self, *args):
            res, ims = args[:len(LENGTHS)], args[len(LENGTHS):2 * len(LENGTHS)]
            cube_re, cube_im = args[-2:]
            out = {}
            for n, re, im in zip(LENGTHS, res, ims):
                z = tf.complex(re, im)
                out["fft_%d" % n] = parts(tf.signal.fft(z))
                out["ifft_%d" % n] = parts(tf.signal.ifft(z))
                # Shorter than, equal to and longer than the input (tf.signal zero-pads the input for the
                # RFFT / IRFFT kernels, which crop); odd and even transform lengths.
                for m in sorted({1, max(n - 3, 1), n, n + 4, 2 * n - 1, 2 * n + 3}):
                    out["rfft_%d_%d" % (n, m)] = parts(tf.signal.rfft(re, fft_length=[m]))
                    out["irfft_%d_%d" % (n, m)] = tf.signal.irfft(z, fft_length=[m])
                out["abs_%d" % n] = tf.abs(z)
                out["angle_%d" % n] = tf.math.angle(z)
                out["conj_%d" % n] = parts(tf.math.conj(z))
            cube = tf.complex(cube_re, cube_im)
            out["fft2d"] = parts(tf.signal.fft2d(cube))
            out["ifft2d"] = parts(tf.signal.ifft2d(cube))
            out["fft3d"] = parts(tf.signal.fft3d(cube))
            out["ifft3d"] = parts(tf.signal.ifft3d(cube))
            for lengths in ([5, 6], [4, 9], [7, 3]):
                key = "x".join(map(str, lengths))
                out["rfft2d_" + key] = parts(tf.signal.rfft2d(cube_re, fft_length=lengths))
                out["irfft2d_" + key] = tf.signal.irfft2d(cube, fft_length=lengths)
            out["rfft3d"] = parts(tf.signal.rfft3d(cube_re, fft_length=[2, 4, 7]))
            out["irfft3d"] = tf.signal.irfft3d(cube, fft_length=[3, 5, 10])
            # Casts into and out of complex types.
            ctype = tf.complex64 if dtype == tf.float32 else tf.complex128
            out["fft_of_cast"] = parts(tf.signal.fft(tf.cast(cube_re, ctype)))
            out["cast_to_real"] = tf.cast(tf.signal.fft2d(cube), dtype)
            other = tf.complex128 if dtype == tf.float32 else tf.complex64
            out["cast_complex"] = parts(tf.cast(tf.cast(cube, other), ctype))
            # A complex constant (its TensorProto's scomplex_val / dcomplex_val) joined to a run-time value.
            const = tf.constant(np.array([[1 + 2j, -3.5j, 0.25]] * 2), ctype)
            out["fft_with_const"] = parts(tf.signal.fft(tf.concat([tf.complex(res[1], ims[1]), const], axis=1)))
            # Complex arithmetic (broadcasting a row against the block) and frequency-domain filtering.
            row = cube[:, :1, :]
            out["complex_add"] = parts(cube + row)
            out["complex_sub"] = parts(tf.math.subtract(cube, row))
            out["complex_mul"] = parts(cube * row)
            out["complex_div"] = parts(cube / (row + tf.complex(tf.constant(3.0, dtype), tf.constant(0.0, dtype))))
            spectrum = tf.signal.rfft(cube_re)
            out["filtered"] = tf.signal.irfft(spectrum * tf.cast(tf.range(4) < 2, ctype), fft_length=[6])
            # A complex model output, written as a complex .npy.
            out["fft2d_complex"] = tf.signal.fft2d(cube)
            # Complex broadcasts its arguments.
            out["complex_broadcast"] = parts(tf.complex(cube_re[:, :1, :], cube_im[0]))
            return out

    rng = np.random.default_rng(7)
    np_type = dtype.as_numpy_dtype
    inputs = {}
    for part in ("re", "im"):
        for n in LENGTHS:
            inputs["%s%d" % (part, n)] = rng.standard_normal((2, n)).astype(np_type)
    inputs["cube_re"] = rng.standard_normal((2, 5, 6)).astype(np_type)
    inputs["cube_im"] = rng.standard_normal((2, 5, 6)).astype(np_type)
    check(kiln_bin, tmp_path, Ffts(), inputs, lambda name: dtype)


def log_mel_module(dtype):
    class LogMel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 16000], dtype, name="audio"),
                                      tf.TensorSpec([None, 16000], dtype, name="tone")])
        def f(self, audio, tone):
            mel = tf.signal.linear_to_mel_weight_matrix(num_mel_bins=80, num_spectrogram_bins=257, sample_rate=16000,
                                                        lower_edge_hertz=20.0, upper_edge_hertz=8000.0, dtype=dtype)

            def log_mel(signal):
                magnitude = tf.abs(tf.signal.stft(signal, frame_length=400, frame_step=160, fft_length=512))
                return tf.math.log(tf.tensordot(magnitude, mel, 1) + 1e-6)

            return {"log_mel": log_mel(audio), "log_mel_tone": log_mel(tone)}

    return LogMel()


def test_log_mel_spectrogram_matches_tensorflow(kiln_bin, tmp_path):
    rng = np.random.default_rng(3)
    t = np.arange(16000) / 16000.0
    tone = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t)
    # Audio with a noise floor (as recordings have), and plain noise.
    audio = np.stack([tone + 0.01 * rng.standard_normal(16000), 0.1 * rng.standard_normal(16000)]).astype(np.float32)
    tone = tone[None].astype(np.float32)
    m = log_mel_module(tf.float32)
    tf.saved_model.save(m, str(tmp_path / "model"), signatures={"serving_default": m.f})
    got = run_outputs(kiln_bin, tmp_path / "model", {"audio": audio, "tone": tone}, tmp_path)
    ref = {k: v.numpy() for k, v in m.f(tf.constant(audio), tf.constant(tone)).items()}
    assert got["log_mel"].shape == ref["log_mel"].shape == (2, 98, 80)
    assert rel_l2(got["log_mel"], ref["log_mel"]) <= 1e-5, rel_l2(got["log_mel"], ref["log_mel"])
    # A pure tone's log-mel is ill-conditioned in float32: the window's leakage bins are near the
    # transform's rounding noise, and TensorFlow's own float32 result is 1.3e-3 from its float64 one.
    # Kiln (double transforms) must be at least as close to the float64 result as TensorFlow's float32.
    exact = log_mel_module(tf.float64).f(tf.constant(audio, tf.float64), tf.constant(tone, tf.float64))["log_mel_tone"]
    tf32_error = rel_l2(ref["log_mel_tone"], exact)
    assert rel_l2(got["log_mel_tone"], exact) <= tf32_error, (rel_l2(got["log_mel_tone"], exact), tf32_error)
