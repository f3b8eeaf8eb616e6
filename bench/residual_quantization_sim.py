"""What quantizing a residual stream costs a trained network, simulated in TensorFlow on the CPU.

A ResNet-style CNN (a stem, three stages of two basic blocks, 32/64/128 channels, biases
instead of batch norm, projection shortcuts where the shape changes) is trained on scikit-learn's digits (upsampled to
32x32), then evaluated on the 597 held-out images with each convolution's input and weights
fake-quantized as Kiln's 8-bit engines quantize them (per tensor min-max ranges from 200 training
images; INT8: round(clip(x / s)) with s = amax / 127, weights per output channel; FP8: E4M3 with
s = amax / 448, weights per tensor), and the identity shortcuts either kept float (the block input
as its producer wrote it) or read from the same 8-bit tensor as the block's first convolution (what
GPU engines do when the block input is written once in 8 bits). Top-1 and the logits' relative L2
from FP32 for each.

  python bench/residual_quantization_sim.py [--epochs 15] [--seed 0]
"""

import argparse

import numpy as np


def e4m3(x, tf):
    """RoundFloat8E4M3 in TensorFlow ops: nearest E4M3FN value, ties to even, saturating at 448."""
    a = tf.abs(x)
    e = tf.floor(tf.math.log(tf.maximum(a, 1e-30)) / np.log(2.0))
    e = tf.maximum(e, -6.0)  # subnormals share the smallest normal exponent's step
    step = tf.pow(2.0, e - 3.0)
    q = tf.round(x / step) * step  # tf.round rounds half to even
    return tf.clip_by_value(q, -448.0, 448.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import tensorflow as tf
    from sklearn import datasets

    d = datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)[..., None]  # [n, 32, 32, 1]
    train_x, train_y, test_x, test_y = x[:1200], y[:1200], x[1200:], y[1200:]

    # The network as a function of a quantizer applied at each convolution input; the layers are
    # shared, so every variant has the trained weights.
    tf.keras.utils.set_random_seed(args.seed)
    L = tf.keras.layers
    convs = []

    def conv(c, k, s):
        convs.append(L.Conv2D(c, k, strides=s, padding="same"))
        return len(convs) - 1

    stem = conv(32, 3, 1)
    blocks = []  # (first convolution, second, projection shortcut or None)
    channels = 32
    for stage, c in enumerate([32, 64, 128]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            proj = conv(c, 1, stride) if (stride != 1 or c != channels) else None
            blocks.append((conv(c, 3, stride), conv(c, 3, 1), proj))
            channels = c
    head = L.Dense(10)

    def forward(h, q=None, residual_q=False):
        """q(name, tensor) -> quantized tensor, or None for FP32; residual_q: identity shortcuts
        read the block input as its first convolution does."""
        qi = q or (lambda n, t: t)
        h = tf.nn.relu(convs[stem](qi("c%d" % stem, h)))
        for a, b, proj in blocks:
            inp = qi("c%d" % a, h)  # the block input as its first convolution reads it
            r = tf.nn.relu(convs[a](inp))
            r = convs[b](qi("c%d" % b, r))
            if proj is not None:
                s = convs[proj](inp)
            else:
                s = inp if residual_q else h
            h = tf.nn.relu(r + s)
        return head(tf.reduce_mean(h, axis=[1, 2]))

    opt = tf.keras.optimizers.Adam(1e-3)
    ds = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(1200, seed=args.seed).batch(50)
    for _ in range(args.epochs):
        for bx, by in ds:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(by, forward(bx),
                                                                                      from_logits=True))
            variables = [v for layer in convs + [head] for v in layer.trainable_variables]
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables))

    fp32 = forward(test_x).numpy()
    top1 = lambda logits: float(np.mean(np.argmax(logits, 1) == test_y))
    print("FP32 top-1 %.4f" % top1(fp32))

    amax = {}

    def observe(name, t):
        amax[name] = max(amax.get(name, 0.0), float(tf.reduce_max(tf.abs(t))))
        return t

    forward(train_x[:200], observe)
    originals = [c.get_weights() for c in convs]
    for fmt in ["INT8", "FP8"]:
        for i, c in enumerate(convs):
            w, bias = originals[i]
            if fmt == "INT8":
                s = np.maximum(np.abs(w).max(axis=(0, 1, 2)), 1e-30) / 127.0
                c.set_weights([np.round(w / s) * s, bias])
            else:
                s = max(np.abs(w).max(), 1e-30) / 448.0
                c.set_weights([e4m3(tf.constant(w / s), tf).numpy() * s, bias])

        def quantize(name, t, fmt=fmt):
            a = amax[name]
            if fmt == "INT8":
                s = a / 127.0
                return tf.round(tf.clip_by_value(t / s, -127.0, 127.0)) * s
            s = a / 448.0
            return e4m3(t / s, tf) * s

        for residual_q in (False, True):
            logits = forward(test_x, quantize, residual_q).numpy()
            rel = np.linalg.norm(logits - fp32) / np.linalg.norm(fp32)
            print("%s, %s shortcuts: top-1 %.4f (%+.4f), logits rel L2 %.2e" %
                  (fmt, "8-bit" if residual_q else "float", top1(logits), top1(logits) - top1(fp32), rel))
        for i, c in enumerate(convs):
            c.set_weights(originals[i])


if __name__ == "__main__":
    main()
