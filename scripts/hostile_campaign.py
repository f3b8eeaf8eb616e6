#!/usr/bin/env python3
"""Hostile-input campaign against the release `kiln` CLI (black box).

Makes mutated and hand-crafted hostile files of every format Kiln reads (.npy inputs, ONNX
models and their external data, SavedModels: saved_model.pb / .pbtxt, TensorBundle index and data
shards; .kiln files, converted SavedModels and their engine files), runs the CLI on each under a
wall-clock timeout and an RLIMIT_AS limit, and classifies every outcome:

  OK                exit 0, outputs equal to the unmutated model's
  accepted-changed  exit 0, outputs changed, and an independent oracle agrees with them
                    (numpy's reading of a mutated .npy, onnx.reference on a mutated ONNX model,
                    a SavedModel whose only change is a Const's value, a resealed container)
  CLEAN-ERROR       nonzero exit, a message on stderr, no "internal error"
  SUSPECT           exit 0 with changed outputs that no oracle could confirm or refute (triage by hand)
  BAD               killed by a signal, timeout, out of memory / bad_alloc, "internal error" or a
                    C++ exception type name on stderr, canary bytes from a file outside the model
                    in the outputs, the input tree modified, a nonzero exit with no message, exit 0
                    where the case must be refused, or exit 0 with wrong outputs where the bytes
                    are covered by a checksum or the file is structurally invalid

Usage (the venv has numpy, onnx and tensorflow):
  ~/.cache/kiln/venv/bin/python scripts/hostile_campaign.py --kiln build/tools/kiln \
      --work /tmp/hostile_work --seed 1 --count 300 --timeout 30 --mem-mb 4096

Run one kiln process at a time. Results: WORK/results.jsonl (one line per case), WORK/summary.json;
reproducers of BAD (and SUSPECT) cases are copied to /tmp/hostile_repro/<case id>/ (--repro).
"""

import argparse
import collections
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CANARY = b"CANARY!!"  # 8 bytes; as float32 two normal numbers (12.89 and 5.5e-19), so x + 0 keeps them

BAD_WORDS = ["internal error", "out_of_range", "filesystem_error", "bad_alloc", "length_error",
             "invalid_argument", "out of memory", "terminate called", "std::", "Segmentation fault",
             "AddressSanitizer", "stack overflow", "Aborted"]

# ----------------------------------------------------------------------------------------------
# CRC32C (Castagnoli), masked as in LevelDB / TensorFlow / Kiln containers


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_T = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC_T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc_mask(c):
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------------------------
# Minimal protobuf wire codec (enough to edit BundleEntryProto and to hand-build deep nesting)


def enc_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def dec_varint(b, i):
    shift = v = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("bad varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def pb_decode(b):
    """bytes -> list of [field, wiretype, value] (value: int for varint/fixed, bytes for len)."""
    out, i = [], 0
    while i < len(b):
        key, i = dec_varint(b, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = dec_varint(b, i)
        elif wt == 1:
            v = struct.unpack_from("<Q", b, i)[0]
            i += 8
        elif wt == 5:
            v = struct.unpack_from("<I", b, i)[0]
            i += 4
        elif wt == 2:
            n, i = dec_varint(b, i)
            v = bytes(b[i:i + n])
            if len(v) != n:
                raise ValueError("truncated")
            i += n
        else:
            raise ValueError("wiretype %d" % wt)
        out.append([fn, wt, v])
    return out


def pb_field(fn, wt, v):
    key = enc_varint(fn << 3 | wt)
    if wt == 0:
        return key + enc_varint(v)
    if wt == 1:
        return key + struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
    if wt == 5:
        return key + struct.pack("<I", v & 0xFFFFFFFF)
    if isinstance(v, str):
        v = v.encode()
    return key + enc_varint(len(v)) + v


def pb_encode(fields):
    return b"".join(pb_field(*f) for f in fields)


def pb_set(fields, fn, wt, v):
    """Replace (or add) field fn."""
    fields = [f for f in fields if f[0] != fn]
    fields.append([fn, wt, v])
    return fields


# ----------------------------------------------------------------------------------------------
# LevelDB-style table (TensorBundle index): read all entries, write a fresh one

TABLE_MAGIC = 0xDB4775248B80FB57


def _read_block(data, off, size):
    blk = data[off:off + size]
    nrest = struct.unpack_from("<I", blk, len(blk) - 4)[0]
    end = len(blk) - 4 - 4 * nrest
    i, key, out = 0, b"", []
    while i < end:
        shared, i = dec_varint(blk, i)
        nonshared, i = dec_varint(blk, i)
        vlen, i = dec_varint(blk, i)
        key = key[:shared] + blk[i:i + nonshared]
        i += nonshared
        out.append((key, blk[i:i + vlen]))
        i += vlen
    return out


def table_read(data):
    foot = data[-48:]
    assert struct.unpack_from("<Q", foot, 40)[0] == TABLE_MAGIC
    i = 0
    _, i = dec_varint(foot, i)
    _, i = dec_varint(foot, i)
    ioff, i = dec_varint(foot, i)
    isize, i = dec_varint(foot, i)
    entries = []
    for _, handle in _read_block(data, ioff, isize):
        off, j = dec_varint(handle, 0)
        size, j = dec_varint(handle, j)
        entries.extend(_read_block(data, off, size))
    return entries


def _block(entries):
    body, restarts = bytearray(), []
    for k, v in entries:
        restarts.append(len(body))
        body += enc_varint(0) + enc_varint(len(k)) + enc_varint(len(v)) + k + v
    if not restarts:
        restarts = [0]
    for r in restarts:
        body += struct.pack("<I", r)
    body += struct.pack("<I", len(restarts))
    return bytes(body)


def table_write(entries):
    out = bytearray()

    def put(blk):
        off = len(out)
        out.extend(blk)
        out.extend(b"\x00" + struct.pack("<I", crc_mask(crc32c(blk + b"\x00"))))
        return enc_varint(off) + enc_varint(len(blk))

    data_h = put(_block(entries))
    meta_h = put(_block([]))
    last = entries[-1][0] if entries else b""
    index_h = put(_block([(last, data_h)]))
    foot = meta_h + index_h
    foot += b"\x00" * (40 - len(foot)) + struct.pack("<Q", TABLE_MAGIC)
    out.extend(foot)
    return bytes(out)


# ----------------------------------------------------------------------------------------------
# Kiln containers (convert/container.h): parse and reseal

KILN_MAGIC_LEN = 8


def container_parse(b):
    """-> (magic, version, header bytes, [(name, payload)]) or None."""
    try:
        magic = b[:8]
        version, hlen = struct.unpack_from("<II", b, 8)
        header = b[16:16 + hlen]
        at = 16 + hlen
        (n,) = struct.unpack_from("<I", b, at)
        at += 4
        table = []
        for _ in range(n):
            (k,) = struct.unpack_from("<I", b, at)
            at += 4
            name = b[at:at + k]
            at += k
            (ln,) = struct.unpack_from("<Q", b, at)
            at += 12
            table.append((name, ln))
        at += 4
        secs = []
        for name, ln in table:
            secs.append((name, b[at:at + ln]))
            at += ln
        if at != len(b) or n > 10000:
            return None
        return magic, version, header, secs
    except (struct.error, ValueError):
        return None


def container_write(magic, version, header, secs):
    out = bytearray(magic + struct.pack("<II", version, len(header)) + header + struct.pack("<I", len(secs)))
    for name, p in secs:
        out += struct.pack("<I", len(name)) + name + struct.pack("<Q", len(p)) + struct.pack("<I", crc_mask(crc32c(p)))
    out += struct.pack("<I", crc_mask(crc32c(bytes(out))))
    for _, p in secs:
        out += p
    return bytes(out)


# ----------------------------------------------------------------------------------------------
# Byte-level mutations

INTERESTING8 = [0x00, 0xFF, 0x7F, 0x80]
INTERESTING_MULTI = [b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\x00\x00\x00\x00",
                     b"\xff" * 8, b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x00\x00\x00\x00\x00\x00\x00\x80",
                     b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                     b"\x01\x00\x00\x00\x00\x01\x00\x00"]


def mutate(data, rng, hot=None):
    """Returns (mutated bytes, description). hot: optional (lo, hi) range to favour."""
    b = bytearray(data)
    ops = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not b:
            b = bytearray(b"\x00")
        n = len(b)
        if hot and rng.random() < 0.5:
            lo, hi = hot
            pos = rng.randrange(max(0, min(lo, n - 1)), max(1, min(hi, n)))
        else:
            pos = rng.randrange(n)
        kind = rng.choice(["bitflip", "bitflip", "byte", "byte", "multi", "delete", "dup", "truncate", "random"])
        if kind == "bitflip":
            k = rng.choice([1, 1, 2, 4, 8])
            for _ in range(k):
                p = rng.randrange(n) if k > 1 else pos
                b[p] ^= 1 << rng.randrange(8)
            ops.append("bitflip x%d @%d" % (k, pos))
        elif kind == "byte":
            v = rng.choice(INTERESTING8)
            b[pos] = v
            ops.append("byte 0x%02x @%d" % (v, pos))
        elif kind == "multi":
            v = rng.choice(INTERESTING_MULTI)
            b[pos:pos + len(v)] = v
            ops.append("bytes %s @%d" % (v.hex(), pos))
        elif kind == "delete":
            ln = rng.choice([1, 2, 4, 8, 16, 64, 256])
            del b[pos:pos + ln]
            ops.append("delete %d @%d" % (ln, pos))
        elif kind == "dup":
            ln = rng.choice([1, 4, 16, 64, 256])
            b[pos:pos] = b[pos:pos + ln]
            ops.append("dup %d @%d" % (ln, pos))
        elif kind == "truncate":
            del b[pos:]
            ops.append("truncate @%d" % pos)
        else:
            ln = rng.choice([1, 4, 16])
            b[pos:pos + ln] = bytes(rng.randrange(256) for _ in range(ln))
            ops.append("random %d @%d" % (ln, pos))
    return bytes(b), "; ".join(ops)


def mutate_resealed(data, rng):
    """Container-aware: mutate the JSON header or one payload (recursing into nested containers),
    then recompute every checksum, so the mutation gets past them."""
    c = container_parse(data)
    if c is None:
        return mutate(data, rng)
    magic, version, header, secs = c
    secs = list(secs)
    if not secs or rng.random() < 0.3:
        header, d = mutate(header, rng)
        return container_write(magic, version, header, secs), "resealed header: " + d
    i = rng.randrange(len(secs))
    name, p = secs[i]
    if container_parse(p) is not None and rng.random() < 0.7:
        p, d = mutate_resealed(p, rng)
    else:
        p, d = mutate(p, rng)
    secs[i] = (name, p)
    return container_write(magic, version, header, secs), "resealed section %r: %s" % (name.decode(errors="replace"), d)


# ----------------------------------------------------------------------------------------------
# Files and trees


def tree_hash(paths):
    """Content hash of files/dirs without following symlinks or opening FIFOs."""
    h = hashlib.sha256()
    for top in paths:
        items = []
        if os.path.lexists(top):
            if os.path.isdir(top) and not os.path.islink(top):
                for d, dirs, files in os.walk(top, followlinks=False):
                    for n in sorted(dirs + files):
                        items.append(os.path.join(d, n))
            items.append(top)
        for p in sorted(set(items)):
            st = os.lstat(p)
            h.update(p.encode(errors="replace") + b"\0")
            if stat.S_ISLNK(st.st_mode):
                h.update(b"L" + os.readlink(p).encode(errors="replace"))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h.update(b"F" + hashlib.sha256(f.read()).digest())
            elif stat.S_ISDIR(st.st_mode):
                h.update(b"D")
            else:
                h.update(b"O%o" % stat.S_IFMT(st.st_mode))
    return h.hexdigest()


def copy_tree(src, dst):
    """Copy keeping symlinks as symlinks and FIFOs as (new) FIFOs; never opens a FIFO."""
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode):
        os.makedirs(dst, exist_ok=True)
        for n in os.listdir(src):
            copy_tree(os.path.join(src, n), os.path.join(dst, n))
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst)


def rm_tree(p):
    if os.path.islink(p) or (os.path.lexists(p) and not os.path.isdir(p)):
        os.unlink(p)
    elif os.path.isdir(p):
        for n in os.listdir(p):
            rm_tree(os.path.join(p, n))
        os.rmdir(p)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, b):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(b)


def npy_bytes(header_dict_text, data, version=(1, 0)):
    """A .npy file with an arbitrary header text (padded like numpy does)."""
    h = header_dict_text.encode("latin1") if isinstance(header_dict_text, str) else header_dict_text
    if version[0] == 1:
        pre = 10
        total = (pre + len(h) + 1 + 63) // 64 * 64
        h = h + b" " * (total - pre - len(h) - 1) + b"\n"
        return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(h)) + h + data
    pre = 12
    total = (pre + len(h) + 1 + 63) // 64 * 64
    h = h + b" " * (total - pre - len(h) - 1) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(h)) + h + data


# ----------------------------------------------------------------------------------------------
# Running kiln


class Runner:
    def __init__(self, args):
        # Test a snapshot: the binary under build/ may be rebuilt while the campaign runs.
        src = os.path.abspath(args.kiln)
        os.makedirs(os.path.abspath(args.work), exist_ok=True)
        self.kiln = os.path.join(os.path.abspath(args.work), "kiln-under-test")
        shutil.copy2(src, self.kiln)
        self.kiln_sha256 = hashlib.sha256(read(self.kiln)).hexdigest()
        self.kiln_src = src
        self.timeout = args.timeout
        self.mem = args.mem_mb * 1024 * 1024

    def run(self, argv, env_extra=None, timeout=None):
        mem = self.mem

        def pre():
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        env = dict(os.environ)
        env.pop("KILN_MAX_TENSOR_BYTES", None)
        env.pop("KILN_MAX_MODEL_BYTES", None)
        env.update(env_extra or {})
        t0 = time.time()
        p = subprocess.Popen([self.kiln] + [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=pre, start_new_session=True, env=env)
        timed_out = False
        try:
            out, err = p.communicate(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = p.communicate()
        return {"rc": p.returncode, "timeout": timed_out, "secs": round(time.time() - t0, 3),
                "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}


def load_outputs(d):
    outs = {}
    if os.path.isdir(d):
        for n in sorted(os.listdir(d)):
            if n.endswith(".npy"):
                try:
                    outs[n[:-4]] = np.load(os.path.join(d, n), allow_pickle=False)
                except Exception as e:  # noqa: BLE001 - a broken output file is itself a finding
                    outs[n[:-4]] = "unreadable: %s" % e
    return outs


def outputs_equal(a, b, rtol=1e-5, atol=1e-6):
    if a is None or b is None or set(a) != set(b):
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, str) or isinstance(y, str):
            return False
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind in "fc":
            if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def describe_outputs(o):
    if not o:
        return "none"
    parts = []
    for k, v in o.items():
        if isinstance(v, str):
            parts.append("%s: %s" % (k, v))
        else:
            flat = v.reshape(-1)[:4]
            parts.append("%s: %s%s %s" % (k, v.dtype, list(v.shape), np.array2string(flat, precision=5)))
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# Oracles run in a child process (a hostile model must not take the harness down)

def onnx_oracle_main(model_path, feeds_npz, out_npz):
    import onnx
    from onnx.reference import ReferenceEvaluator
    m = onnx.load(model_path, load_external_data=False)
    feeds = dict(np.load(feeds_npz))
    sess = ReferenceEvaluator(m)
    names = [o.name for o in m.graph.output]
    res = sess.run(None, feeds)
    np.savez(out_npz, **{n: np.asarray(r) for n, r in zip(names, res)})


def make_tf_models_main(tiny_dir, sm_dir, pbtxt_dir):
    """Child process: a tiny SavedModel y = x + v (v a float32[8] variable) for the canary cases,
    and a text-format copy (saved_model.pbtxt) of the MLP SavedModel."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable(np.arange(1, 9, dtype=np.float32), name="v")

        @tf.function(input_signature=[tf.TensorSpec([8], tf.float32, name="x")])
        def f(self, x):
            return {"y": x + self.v}

    m = M()
    tf.saved_model.save(m, tiny_dir, signatures={"serving_default": m.f})
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(read(os.path.join(sm_dir, "saved_model.pb")))
    os.makedirs(pbtxt_dir, exist_ok=True)
    write(os.path.join(pbtxt_dir, "saved_model.pbtxt"), text_format.MessageToString(sm).encode())
    copy_tree(os.path.join(sm_dir, "variables"), os.path.join(pbtxt_dir, "variables"))


# ----------------------------------------------------------------------------------------------
# The campaign


class Campaign:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.base = os.path.join(self.work, "base")
        self.canary_dir = os.path.join(self.work, "canary")
        self.cases_dir = os.path.join(self.work, "cases")
        self.out_root = os.path.join(self.work, "out")
        self.repro = os.path.abspath(args.repro)
        self.runner = Runner(args)
        self.rng = random.Random(args.seed)
        self.baselines = {}
        self.results = []
        self.n = 0
        self._sm_pb2 = None
        self._sm_stripped = None

    # -- setup ---------------------------------------------------------------------------------
    def p(self, *parts):
        return os.path.join(self.base, *parts)

    def setup(self):
        for d in (self.cases_dir, self.out_root):
            if os.path.lexists(d):
                rm_tree(d)
            os.makedirs(d)
        os.makedirs(self.base, exist_ok=True)
        os.makedirs(self.canary_dir, exist_ok=True)
        write(os.path.join(self.canary_dir, "canary.bin"), CANARY * 64)
        src = os.path.join(REPO, "build", "test_models", "mlp_keras3")
        if not os.path.isdir(self.p("sm")):
            os.makedirs(self.p("sm"))
            for n in ("saved_model.pb", "fingerprint.pb", "variables", "assets"):
                if os.path.lexists(os.path.join(src, n)):
                    copy_tree(os.path.join(src, n), self.p("sm", n))
        if not os.path.exists(self.p("onnx", "model.onnx")):
            os.makedirs(self.p("onnx"), exist_ok=True)
            shutil.copy2(os.path.join(src, "model.onnx"), self.p("onnx", "model.onnx"))
        os.makedirs(self.p("in"), exist_ok=True)
        np.save(self.p("in", "features.npy"), np.random.RandomState(1234).randn(2, 32).astype(np.float32))
        np.save(self.p("in", "x8.npy"), np.zeros(8, np.float32))
        np.save(self.p("in", "true.npy"), np.array(True))
        np.save(self.p("in", "one64.npy"), np.array(1, np.int64))
        np.save(self.p("in", "xc.npy"), np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
        np.save(self.p("in", "x24.npy"), np.arange(8, dtype=np.float32).reshape(2, 4))
        np.savez(self.p("in", "feeds.npz"), features=np.load(self.p("in", "features.npy")))
        shutil.copy2(os.path.join(REPO, "tests", "unit", "data", "sample_v1.kiln"), self.p("sample_v1.kiln"))
        if not os.path.isdir(self.p("tiny")) or not os.path.isdir(self.p("pbtxt")):
            for d in ("tiny", "pbtxt"):
                if os.path.lexists(self.p(d)):
                    rm_tree(self.p(d))
            subprocess.run([sys.executable, os.path.abspath(__file__), "--make-tf-models", self.p("tiny"), self.p("sm"),
                            self.p("pbtxt")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.make_ext_model(self.p("ext"), "w.bin")
        # converted model and .kiln file, made by this kiln
        if not os.path.isdir(self.p("conv")):
            r = self.runner.run(["convert", self.p("sm"), self.p("conv"), "--build-shapes", "features:2x32"], timeout=300)
            assert r["rc"] == 0, r
        if not os.path.exists(self.p("m.kiln")):
            r = self.runner.run(["build", self.p("sm"), "-o", self.p("m.kiln"), "--shapes", "features:2x32"], timeout=300)
            assert r["rc"] == 0, r
        self.engine_rel = os.path.relpath(sorted(
            os.path.join(d, f) for d, _, fs in os.walk(self.p("conv")) for f in fs if f.endswith(".kiln-engine"))[0],
            self.p("conv"))
        # baselines
        feats = ["--input", "features=" + self.p("in", "features.npy")]
        for key, argv in [("sm", ["run", self.p("sm")] + feats), ("onnx", ["run", self.p("onnx", "model.onnx")] + feats),
                          ("pbtxt", ["run", self.p("pbtxt")] + feats), ("conv", ["run", self.p("conv")] + feats),
                          ("kiln", ["run", self.p("m.kiln")] + feats),
                          ("tiny", ["run", self.p("tiny"), "--input", "x=" + self.p("in", "x8.npy")]),
                          ("ext", ["run", self.p("ext", "model.onnx"), "--input", "x=" + self.p("in", "x8.npy")])]:
            od = os.path.join(self.out_root, "baseline_" + key)
            r = self.runner.run(argv + ["--output-dir", od])
            if r["rc"] != 0:
                raise SystemExit("baseline %s failed: %s" % (key, r["stderr"][-2000:]))
            self.baselines[key] = load_outputs(od)
            rm_tree(od)
        if not outputs_equal(self.baselines["sm"], self.baselines["pbtxt"]):
            print("note: the .pbtxt copy of the MLP does not reproduce the .pb outputs", file=sys.stderr)
        self.base_hash = tree_hash([self.base, self.canary_dir])

    def make_ext_model(self, d, location, w_bytes=None, extra_kv=None, write_data=True):
        """ONNX y = x + w, w float32[8] in external data `location` (32 bytes)."""
        import onnx
        from onnx import TensorProto, helper
        os.makedirs(d, exist_ok=True)
        w = TensorProto()
        w.name, w.data_type = "w", TensorProto.FLOAT
        w.dims.extend([8])
        w.data_location = TensorProto.EXTERNAL
        kv = {"location": location, "offset": "0", "length": "32"}
        kv.update(extra_kv or {})
        for k, v in kv.items():
            if v is None:
                continue
            e = w.external_data.add()
            e.key, e.value = k, v
        g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])], [w])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        write(os.path.join(d, "model.onnx"), m.SerializeToString())
        if write_data:
            write(os.path.join(d, "w.bin"), (w_bytes if w_bytes is not None else
                                             np.arange(10, 18, dtype=np.float32).tobytes()))

    # -- cases -----------------------------------------------------------------------------------
    def new_case(self, fmt, kind, desc):
        self.n += 1
        cid = "%s-%s-%04d" % (fmt, kind, self.n)
        d = os.path.join(self.cases_dir, cid)
        os.makedirs(d)
        return {"id": cid, "fmt": fmt, "kind": kind, "desc": desc, "dir": d,
                "out": os.path.join(self.out_root, cid)}

    def feats(self):
        return ["--input", "features=" + self.p("in", "features.npy")]

    def copy_base(self, name, case, sub="m"):
        dst = os.path.join(case["dir"], sub)
        copy_tree(self.p(name), dst)
        return dst

    def run_case(self, c, argv, policy, base=None, **extra):
        """Runs argv (an output dir is added for `run`), classifies, records."""
        c.update(extra)
        c["policy"], c["base"] = policy, base
        if argv[0] == "run":
            argv = argv + ["--output-dir", c["out"]]
        c["argv"] = [str(a) for a in argv]
        tree = c.get("tree") or [c["dir"]] + c.get("extra_tree", [])
        before = tree_hash(tree)
        r = self.runner.run(argv)
        c.update({k: r[k] for k in ("rc", "timeout", "secs")})
        c["stderr_tail"] = r["stderr"][-1500:]
        c["tree_changed"] = tree_hash(tree) != before
        c["base_changed"] = tree_hash([self.base, self.canary_dir]) != self.base_hash
        outs = load_outputs(c["out"])
        c["canary"] = self.canary_in(c["out"]) or CANARY.decode() in r["stdout"]
        outcome, why = self.classify(c, r, outs)
        if outcome == "BAD" and ("out of memory" in r["stderr"] or (c["rc"] < 0 and not c["timeout"])):
            lim = self.args.mem_mb * 1024 * 1024
            r2 = self.runner.run(argv, env_extra={"KILN_MAX_TENSOR_BYTES": str(lim // 4),
                                                  "KILN_MAX_MODEL_BYTES": str(lim // 2)})
            c["recheck_with_limits"] = {"rc": r2["rc"], "timeout": r2["timeout"], "stderr_tail": r2["stderr"][-600:]}
        c["outcome"], c["why"] = outcome, why
        c["outputs"] = describe_outputs(outs)
        if outcome in ("BAD", "SUSPECT"):
            self.save_repro(c)
        if c["base_changed"]:  # repair the shared inputs so later cases stay meaningful
            self.base_hash = tree_hash([self.base, self.canary_dir])
        self.record(c)
        if not self.args.keep:
            for d in (c["dir"], c["out"]):
                if os.path.lexists(d):
                    try:
                        rm_tree(d)
                    except OSError:
                        pass
        return c

    def canary_in(self, d):
        if not os.path.isdir(d):
            return False
        for n in os.listdir(d):
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p) and CANARY in read(p):
                return True
        return False

    def classify(self, c, r, outs):
        err = r["stderr"]
        if c["timeout"]:
            return "BAD", "timeout after %ss" % self.args.timeout
        if c["rc"] < 0:
            return "BAD", "killed by signal %s" % signal.Signals(-c["rc"]).name
        for w in BAD_WORDS:
            if w in err:
                return "BAD", "stderr contains %r" % w
        if c["tree_changed"] or c["base_changed"]:
            return "BAD", "the input tree was modified"
        if c["canary"] and c["policy"] != "any_nocanary":
            return "BAD", "canary bytes from a file outside the model appear in the outputs"
        if c["rc"] != 0:
            if not err.strip():
                return "BAD", "exit %d with nothing on stderr" % c["rc"]
            return "CLEAN-ERROR", err.strip().splitlines()[-1][:300]
        # exit 0
        pol = c["policy"]
        if pol == "must_fail":
            return "BAD", "exit 0, but this case must be refused (%s)" % describe_outputs(outs)[:200]
        if pol in ("any", "any_nocanary"):
            return "OK", "exit 0 (any clean result accepted for this case)"
        if c["argv"][0] != "run":
            return "OK", "exit 0"
        if not outs:
            return "BAD", "exit 0 but no outputs written"
        if outputs_equal(outs, self.baselines.get(c["base"])):
            return "OK", "outputs equal the unmutated model's"
        return getattr(self, "oracle_" + pol)(c, outs)

    # oracles for exit 0 with changed outputs
    def oracle_expect_same(self, c, outs):
        return "BAD", "exit 0 with outputs different from the (equivalent) reference model's"

    def oracle_checksummed(self, c, outs):
        return "BAD", "exit 0 with changed outputs although the mutated bytes are covered by a checksum"

    def oracle_resealed(self, c, outs):
        return "accepted-changed", "resealed container (checksums recomputed): outputs changed, not verifiable"

    def oracle_invalid(self, c, outs):
        return "SUSPECT", "exit 0 on a structurally invalid model: " + describe_outputs(outs)[:200]

    def oracle_npy(self, c, outs):
        path = c["npy"]
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001
            return "BAD", "accepted a .npy that numpy rejects (%s) and outputs changed" % str(e)[:120]
        clean = os.path.join(c["dir"], "clean.npy")
        np.save(clean, np.ascontiguousarray(a))
        od = c["out"] + "_clean"
        r = self.runner.run(["run", self.p("sm"), "--input", "features=" + clean, "--output-dir", od])
        ref = load_outputs(od)
        rm_tree(od) if os.path.isdir(od) else None
        c["oracle"] = "numpy reads dtype %s shape %s fortran=%s" % (a.dtype, a.shape, np.isfortran(a))
        if r["rc"] != 0:
            return "SUSPECT", "kiln accepts the mutated .npy but refuses numpy's re-save of it: %s" % r["stderr"][-200:]
        if outputs_equal(outs, ref):
            return "accepted-changed", "outputs equal kiln's on numpy's reading of the file (%s)" % c["oracle"]
        return "BAD", "wrong outputs: differ from kiln's on numpy's reading of the same file (%s)" % c["oracle"]

    def oracle_onnx(self, c, outs):
        import onnx
        path = c["onnx"]
        try:
            onnx.load_model_from_string(read(path))
        except Exception as e:  # noqa: BLE001
            return "BAD", "exit 0, changed outputs, on an ONNX file protobuf cannot parse (%s)" % str(e)[:120]
        ref_out = os.path.join(c["dir"], "ref.npz")
        mem = self.args.mem_mb * 1024 * 1024

        def pre():
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--onnx-oracle", path,
                                self.p("in", "feeds.npz"), ref_out], preexec_fn=pre, capture_output=True,
                               timeout=120)
            ok = p.returncode == 0 and os.path.exists(ref_out)
        except subprocess.TimeoutExpired:
            ok, p = False, None
        if not ok:
            return "SUSPECT", "changed outputs; onnx.reference cannot run the mutated model (%s)" % (
                p.stderr.decode(errors="replace").strip().splitlines()[-1][:160] if p and p.stderr else "timeout")
        ref = {k: v for k, v in np.load(ref_out).items()}
        if outputs_equal(outs, ref, rtol=1e-4, atol=1e-5):
            return "accepted-changed", "outputs equal onnx.reference's on the mutated model"
        return "SUSPECT", "changed outputs differ from onnx.reference's (%s)" % describe_outputs(ref)[:160]

    def _stripped_savedmodel(self, data):
        if self._sm_pb2 is None:
            from tensorflow.core.protobuf import saved_model_pb2  # heavy import, done once and only if needed
            self._sm_pb2 = saved_model_pb2
        sm = self._sm_pb2.SavedModel()
        sm.ParseFromString(data)
        for mg in sm.meta_graphs:
            nodes = list(mg.graph_def.node)
            for f in mg.graph_def.library.function:
                nodes.extend(f.node_def)
            for nd in nodes:
                if nd.op == "Const" and "value" in nd.attr:
                    t = nd.attr["value"].tensor
                    for fld in ("tensor_content", "float_val", "double_val", "int_val", "int64_val", "string_val",
                                "bool_val", "half_val", "uint32_val", "uint64_val"):
                        t.ClearField(fld)
        return sm.SerializeToString(deterministic=True)

    def oracle_savedmodel(self, c, outs):
        try:
            mut = self._stripped_savedmodel(read(c["pb"]))
        except Exception as e:  # noqa: BLE001
            return "BAD", "exit 0, changed outputs, on a saved_model.pb protobuf cannot parse (%s)" % str(e)[:120]
        if self._sm_stripped is None:
            self._sm_stripped = self._stripped_savedmodel(read(self.p("sm", "saved_model.pb")))
        if mut == self._sm_stripped:
            return "accepted-changed", "only the value of a Const changed"
        return "SUSPECT", "changed outputs; the mutation changed more than a Const's value"

    # -- bookkeeping -----------------------------------------------------------------------------
    def record(self, c):
        keep = {k: v for k, v in c.items() if k not in ("extra_tree", "tree")}
        self.results.append(keep)
        with open(os.path.join(self.work, "results.jsonl"), "a") as f:
            f.write(json.dumps(keep) + "\n")
        mark = "" if c["outcome"] in ("OK", "CLEAN-ERROR", "accepted-changed") else "   <<<<<"
        print("[%5d] %-16s %-40s rc=%s %.2fs %s: %s%s" % (len(self.results), c["outcome"], c["id"], c["rc"], c["secs"],
                                                          c["desc"][:60], c["why"][:120], mark), flush=True)

    def save_repro(self, c):
        d = os.path.join(self.repro, c["id"])
        if os.path.lexists(d):
            rm_tree(d)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        copy_tree(c["dir"], d)
        argv = [a.replace(c["dir"], d) for a in c["argv"]]
        with open(os.path.join(d, "README.txt"), "w") as f:
            f.write("case %s (%s, %s)\n%s\n\noutcome: %s: %s\n\noriginal command (paths under the work dir):\n  %s %s\n"
                    "command on this copy (shared inputs stay under %s):\n  %s %s\nexit code: %s, timed out: %s\n"
                    "stderr tail:\n%s\n" % (c["id"], c["fmt"], c["kind"], c["desc"], c["outcome"], c["why"],
                                            self.runner.kiln, " ".join(c["argv"]), self.base, self.runner.kiln,
                                            " ".join(argv), c["rc"], c["timeout"], c["stderr_tail"]))
        c["repro"] = d
        c["repro_argv"] = argv

    def crafted_cases(self, groups):
        for g in ("npy", "convert", "onnx", "savedmodel", "converted"):
            if (not groups or g in groups) and hasattr(self, "crafted_" + g):
                getattr(self, "crafted_" + g)()

    # -- crafted: .npy inputs ----------------------------------------------------------------------
    def crafted_npy(self):
        data = np.random.RandomState(5).randn(2, 32).astype(np.float32).tobytes()
        H = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }"
        cases = [
            ("header_len 0xFFFF, file short", b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 100),
            ("v2 header_len 0xFFFFFFFF", b"\x93NUMPY\x02\x00\xff\xff\xff\xff" + b"{'descr'" * 10),
            ("v3 header_len 0x7FFFFFFF", b"\x93NUMPY\x03\x00\xff\xff\xff\x7f" + b" " * 64),
            ("header_len 0", b"\x93NUMPY\x01\x00\x00\x00" + data),
            ("version 9.9", npy_bytes(H % ("<f4", "False", "(2, 32)"), data, (1, 0)).replace(b"\x01\x00", b"\x09\x09", 1)),
            ("magic only", b"\x93NUMPY"),
            ("empty file", b""),
            ("negative dim (-2, 32)", npy_bytes(H % ("<f4", "False", "(-2, 32)"), data)),
            ("negative dim (2, -32)", npy_bytes(H % ("<f4", "False", "(2, -32)"), data)),
            ("negative both (-2, -32)", npy_bytes(H % ("<f4", "False", "(-2, -32)"), data)),
            ("huge shape (2**40, 32)", npy_bytes(H % ("<f4", "False", "(1099511627776, 32)"), data)),
            ("huge shape (2**62, 2**62) overflow", npy_bytes(H % ("<f4", "False", "(4611686018427387904, 4611686018427387904)"), data)),
            ("dims 2**32 * 2**32 (wraps to 0 in 64 bits)", npy_bytes(H % ("<f4", "False", "(4294967296, 4294967296)"), data)),
            ("dims 2**63 (does not fit int64)", npy_bytes(H % ("<f4", "False", "(9223372036854775808, 32)"), data)),
            ("dim 2**64", npy_bytes(H % ("<f4", "False", "(18446744073709551616, 32)"), data)),
            ("dim 2**64+2 (wraps to 2)", npy_bytes(H % ("<f4", "False", "(18446744073709551618, 32)"), data)),
            ("dim 10**400", npy_bytes(H % ("<f4", "False", "(1" + "0" * 400 + ", 32)"), data)),
            ("shape (2, 0) with data", npy_bytes(H % ("<f4", "False", "(2, 0)"), data)),
            ("shape (0, 32) no data", npy_bytes(H % ("<f4", "False", "(0, 32)"), b"")),
            ("65 dims", npy_bytes(H % ("<f4", "False", "(" + "1, " * 63 + "2, 32)"), data)),
            ("10000 dims", npy_bytes(H % ("<f4", "False", "(" + "1, " * 9998 + "2, 32)"), data, (2, 0))),
            ("scalar shape ()", npy_bytes(H % ("<f4", "False", "()"), data[:4])),
            ("truncated data (half)", npy_bytes(H % ("<f4", "False", "(2, 32)"), data[:128])),
            ("truncated data (1 byte short)", npy_bytes(H % ("<f4", "False", "(2, 32)"), data[:-1])),
            ("no data", npy_bytes(H % ("<f4", "False", "(2, 32)"), b"")),
            ("trailing data", npy_bytes(H % ("<f4", "False", "(2, 32)"), data + b"junk" * 10)),
            ("big-endian >f4", npy_bytes(H % (">f4", "False", "(2, 32)"), np.frombuffer(data, "<f4").astype(">f4").tobytes())),
            ("descr <f2 (wrong size for data)", npy_bytes(H % ("<f2", "False", "(2, 32)"), data)),
            ("descr <f8 (half the data)", npy_bytes(H % ("<f8", "False", "(2, 32)"), data)),
            ("descr <f8 full data", npy_bytes(H % ("<f8", "False", "(2, 32)"), np.frombuffer(data, "<f4").astype("<f8").tobytes())),
            ("descr |b1", npy_bytes(H % ("|b1", "False", "(2, 32)"), data[:64])),
            ("descr <U8", npy_bytes(H % ("<U8", "False", "(2, 32)"), data * 8)),
            ("descr |O (pickle)", npy_bytes(H % ("|O", "False", "(2, 32)"), data * 2)),
            ("descr <c8", npy_bytes(H % ("<c8", "False", "(2, 32)"), data * 2)),
            ("descr <i4", npy_bytes(H % ("<i4", "False", "(2, 32)"), data)),
            ("descr f4 (no byte order)", npy_bytes(H % ("f4", "False", "(2, 32)"), data)),
            ("descr =f4", npy_bytes(H % ("=f4", "False", "(2, 32)"), data)),
            ("descr float32", npy_bytes(H % ("float32", "False", "(2, 32)"), data)),
            ("descr <f4 with NUL", npy_bytes(H % ("<f4\\x00", "False", "(2, 32)"), data)),
            ("descr <f99999999999999999999", npy_bytes(H % ("<f99999999999999999999", "False", "(2, 32)"), data)),
            ("descr <f0", npy_bytes(H % ("<f0", "False", "(2, 32)"), data)),
            ("descr <V4", npy_bytes(H % ("<V4", "False", "(2, 32)"), data)),
            ("descr <M8[s]", npy_bytes(H % ("<M8[s]", "False", "(2, 32)"), data * 2)),
            ("descr is a list (structured)", npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 32), }", data)),
            ("descr empty", npy_bytes(H % ("", "False", "(2, 32)"), data)),
            ("fortran_order True (2, 32)", npy_bytes(H % ("<f4", "True", "(2, 32)"), data)),
            ("fortran_order 1", npy_bytes(H % ("<f4", "1", "(2, 32)"), data)),
            ("fortran_order 'maybe'", npy_bytes(H % ("<f4", "'maybe'", "(2, 32)"), data)),
            ("missing shape key", npy_bytes("{'descr': '<f4', 'fortran_order': False, }", data)),
            ("duplicate shape key", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 32), 'shape': (1, 64), }", data)),
            ("extra key", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 32), 'evil': 1, }", data)),
            ("shape as list [2, 32]", npy_bytes(H % ("<f4", "False", "[2, 32]"), data)),
            ("shape (2.0, 32)", npy_bytes(H % ("<f4", "False", "(2.0, 32)"), data)),
            ("shape (True, 32)", npy_bytes(H % ("<f4", "False", "(True, 32)"), data)),
            ("shape (0x2, 32)", npy_bytes(H % ("<f4", "False", "(0x2, 32)"), data)),
            ("shape (+2, 32)", npy_bytes(H % ("<f4", "False", "(+2, 32)"), data)),
            ("shape (2,, 32)", npy_bytes(H % ("<f4", "False", "(2,, 32)"), data)),
            ("shape (2, 32 unterminated", npy_bytes(H % ("<f4", "False", "(2, 32"), data)),
            ("shape nested ((2,), 32)", npy_bytes(H % ("<f4", "False", "((2,), 32)"), data)),
            ("header without newline", b"\x93NUMPY\x01\x00" + struct.pack("<H", 70) + (H % ("<f4", "False", "(2, 32)")).encode().ljust(70) + data),
            ("header with NUL", npy_bytes((H % ("<f4", "False", "(2, 32)")).replace("}", "\x00}"), data)),
            ("header nested braces 100000 deep", npy_bytes("{" * 100000 + "}" * 100000, data, (2, 0))),
            ("header 10 MB of spaces", npy_bytes(H % ("<f4", "False", "(2, 32)") + " " * 10000000, data, (2, 0))),
            ("header is not a dict", npy_bytes("[1, 2, 3]", data)),
            ("header with __import__", npy_bytes("{'descr': __import__('os').system('touch /tmp/hostile_pwned'), 'fortran_order': False, 'shape': (2, 32), }", data)),
        ]
        for desc, b in cases:
            c = self.new_case("npy", "craft", desc)
            path = os.path.join(c["dir"], "features.npy")
            write(path, b)
            self.run_case(c, ["run", self.p("sm"), "--input", "features=" + path], "npy", "sm", npy=path)
        # special files as inputs
        for desc in ("input is a FIFO", "input is a directory", "input is /dev/zero (symlink)", "input symlink loop",
                     "input missing"):
            c = self.new_case("npy", "craft", desc)
            path = os.path.join(c["dir"], "features.npy")
            if "FIFO" in desc:
                os.mkfifo(path)
            elif "directory" in desc:
                os.makedirs(path)
            elif "zero" in desc:
                os.symlink("/dev/zero", path)
            elif "loop" in desc:
                os.symlink("features.npy", path)
            self.run_case(c, ["run", self.p("sm"), "--input", "features=" + path], "must_fail", "sm", npy=path)

    # -- crafted: ONNX ---------------------------------------------------------------------------
    def crafted_onnx(self):
        from onnx import TensorProto as TP, helper as H, numpy_helper as NH
        X = H.make_tensor_value_info("x", TP.FLOAT, [8])
        Y = H.make_tensor_value_info("y", TP.FLOAT, None)
        XC = H.make_tensor_value_info("x", TP.FLOAT, [1, 1, 4, 4])
        X24 = H.make_tensor_value_info("x", TP.FLOAT, [2, 4])
        in8 = {"x": self.p("in", "x8.npy")}
        inc = {"x": self.p("in", "xc.npy")}
        in24 = {"x": self.p("in", "x24.npy")}
        B = 2 ** 62

        def model(nodes, inits=(), inputs=(X,), outputs=(Y,), opset=17, ir=8):
            g = H.make_graph(nodes, "g", list(inputs), list(outputs), list(inits))
            m = H.make_model(g, opset_imports=[H.make_opsetid("", opset)] if opset is not None else [])
            if opset is None:
                del m.opset_import[:]
            m.ir_version = ir
            return m.SerializeToString()

        def i64(name, vals):
            return NH.from_array(np.array(vals, np.int64), name)

        def f32(name, vals):
            return NH.from_array(np.array(vals, np.float32), name)

        def tensor(name, dims, dtype=TP.FLOAT, raw=None, floats=None):
            t = TP()
            t.name, t.data_type = name, dtype
            t.dims.extend(dims)
            if raw is not None:
                t.raw_data = raw
            if floats is not None:
                t.float_data.extend(floats)
            return t

        add_w = [H.make_node("Add", ["x", "w"], ["y"])]
        red = lambda src: H.make_node("ReduceSum", [src], ["y"], keepdims=0)  # noqa: E731
        cases = [
            # initializers
            ("initializer dims [2**40], no data", model(add_w, [tensor("w", [2 ** 40])]), "must_fail", in8),
            ("initializer dims [2**40, 2**40], no data", model(add_w, [tensor("w", [2 ** 40, 2 ** 40])]), "must_fail", in8),
            ("initializer dims [2**31, 2**31, 2**31] raw 32 bytes", model(add_w, [tensor("w", [2 ** 31] * 3, raw=b"\0" * 32)]), "must_fail", in8),
            ("initializer dims [-1] raw 32 bytes", model(add_w, [tensor("w", [-1], raw=b"\0" * 32)]), "must_fail", in8),
            ("initializer dims [2**63-1]", model(add_w, [tensor("w", [2 ** 63 - 1], raw=b"\0" * 32)]), "must_fail", in8),
            ("initializer [8] with no data", model(add_w, [tensor("w", [8])]), "must_fail", in8),
            ("initializer [8] raw_data 8 bytes (short)", model(add_w, [tensor("w", [8], raw=b"\1" * 8)]), "must_fail", in8),
            ("initializer [8] raw_data 31 bytes", model(add_w, [tensor("w", [8], raw=b"\1" * 31)]), "must_fail", in8),
            ("initializer [8] raw_data 40 bytes (long)", model(add_w, [tensor("w", [8], raw=b"\1" * 40)]), "must_fail", in8),
            ("initializer [8] float_data 3 values", model(add_w, [tensor("w", [8], floats=[1, 2, 3])]), "must_fail", in8),
            ("initializer [8] float_data 3 values + raw 32", model(add_w, [tensor("w", [8], raw=b"\0" * 32, floats=[1, 2, 3])]), "any", in8),
            ("initializer data_type 0", model(add_w, [tensor("w", [8], dtype=0, raw=b"\0" * 32)]), "must_fail", in8),
            ("initializer data_type 9999", model(add_w, [tensor("w", [8], dtype=9999, raw=b"\0" * 32)]), "must_fail", in8),
            ("initializer STRING with raw_data", model(add_w, [tensor("w", [8], dtype=TP.STRING, raw=b"\0" * 32)]), "must_fail", in8),
            ("initializer [8] int64 for float Add", model(add_w, [tensor("w", [8], dtype=TP.INT64, raw=b"\0" * 64)]), "must_fail", in8),
            ("two initializers named w, different values", model(add_w, [f32("w", np.ones(8)), f32("w", np.full(8, 7))]), "invalid", in8),
            ("input x declared [2**40], fed [8]", model([H.make_node("Relu", ["x"], ["y"])], inputs=[H.make_tensor_value_info("x", TP.FLOAT, [2 ** 40])]), "must_fail", in8),
            # sizes computed from constants
            ("Reshape to [2**40, 2**40]", model([H.make_node("Reshape", ["x", "s"], ["y"])], [i64("s", [2 ** 40, 2 ** 40])]), "must_fail", in8),
            ("Reshape to [-1, -1]", model([H.make_node("Reshape", ["x", "s"], ["y"])], [i64("s", [-1, -1])]), "must_fail", in8),
            ("Reshape to [-1, 2**62]", model([H.make_node("Reshape", ["x", "s"], ["y"])], [i64("s", [-1, B])]), "must_fail", in8),
            ("Reshape to [2**62, 0] allowzero", model([H.make_node("Reshape", ["x", "s"], ["y"], allowzero=1)], [i64("s", [B, 0])]), "must_fail", in8),
            ("Reshape to [2**32, 2**32, 0, -1]", model([H.make_node("Reshape", ["x", "s"], ["y"])], [i64("s", [2 ** 32, 2 ** 32, 0, -1])]), "must_fail", in8),
            ("Reshape to [-3]", model([H.make_node("Reshape", ["x", "s"], ["y"])], [i64("s", [-3])]), "must_fail", in8),
            ("Expand to [2**62, 8]", model([H.make_node("Expand", ["x", "s"], ["e"]), red("e")], [i64("s", [B, 8])]), "must_fail", in8),
            ("Expand to [2**28, 8] (8 GiB, under RAM, over rlimit)", model([H.make_node("Expand", ["x", "s"], ["e"]), red("e")], [i64("s", [2 ** 28, 8])]), "any", in8),
            ("Expand to [-1, 8]", model([H.make_node("Expand", ["x", "s"], ["e"]), red("e")], [i64("s", [-1, 8])]), "must_fail", in8),
            ("Tile repeats [2**62] (constant)", model([H.make_node("Tile", ["x", "r"], ["e"]), red("e")], [i64("r", [B])]), "must_fail", in8),
            ("Tile repeats [2**28] (8 GiB)", model([H.make_node("Tile", ["x", "r"], ["e"]), red("e")], [i64("r", [2 ** 28])]), "any", in8),
            ("Tile repeats [-1]", model([H.make_node("Tile", ["x", "r"], ["e"]), red("e")], [i64("r", [-1])]), "must_fail", in8),
            ("ConstantOfShape [2**40, 2**40]", model([H.make_node("ConstantOfShape", ["s"], ["e"]), red("e")], [i64("s", [2 ** 40, 2 ** 40])]), "must_fail", in8),
            ("ConstantOfShape [2**62]", model([H.make_node("ConstantOfShape", ["s"], ["e"]), red("e")], [i64("s", [B])]), "must_fail", in8),
            ("ConstantOfShape [-1]", model([H.make_node("ConstantOfShape", ["s"], ["e"]), red("e")], [i64("s", [-1])]), "must_fail", in8),
            ("ConstantOfShape [2**31] (8 GiB)", model([H.make_node("ConstantOfShape", ["s"], ["e"]), red("e")], [i64("s", [2 ** 31])]), "any", in8),
            ("ConstantOfShape 100 dims of 2", model([H.make_node("ConstantOfShape", ["s"], ["e"]), red("e")], [i64("s", [2] * 100)]), "must_fail", in8),
            ("Range int64 0..2**62 step 1 (constants)", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [i64("a", 0), i64("b", B), i64("d", 1)]), "must_fail", in8),
            ("Range int64 -2**63..2**63-1 step 1", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [i64("a", -2 ** 63), i64("b", 2 ** 63 - 1), i64("d", 1)]), "must_fail", in8),
            ("Range int64 2**63-1..-2**63 step -1", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [i64("a", 2 ** 63 - 1), i64("b", -2 ** 63), i64("d", -1)]), "must_fail", in8),
            ("Range int64 0..2**62 step 2**61 (2 values)", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [i64("a", 0), i64("b", B), i64("d", 2 ** 61)], outputs=[H.make_tensor_value_info("y", TP.INT64, None)]), "any", in8),
            ("Range int64 step 0", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [i64("a", 0), i64("b", 10), i64("d", 0)]), "must_fail", in8),
            ("Range float 0..1e30 step 1e-30", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [f32("a", 0), f32("b", 1e30), f32("d", 1e-30)]), "must_fail", in8),
            ("Range float 0..NaN", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [f32("a", 0), f32("b", np.nan), f32("d", 1)]), "must_fail", in8),
            ("Range float 0..inf", model([H.make_node("Range", ["a", "b", "d"], ["y"])], [f32("a", 0), f32("b", np.inf), f32("d", 1)]), "must_fail", in8),
            ("OneHot depth 2**40", model([H.make_node("OneHot", ["i", "d", "v"], ["y"])], [i64("i", [1, 2]), i64("d", 2 ** 40), f32("v", [0, 1])]), "must_fail", in8),
            ("TopK k=2**62", model([H.make_node("TopK", ["x", "k"], ["y", "idx"])], [i64("k", [B])]), "must_fail", in8),
            ("TopK k=-1", model([H.make_node("TopK", ["x", "k"], ["y", "idx"])], [i64("k", [-1])]), "must_fail", in8),
            ("Resize scales 1e30", model([H.make_node("Resize", ["x", "", "sc"], ["y"])], [f32("sc", [1e30])]), "must_fail", in8),
            ("Resize sizes [2**62]", model([H.make_node("Resize", ["x", "", "", "sz"], ["y"])], [i64("sz", [B])]), "must_fail", in8),
            ("Pad pads [2**62, 0]", model([H.make_node("Pad", ["x", "p"], ["y"])], [i64("p", [B, 0])]), "must_fail", in8),
            ("Pad pads [-2**62, 0]", model([H.make_node("Pad", ["x", "p"], ["y"])], [i64("p", [-B, 0])]), "must_fail", in8),
            ("Pad pads [-9, 0] (crop more than the dim)", model([H.make_node("Pad", ["x", "p"], ["y"])], [i64("p", [-9, 0])]), "must_fail", in8),
            ("Pad pads [2**62, -2**62]", model([H.make_node("Pad", ["x", "p"], ["y"])], [i64("p", [B, -B])]), "must_fail", in8),
            ("Slice starts 2**62 ends 2**63-1 (empty)", model([H.make_node("Slice", ["x", "s", "e"], ["y"])], [i64("s", [B]), i64("e", [2 ** 63 - 1])]), "any", in8),
            ("Slice steps 0", model([H.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])], [i64("s", [0]), i64("e", [8]), i64("a", [0]), i64("t", [0])]), "must_fail", in8),
            ("Slice steps -2**63", model([H.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])], [i64("s", [-1]), i64("e", [-2 ** 63]), i64("a", [0]), i64("t", [-2 ** 63])]), "any", in8),
            ("Slice axes [2**62]", model([H.make_node("Slice", ["x", "s", "e", "a"], ["y"])], [i64("s", [0]), i64("e", [8]), i64("a", [B])]), "must_fail", in8),
            ("Gather index 2**62", model([H.make_node("Gather", ["x", "i"], ["y"])], [i64("i", [B])]), "must_fail", in8),
            ("Gather index -2**62", model([H.make_node("Gather", ["x", "i"], ["y"])], [i64("i", [-B])]), "must_fail", in8),
            ("Gather axis 2**62", model([H.make_node("Gather", ["x", "i"], ["y"], axis=B)], [i64("i", [0])]), "must_fail", in8),
            ("Squeeze axes [2**62]", model([H.make_node("Squeeze", ["x", "a"], ["y"])], [i64("a", [B])]), "must_fail", in8),
            ("Unsqueeze axes [2**62]", model([H.make_node("Unsqueeze", ["x", "a"], ["y"])], [i64("a", [B])]), "must_fail", in8),
            ("Unsqueeze axes [0]*100 (duplicates)", model([H.make_node("Unsqueeze", ["x", "a"], ["y"])], [i64("a", [0] * 100)]), "must_fail", in8),
            ("ReduceSum axes [2**62]", model([H.make_node("ReduceSum", ["x", "a"], ["y"])], [i64("a", [B])]), "must_fail", in8),
            ("Split split [2**62, 8-2**62]", model([H.make_node("Split", ["x", "sp"], ["y", "z"])], [i64("sp", [B, 8 - B])]), "must_fail", in8),
            ("Concat axis 2**62", model([H.make_node("Concat", ["x", "x"], ["y"], axis=B)]), "must_fail", in8),
            ("Concat axis -2**62", model([H.make_node("Concat", ["x", "x"], ["y"], axis=-B)]), "must_fail", in8),
            ("Softmax axis 2**62", model([H.make_node("Softmax", ["x"], ["y"], axis=B)]), "must_fail", in8),
            ("Softmax axis -2**63", model([H.make_node("Softmax", ["x"], ["y"], axis=-2 ** 63)]), "must_fail", in8),
            ("Flatten axis 2**62", model([H.make_node("Flatten", ["x"], ["y"], axis=B)]), "must_fail", in8),
            ("CumSum axis 2**62", model([H.make_node("CumSum", ["x", "a"], ["y"])], [i64("a", B)]), "must_fail", in8),
            ("ArgMax axis 2**62", model([H.make_node("ArgMax", ["x"], ["y"], axis=B)]), "must_fail", in8),
            ("Trilu k 2**62 on [2,4]", model([H.make_node("Trilu", ["x", "k"], ["y"])], [i64("k", B)], inputs=[X24]), "any", in24),
            ("Transpose perm [2**62, 0]", model([H.make_node("Transpose", ["x"], ["y"], perm=[B, 0])], inputs=[X24]), "must_fail", in24),
            ("Transpose perm [0, 0]", model([H.make_node("Transpose", ["x"], ["y"], perm=[0, 0])], inputs=[X24]), "must_fail", in24),
            ("Transpose perm [1]", model([H.make_node("Transpose", ["x"], ["y"], perm=[1])], inputs=[X24]), "must_fail", in24),
            ("Transpose perm of 1,000,000 entries", model([H.make_node("Transpose", ["x"], ["y"], perm=list(range(1000000)))], inputs=[X24]), "must_fail", in24),
            ("Einsum 100000-letter equation", model([H.make_node("Einsum", ["x"], ["y"], equation="a" * 100000 + "->")]), "must_fail", in8),
            ("DepthToSpace blocksize 2**62", model([H.make_node("DepthToSpace", ["x"], ["y"], blocksize=B)], inputs=[XC]), "must_fail", inc),
            ("Sum of 100000 inputs", model([H.make_node("Sum", ["x"] * 100000, ["y"])]), "any", in8),
        ]
        W = f32("W", np.ones((1, 1, 2, 2)))
        for desc, attrs, pol in [("pads 2**62", dict(pads=[B] * 4), "must_fail"), ("pads -2**62", dict(pads=[-B] * 4), "must_fail"),
                                 ("pads 2**40", dict(pads=[2 ** 40] * 4), "must_fail"), ("pads -1", dict(pads=[-1] * 4), "must_fail"),
                                 ("strides 2**62", dict(strides=[B, B]), "any"), ("strides 0", dict(strides=[0, 0]), "must_fail"),
                                 ("strides -1", dict(strides=[-1, -1]), "must_fail"), ("dilations 2**62", dict(dilations=[B, B]), "must_fail"),
                                 ("dilations 0", dict(dilations=[0, 0]), "must_fail"), ("group 0", dict(group=0), "must_fail"),
                                 ("group 2**62", dict(group=B), "must_fail"), ("group -1", dict(group=-1), "must_fail"),
                                 ("kernel_shape 2**62", dict(kernel_shape=[B, B]), "must_fail"),
                                 ("pads 2**31-1 with stride 1", dict(pads=[2 ** 31 - 1] * 4), "must_fail")]:
            cases.append(("Conv " + desc, model([H.make_node("Conv", ["x", "W"], ["y"], **attrs)], [W], inputs=[XC]), pol, inc))
        for op in ("MaxPool", "AveragePool"):
            for desc, attrs, pol in [("kernel 2**62", dict(kernel_shape=[B, B]), "must_fail"), ("kernel 0", dict(kernel_shape=[0, 0]), "must_fail"),
                                     ("kernel -1", dict(kernel_shape=[-1, -1]), "must_fail"),
                                     ("pads 2**40", dict(kernel_shape=[2, 2], pads=[2 ** 40] * 4), "must_fail"),
                                     ("pads -2**62", dict(kernel_shape=[2, 2], pads=[-B] * 4), "must_fail"),
                                     ("strides 0", dict(kernel_shape=[2, 2], strides=[0, 0]), "must_fail"),
                                     ("strides 2**62", dict(kernel_shape=[2, 2], strides=[B, B]), "any")]:
                cases.append((op + " " + desc, model([H.make_node(op, ["x"], ["y"], **attrs)], inputs=[XC]), pol, inc))
        # graph structure
        cases += [
            ("node consumes its own output (Relu y -> y)", model([H.make_node("Relu", ["y"], ["y"])]), "must_fail", in8),
            ("two-node cycle a <-> b feeding y", model([H.make_node("Relu", ["b"], ["a"]), H.make_node("Relu", ["a"], ["b"]),
                                                       H.make_node("Add", ["x", "a"], ["y"])]), "must_fail", in8),
            ("cycle not reaching the output", model([H.make_node("Relu", ["b"], ["a"]), H.make_node("Relu", ["a"], ["b"]),
                                                     H.make_node("Relu", ["x"], ["y"])]), "any", in8),
            ("two nodes produce y", model([H.make_node("Relu", ["x"], ["y"]), H.make_node("Neg", ["x"], ["y"])]), "must_fail", in8),
            ("graph output y listed twice", model([H.make_node("Relu", ["x"], ["y"])], outputs=[Y, Y]), "invalid", in8),
            ("graph input x listed twice", model([H.make_node("Relu", ["x"], ["y"])], inputs=[X, X]), "invalid", in8),
            ("node output shadows the graph input x", model([H.make_node("Neg", ["x"], ["x"]), H.make_node("Relu", ["x"], ["y"])]), "must_fail", in8),
            ("node input never defined", model([H.make_node("Add", ["x", "nope"], ["y"])]), "must_fail", in8),
            ("graph output never produced", model([H.make_node("Relu", ["x"], ["z"])]), "must_fail", in8),
            ("empty op_type", model([H.make_node("", ["x"], ["y"])]), "must_fail", in8),
            ("unknown op", model([H.make_node("EvilOp", ["x"], ["y"])]), "must_fail", in8),
            ("op in unknown domain", model([H.make_node("Relu", ["x"], ["y"], domain="com.evil")]), "must_fail", in8),
            ("opset 0", model([H.make_node("Relu", ["x"], ["y"])], opset=0), "any", in8),
            ("opset 10000", model([H.make_node("Relu", ["x"], ["y"])], opset=10000), "any", in8),
            ("opset -1", model([H.make_node("Relu", ["x"], ["y"])], opset=-1), "any", in8),
            ("opset 2**62", model([H.make_node("Relu", ["x"], ["y"])], opset=B), "any", in8),
            ("no opset_import", model([H.make_node("Relu", ["x"], ["y"])], opset=None), "any", in8),
            ("ir_version 0", model([H.make_node("Relu", ["x"], ["y"])], ir=0), "any", in8),
            ("ir_version 2**62", model([H.make_node("Relu", ["x"], ["y"])], ir=B), "any", in8),
            ("Loop trip count 2**62, cond true, empty body", self.onnx_loop_model(2 ** 62), "any", in8),
            ("If nested 5000 deep", self.onnx_nested("If", 5000), "must_fail", {"x": self.p("in", "x8.npy"), "c": self.p("in", "true.npy")}),
            ("If nested 31 deep (the deepest protobuf parses)", self.onnx_nested("If", 31), "any", {"x": self.p("in", "x8.npy"), "c": self.p("in", "true.npy")}),
            ("Loop nested 30 deep (the deepest protobuf parses)", self.onnx_nested("Loop", 30), "any", {"x": self.p("in", "x8.npy"), "m": self.p("in", "one64.npy")}),
            ("Loop nested 5000 deep", self.onnx_nested("Loop", 5000), "must_fail", {"x": self.p("in", "x8.npy"), "m": self.p("in", "one64.npy")}),
            ("input type: sequence nested 100000 deep", self.onnx_deep_type(100000), "must_fail", in8),
            ("unknown field: 100000 nested groups in ModelProto", self.onnx_plain_relu() + self.deep_groups(99, 100000), "any", in8),
            ("unknown field: 100000 nested groups, unterminated", self.onnx_plain_relu() + enc_varint(99 << 3 | 3) * 100000, "must_fail", in8),
        ]
        for desc, mb, pol, inputs in cases:
            c = self.new_case("onnx", "craft", desc)
            path = os.path.join(c["dir"], "model.onnx")
            write(path, mb)
            argv = ["run", path]
            for k, v in inputs.items():
                argv += ["--input", "%s=%s" % (k, v)]
            self.run_case(c, argv, pol, None)
        self.crafted_onnx_external()

    def crafted_onnx_external(self):
        """ONNX y = x + w with w (float32[8]) in external data: locations and offsets/lengths."""
        canary = os.path.join(self.canary_dir, "canary.bin")
        x8 = ["--input", "x=" + self.p("in", "x8.npy")]
        specs = [
            # desc, location, extra key/values, setup(dir), policy
            ("valid location w.bin (equivalent to the baseline)", "w.bin", {}, None, "expect_same"),
            ("location ../ to the canary", None, {}, "dotdot", "must_fail"),
            ("location absolute path of the canary", canary, {}, None, "must_fail"),
            ("location symlink inside -> canary outside", "link.bin", {}, lambda d: os.symlink(canary, os.path.join(d, "link.bin")), "must_fail"),
            ("location sub/canary.bin, sub symlink -> canary dir", "sub/canary.bin", {}, lambda d: os.symlink(self.canary_dir, os.path.join(d, "sub")), "must_fail"),
            ("location w.bin/../../<canary> (.. after a name)", None, {}, "namedotdot", "must_fail"),
            ("location a directory", "d", {}, lambda d: os.makedirs(os.path.join(d, "d")), "must_fail"),
            ("location '.' (the model dir)", ".", {}, None, "must_fail"),
            ("location a FIFO", "f.bin", {}, lambda d: os.mkfifo(os.path.join(d, "f.bin")), "must_fail"),
            ("location symlink -> FIFO", "l.bin", {}, lambda d: (os.mkfifo(os.path.join(d, "f.bin")), os.symlink("f.bin", os.path.join(d, "l.bin"))), "must_fail"),
            ("location /dev/zero", "/dev/zero", {}, None, "must_fail"),
            ("location symlink -> /dev/zero", "z.bin", {}, lambda d: os.symlink("/dev/zero", os.path.join(d, "z.bin")), "must_fail"),
            ("location symlink loop", "loop.bin", {}, lambda d: os.symlink("loop.bin", os.path.join(d, "loop.bin")), "must_fail"),
            ("location /proc/self/mem", "/proc/self/mem", {}, None, "must_fail"),
            ("location empty string", "", {}, None, "must_fail"),
            ("location missing file", "missing.bin", {}, None, "must_fail"),
            ("location with NUL byte", "w.bin\0/../../x", {}, None, "must_fail"),
            ("location 5000 characters", "a" * 5000, {}, None, "must_fail"),
            ("location model.onnx itself (inside the dir)", "model.onnx", {"length": "32"}, None, "any"),
            ("no location key", None, {"location": None}, "nolocation", "must_fail"),
            ("location key twice: w.bin then the canary", "w.bin", {}, "dupkey", "any"),
            ("offset -1", "w.bin", {"offset": "-1"}, None, "must_fail"),
            ("offset -32", "w.bin", {"offset": "-32"}, None, "must_fail"),
            ("offset 2**64-1", "w.bin", {"offset": "18446744073709551615"}, None, "must_fail"),
            ("offset 2**63-1", "w.bin", {"offset": "9223372036854775807"}, None, "must_fail"),
            ("offset 2**63-8 length 16 (sum overflows int64)", "w.bin", {"offset": "9223372036854775800", "length": "16"}, None, "must_fail"),
            ("offset 32 length 2**64-32 (sum wraps to 0)", "w.bin", {"offset": "32", "length": "18446744073709551584"}, "long64", "must_fail"),
            ("offset 2**62", "w.bin", {"offset": "4611686018427387904"}, None, "must_fail"),
            ("offset 10**30", "w.bin", {"offset": "1" + "0" * 30}, None, "must_fail"),
            ("offset 'abc'", "w.bin", {"offset": "abc"}, None, "must_fail"),
            ("offset ''", "w.bin", {"offset": ""}, None, "must_fail"),
            ("offset '1e1'", "w.bin", {"offset": "1e1"}, None, "must_fail"),
            ("offset '0x0'", "w.bin", {"offset": "0x0"}, None, "must_fail"),
            ("offset ' 0'", "w.bin", {"offset": " 0"}, None, "must_fail"),
            ("offset '+0'", "w.bin", {"offset": "+0"}, None, "must_fail"),
            ("offset '0.5'", "w.bin", {"offset": "0.5"}, None, "must_fail"),
            ("offset 4 (past what 32 bytes need)", "w.bin", {"offset": "4"}, None, "must_fail"),
            ("length -1", "w.bin", {"length": "-1"}, None, "must_fail"),
            ("length 10**20", "w.bin", {"length": "99999999999999999999"}, None, "must_fail"),
            ("length 2**64-1", "w.bin", {"length": "18446744073709551615"}, None, "must_fail"),
            ("length 16 (short)", "w.bin", {"length": "16"}, None, "must_fail"),
            ("length 33", "w.bin", {"length": "33"}, None, "must_fail"),
            ("length 0", "w.bin", {"length": "0"}, None, "must_fail"),
            ("length 'abc'", "w.bin", {"length": "abc"}, None, "must_fail"),
            ("no length, file 64 bytes", "w.bin", {"length": None}, "long64", "must_fail"),
            ("offset 32 no length, file 64 bytes", "w.bin", {"length": None, "offset": "32"}, "long64", "any"),
            ("data file 16 bytes", "w.bin", {}, "short16", "must_fail"),
            ("data file empty", "w.bin", {}, "empty", "must_fail"),
            ("w dims [2**40] with length 32", "w.bin", {}, "dims40", "must_fail"),
            ("model dir itself is a symlink to the model", "w.bin", {}, "dirlink", "expect_same"),
        ]
        for desc, loc, kv, setup, pol in specs:
            c = self.new_case("onnx_external", "craft", desc)
            d = os.path.join(c["dir"], "m")
            os.makedirs(d)
            if setup == "dotdot":
                loc = os.path.relpath(canary, d)
            elif setup == "namedotdot":
                loc = "w.bin/" + os.path.relpath(canary, d)
            wb = None
            if setup == "long64":
                wb = np.arange(10, 26, dtype=np.float32).tobytes()
            elif setup == "short16":
                wb = np.arange(10, 14, dtype=np.float32).tobytes()
            elif setup == "empty":
                wb = b""
            self.make_ext_model(d, loc if loc is not None else "w.bin", w_bytes=wb, extra_kv=kv)
            if setup in ("nolocation", "dupkey", "dims40"):
                import onnx
                m = onnx.load_model_from_string(read(os.path.join(d, "model.onnx")))
                t = m.graph.initializer[0]
                if setup == "nolocation":
                    kept = [(e.key, e.value) for e in t.external_data if e.key != "location"]
                    del t.external_data[:]
                    for k, v in kept:
                        e = t.external_data.add()
                        e.key, e.value = k, v
                elif setup == "dupkey":
                    e = t.external_data.add()
                    e.key, e.value = "location", canary
                else:
                    del t.dims[:]
                    t.dims.extend([2 ** 40])
                write(os.path.join(d, "model.onnx"), m.SerializeToString())
            elif callable(setup):
                setup(d)
            path = os.path.join(d, "model.onnx")
            if setup == "dirlink":
                os.symlink("m", os.path.join(c["dir"], "L"))
                path = os.path.join(c["dir"], "L", "model.onnx")
            self.run_case(c, ["run", path] + x8, pol, "ext")

    def onnx_plain_relu(self):
        from onnx import TensorProto as TP, helper as H
        g = H.make_graph([H.make_node("Relu", ["x"], ["y"])], "g", [H.make_tensor_value_info("x", TP.FLOAT, [8])],
                         [H.make_tensor_value_info("y", TP.FLOAT, [8])])
        m = H.make_model(g, opset_imports=[H.make_opsetid("", 17)])
        m.ir_version = 8
        return m.SerializeToString()

    @staticmethod
    def deep_groups(field, depth):
        return enc_varint(field << 3 | 3) * depth + enc_varint(field << 3 | 4) * depth

    def onnx_loop_model(self, trip):
        from onnx import TensorProto as TP, helper as H, numpy_helper as NH
        body = H.make_graph([H.make_node("Identity", ["ci"], ["co"]), H.make_node("Identity", ["vi"], ["vo"])], "body",
                            [H.make_tensor_value_info("i", TP.INT64, []), H.make_tensor_value_info("ci", TP.BOOL, []),
                             H.make_tensor_value_info("vi", TP.FLOAT, [8])],
                            [H.make_tensor_value_info("co", TP.BOOL, []), H.make_tensor_value_info("vo", TP.FLOAT, [8])])
        g = H.make_graph([H.make_node("Loop", ["m", "c", "x"], ["y"], body=body)], "g",
                         [H.make_tensor_value_info("x", TP.FLOAT, [8])], [H.make_tensor_value_info("y", TP.FLOAT, [8])],
                         [NH.from_array(np.array(trip, np.int64), "m"), NH.from_array(np.array(True), "c")])
        m = H.make_model(g, opset_imports=[H.make_opsetid("", 17)])
        m.ir_version = 8
        return m.SerializeToString()

    def onnx_nested(self, kind, depth):
        """If or Loop nodes nested `depth` deep, built on the wire (python protobuf limits nesting)."""
        from onnx import TensorProto as TP, helper as H
        vi = lambda n, t, s: H.make_tensor_value_info(n, t, s).SerializeToString()  # noqa: E731
        attr = lambda name, g: pb_encode([[1, 2, name], [20, 0, 5], [6, 2, g]])  # noqa: E731  AttributeProto GRAPH
        if kind == "If":
            inner = H.make_graph([H.make_node("Identity", ["x"], ["y0"])], "leaf", [],
                                 [H.make_tensor_value_info("y0", TP.FLOAT, [8])]).SerializeToString()
            def else_branch(d):  # Identity(x) -> y<d>
                return pb_encode([[1, 2, pb_encode([[1, 2, "x"], [2, 2, "y%d" % d], [4, 2, "Identity"]])],
                                  [2, 2, "e%d" % d], [12, 2, vi("y%d" % d, TP.FLOAT, [8])]])
            for d in range(1, depth + 1):
                node = pb_encode([[1, 2, "c"], [2, 2, "y%d" % d], [3, 2, "if%d" % d], [4, 2, "If"],
                                  [5, 2, attr("then_branch", inner)], [5, 2, attr("else_branch", else_branch(d))]])
                inner = pb_encode([[1, 2, node], [2, 2, "g%d" % d], [12, 2, vi("y%d" % d, TP.FLOAT, [8])]])
            top_in = [vi("x", TP.FLOAT, [8]), vi("c", TP.BOOL, [])]
        else:
            # body d: inputs (i_d, c_d, v_d) -> outputs (co_d, vo_d); contains Loop d-1 over v_d
            def body(d, content_nodes):
                return pb_encode([[1, 2, n] for n in content_nodes] + [[2, 2, "b%d" % d],
                                  [11, 2, vi("i%d" % d, TP.INT64, [])], [11, 2, vi("c%d" % d, TP.BOOL, [])],
                                  [11, 2, vi("v%d" % d, TP.FLOAT, [8])],
                                  [12, 2, vi("co%d" % d, TP.BOOL, [])], [12, 2, vi("vo%d" % d, TP.FLOAT, [8])]])
            ident = lambda a, b: pb_encode([[1, 2, a], [2, 2, b], [4, 2, "Identity"]])  # noqa: E731
            inner = body(0, [ident("c0", "co0"), ident("v0", "vo0")])
            for d in range(1, depth + 1):
                loop = pb_encode([[1, 2, "m"], [1, 2, ""], [1, 2, "v%d" % d], [2, 2, "vo%d" % d], [3, 2, "loop%d" % d],
                                  [4, 2, "Loop"], [5, 2, attr("body", inner)]])
                inner = body(d, [ident("c%d" % d, "co%d" % d), loop])
            # the top graph runs Loop over the outermost body
            node = pb_encode([[1, 2, "m"], [1, 2, ""], [1, 2, "x"], [2, 2, "y%d" % (depth + 1)], [3, 2, "top"], [4, 2, "Loop"],
                              [5, 2, attr("body", inner)]])
            inner = pb_encode([[1, 2, node], [2, 2, "g"], [12, 2, vi("y%d" % (depth + 1), TP.FLOAT, [8])]])
            top_in = [vi("x", TP.FLOAT, [8]), vi("m", TP.INT64, [])]
            g = pb_encode([[1, 2, pb_decode(inner)[0][2]], [2, 2, "g"]] + [[11, 2, t] for t in top_in] +
                          [[12, 2, vi("y%d" % (depth + 1), TP.FLOAT, [8])]])
            return pb_encode([[1, 0, 8], [8, 2, pb_encode([[1, 2, ""], [2, 0, 17]])], [7, 2, g]])
        top_node = pb_decode(inner)[0][2]
        g = pb_encode([[1, 2, top_node], [2, 2, "g"]] + [[11, 2, t] for t in top_in] + [[12, 2, vi("y%d" % depth, TP.FLOAT, [8])]])
        return pb_encode([[1, 0, 8], [8, 2, pb_encode([[1, 2, ""], [2, 0, 17]])], [7, 2, g]])

    def onnx_deep_type(self, depth):
        """Graph input x whose TypeProto is sequence(sequence(...(tensor))) `depth` deep, built
        inside out with precomputed lengths (linear time)."""
        from onnx import TensorProto as TP, helper as H
        leaf = H.make_tensor_type_proto(TP.FLOAT, [8]).SerializeToString()
        pre, ln = [], len(leaf)
        for _ in range(depth):
            seq = enc_varint(1 << 3 | 2) + enc_varint(ln)  # Sequence.elem_type
            ln1 = len(seq) + ln
            tp = enc_varint(4 << 3 | 2) + enc_varint(ln1)  # TypeProto.sequence_type
            pre.append(tp + seq)
            ln = ln1 + len(tp)
        t = b"".join(reversed(pre)) + leaf
        vi = pb_field(1, 2, "x") + pb_field(2, 2, t)
        node = pb_encode([[1, 2, "x"], [2, 2, "y"], [4, 2, "Identity"]])
        g = pb_encode([[1, 2, node], [2, 2, "g"], [11, 2, vi], [12, 2, H.make_tensor_value_info("y", TP.FLOAT, [8]).SerializeToString()]])
        return pb_encode([[1, 0, 8], [8, 2, pb_encode([[1, 2, ""], [2, 0, 17]])], [7, 2, g]])

    # -- crafted: SavedModels ----------------------------------------------------------------------
    def sm_case(self, desc, base="sm"):
        c = self.new_case("savedmodel", "craft", desc)
        return c, self.copy_base(base, c)

    def outside(self, c):
        d = os.path.join(self.work, "outside", c["id"])
        os.makedirs(d, exist_ok=True)
        c["extra_tree"] = [d]
        return d

    def crafted_savedmodel(self):
        feats = self.feats()
        tin = ["--input", "x=" + self.p("in", "x8.npy")]
        pb = read(self.p("sm", "saved_model.pb"))
        # truncations
        offs = sorted(set([0, 1, 2, 3, 5, 8, 16, 32, 64, 100, 1000] + [len(pb) * k // 40 for k in range(1, 40)] + [len(pb) - 1, len(pb) - 2]))
        for off in offs:
            c, sm = self.sm_case("saved_model.pb truncated at %d of %d" % (off, len(pb)))
            write(os.path.join(sm, "saved_model.pb"), pb[:off])
            self.run_case(c, ["run", sm] + feats, "savedmodel", "sm", pb=os.path.join(sm, "saved_model.pb"))
        # text format
        txt = read(self.p("pbtxt", "saved_model.pbtxt"))
        known = lambda n: (b'meta_graphs { graph_def { node { name: "n" op: "Const" attr { key: "a" value { ' +  # noqa: E731
                           b'func { name: "f" attr { key: "a" value { ' * n + b'} } } ' * n + b'} } } } }\n')
        pbtxt_cases = [
            ("pbtxt: valid text copy of the model", txt, "expect_same"),
            ("pbtxt: unknown field nested 100000 deep", txt + b"evil { " * 100000 + b"} " * 100000, "must_fail"),
            ("pbtxt: unknown field nested 100000 deep, unterminated", txt + b"evil { " * 100000, "must_fail"),
            ("pbtxt: known fields nested 100000 deep (AttrValue.func)", txt + known(100000), "must_fail"),
            ("pbtxt: known fields nested 60 deep (AttrValue.func, ~190 levels)", txt + known(60), "any"),
            ("pbtxt: known fields nested 66 deep (AttrValue.func, ~208 levels)", txt + known(66), "must_fail"),
            ("pbtxt: angle brackets nested 100000 deep", txt + b"evil < " * 100000 + b"> " * 100000, "must_fail"),
            ("pbtxt: 100000 nested lists 'evil: [[[...'", txt + b"evil: " + b"[" * 100000 + b"]" * 100000, "must_fail"),
            ("pbtxt: 20 MB string literal", txt + b'meta_info_def { meta_graph_version: "' + b"A" * 20000000 + b'" }', "any"),
            ("pbtxt: bad escape and unterminated string", txt + b'meta_info_def { meta_graph_version: "\\x\\777', "must_fail"),
            ("pbtxt: integer overflow in a field", txt.replace(b"saved_model_schema_version: 1", b"saved_model_schema_version: 99999999999999999999999", 1), "any"),
            ("pbtxt: empty", b"", "must_fail"),
            ("pbtxt: binary garbage", bytes(range(256)) * 10, "must_fail"),
        ]
        for desc, body, pol in pbtxt_cases:
            c, sm = self.sm_case(desc, "pbtxt")
            write(os.path.join(sm, "saved_model.pbtxt"), body)
            self.run_case(c, ["run", sm] + feats, pol, "sm")
        # binary deep nesting, built on the wire with precomputed lengths
        for desc, body, pol in [
            ("saved_model.pb: AttrValue.func nested 100000 deep", pb + self.sm_deep_func(100000), "must_fail"),
            ("saved_model.pb: AttrValue.func nested 20 deep (~80 levels)", pb + self.sm_deep_func(20), "any"),
            ("saved_model.pb: unknown groups nested 100000 deep", pb + self.deep_groups(99, 100000), "any"),
            ("saved_model.pb: unknown groups nested 100000 deep, unterminated", pb + enc_varint(99 << 3 | 3) * 100000, "must_fail"),
            ("saved_model.pb: unknown length-delimited field of 2**62 bytes", pb + enc_varint(99 << 3 | 2) + enc_varint(2 ** 62), "must_fail"),
            ("saved_model.pb: meta_graphs length 2**31", pb + enc_varint(2 << 3 | 2) + enc_varint(2 ** 31), "must_fail"),
            ("saved_model.pb: 11-byte varint", pb + enc_varint(1 << 3) + b"\xff" * 10 + b"\x01", "must_fail"),
            ("saved_model.pb: empty", b"", "must_fail"),
        ]:
            c, sm = self.sm_case(desc)
            write(os.path.join(sm, "saved_model.pb"), body)
            self.run_case(c, ["run", sm] + feats, pol, "sm", pb=os.path.join(sm, "saved_model.pb"))
        self.crafted_bundle()
        self.crafted_sm_files()

    def sm_deep_func(self, n):
        """A SavedModel field: meta_graphs{graph_def{node{name op attr{key value: AttrValue{func:
        NameAttrList{name attr{key value: AttrValue{func ...}}}}}}}} nested n deep (linear time)."""
        leaf = pb_field(1, 2, "f")  # innermost NameAttrList{name}
        parts, ln = [], len(leaf)
        # each level wraps a NameAttrList (ln bytes) into: AttrValue{func} -> entry{key, value} -> NameAttrList{name, attr}
        for _ in range(n):
            av = enc_varint(10 << 3 | 2) + enc_varint(ln)
            l_av = len(av) + ln
            ek = pb_field(1, 2, "a") + enc_varint(2 << 3 | 2) + enc_varint(l_av)
            l_entry = len(ek) + l_av
            na = pb_field(1, 2, "f") + enc_varint(2 << 3 | 2) + enc_varint(l_entry)
            parts.append(na + ek + av)
            ln = len(na) + l_entry
        nal = b"".join(reversed(parts)) + leaf
        av = pb_field(10, 2, nal)
        node = pb_field(1, 2, "n") + pb_field(2, 2, "Const") + pb_field(5, 2, pb_field(1, 2, "a") + pb_field(2, 2, av))
        return pb_field(2, 2, pb_field(2, 2, pb_field(1, 2, node)))

    def bundle_entries(self, base):
        return table_read(read(self.p(base, "variables", "variables.index")))

    def crafted_bundle(self):
        feats = self.feats()
        tin = ["--input", "x=" + self.p("in", "x8.npy")]
        ents = self.bundle_entries("tiny")
        vkey = None
        for k, v in ents:
            if k == b"":
                continue
            f = pb_decode(v)
            dims = [pb_decode(d[2])[0][2] for fld in f if fld[0] == 2 for d in pb_decode(fld[2]) if d[0] == 2]
            if dims == [8]:
                vkey, ventry = k, f
        assert vkey is not None, "the tiny model's variable was not found in its index"
        data = read(self.p("tiny", "variables", "variables.data-00000-of-00001"))
        get = lambda f, n, d=0: next((x[2] for x in f if x[0] == n), d)  # noqa: E731
        voff, vsize = get(ventry, 4), get(ventry, 5)

        def with_entry(new_fields, key=vkey, extra=None, header=None):
            out = []
            for k, v in ents:
                if k == key:
                    v = pb_encode(new_fields)
                if k == b"" and header is not None:
                    v = pb_encode(header)
                out.append((k, v))
            if extra:
                out = sorted(out + extra)
            return table_write(out)

        E = lambda **kw: self._edit(ventry, kw)  # noqa: E731
        hdr = pb_decode(dict(ents)[b""])
        specs = [
            ("index rewritten unchanged (sanity check of this script's table writer)", with_entry(ventry), "expect_same"),
            ("entry offset = shard size - 2", with_entry(E(offset=len(data) - 2)), "must_fail"),
            ("entry offset 2**63-1", with_entry(E(offset=2 ** 63 - 1)), "must_fail"),
            ("entry offset -8 (2**64-8 as varint)", with_entry(E(offset=-8)), "must_fail"),
            ("entry offset 2**62 size 2**62", with_entry(E(offset=2 ** 62, size=2 ** 62)), "must_fail"),
            ("entry offset 2**63-16 size 32 (sum overflows)", with_entry(E(offset=2 ** 63 - 16)), "must_fail"),
            ("entry offset 2**64-16 size 32 (sum wraps)", with_entry(E(offset=-16)), "must_fail"),
            ("entry size 2**63-1", with_entry(E(size=2 ** 63 - 1)), "must_fail"),
            ("entry size -1", with_entry(E(size=-1)), "must_fail"),
            ("entry size 0", with_entry(E(size=0)), "must_fail"),
            ("entry size 31", with_entry(E(size=31)), "must_fail"),
            ("entry size 64 (covers the next bytes, crc of 32)", with_entry(E(size=64)), "must_fail"),
            ("entry shard_id 7", with_entry(E(shard_id=7)), "must_fail"),
            ("entry shard_id -1", with_entry(E(shard_id=-1)), "must_fail"),
            ("entry crc wrong", with_entry(E(crc32c=0x12345678)), "must_fail"),
            ("entry dtype 0", with_entry(E(dtype=0)), "must_fail"),
            ("entry dtype 7 (string)", with_entry(E(dtype=7)), "must_fail"),
            ("entry dtype 2 (double, 4 elements of 8 bytes)", with_entry(E(dtype=2)), "must_fail"),
            ("entry dtype 9999", with_entry(E(dtype=9999)), "must_fail"),
            ("entry shape [2**40]", with_entry(E(shape=[2 ** 40])), "must_fail"),
            ("entry shape [2**32, 2**32]", with_entry(E(shape=[2 ** 32, 2 ** 32])), "must_fail"),
            ("entry shape [-5]", with_entry(E(shape=[-5])), "must_fail"),
            ("entry shape [2, 4] (same bytes, wrong shape)", with_entry(E(shape=[2, 4])), "must_fail"),
            ("entry shape 100 dims of 1 plus 8", with_entry(E(shape=[1] * 100 + [8])), "must_fail"),
            ("entry with slices (partitioned variable)", with_entry(ventry + [[7, 2, pb_field(1, 2, pb_field(1, 0, 0) + pb_field(2, 0, 8))]]), "must_fail"),
            ("entry value is garbage bytes", with_entry([[99, 2, b"\xff" * 20]]), "must_fail"),
            ("entry duplicated key (second copy points at zeros)", table_write(sorted(ents + [(vkey, pb_encode(E(offset=0)))])), "must_fail"),
            ("index keys in reverse order", table_write(list(reversed(ents))), "any"),
            ("index without the variable", table_write([e for e in ents if e[0] != vkey]), "must_fail"),
            ("index without the header entry", table_write([e for e in ents if e[0] != b""]), "must_fail"),
            ("index empty table", table_write([]), "must_fail"),
            ("header num_shards 0", with_entry(ventry, header=pb_set(hdr, 1, 0, 0)), "must_fail"),
            ("header num_shards 2**31", with_entry(ventry, header=pb_set(hdr, 1, 0, 2 ** 31)), "must_fail"),
            ("header num_shards -1", with_entry(ventry, header=pb_set(hdr, 1, 0, -1)), "must_fail"),
            ("header endianness BIG", with_entry(ventry, header=pb_set(hdr, 2, 0, 1)), "must_fail"),
            ("header version min_consumer 9999", with_entry(ventry, header=pb_set(hdr, 3, 2, pb_field(1, 0, 1) + pb_field(2, 0, 9999))), "invalid"),
            ("header garbage", with_entry(ventry, header=[[99, 2, b"\xff" * 20]]), "must_fail"),
        ]
        for desc, idx, pol in specs:
            c, sm = self.sm_case(desc, "tiny")
            write(os.path.join(sm, "variables", "variables.index"), idx)
            self.run_case(c, ["run", sm] + tin, pol, "tiny")
        # offsets inside the shard with a matching crc (consistent files: any result is legitimate)
        other = [(k, pb_decode(v)) for k, v in ents if k not in (b"", vkey)]
        c, sm = self.sm_case("entry points at another tensor's bytes, crc recomputed", "tiny")
        region = data[0:32] if len(data) >= 32 else data
        write(os.path.join(sm, "variables", "variables.index"), with_entry(E(offset=0, crc32c=crc_mask(crc32c(region)))))
        self.run_case(c, ["run", sm] + tin, "any", "tiny")
        # canary: the shard (or the variables dir) a symlink to a file outside holding canary bytes
        canary32 = (CANARY * 4)[:vsize] if vsize <= 32 else (CANARY * 64)[:vsize]
        outside_data = data[:voff] + canary32 + data[voff + vsize:]
        canary_index = with_entry(E(crc32c=crc_mask(crc32c(canary32))))
        for desc in ("data shard is a symlink to a file outside the model (canary, crc matching)",
                     "variables/ is a symlink to a directory outside the model (canary, crc matching)",
                     "variables.index is a symlink outside, shard inside holds canary",
                     "data shard is a hard link to a file outside (canary; not detectable, informational)"):
            c, sm = self.sm_case(desc, "tiny")
            out = self.outside(c)
            vdir = os.path.join(sm, "variables")
            shard = os.path.join(vdir, "variables.data-00000-of-00001")
            write(os.path.join(out, "variables.data-00000-of-00001"), outside_data)
            write(os.path.join(out, "variables.index"), canary_index)
            if desc.startswith("data shard is a symlink"):
                os.unlink(shard)
                os.symlink(os.path.join(out, "variables.data-00000-of-00001"), shard)
                write(os.path.join(vdir, "variables.index"), canary_index)
                pol = "any"
            elif desc.startswith("variables/"):
                rm_tree(vdir)
                os.symlink(out, vdir)
                pol = "any"
            elif desc.startswith("variables.index"):
                os.unlink(os.path.join(vdir, "variables.index"))
                os.symlink(os.path.join(out, "variables.index"), os.path.join(vdir, "variables.index"))
                write(shard, outside_data)
                pol = "any_nocanary"
            else:
                os.unlink(shard)
                os.link(os.path.join(out, "variables.data-00000-of-00001"), shard)
                write(os.path.join(vdir, "variables.index"), canary_index)
                pol = "any_nocanary"
            self.run_case(c, ["run", sm] + tin, pol, "tiny")

    @staticmethod
    def _edit(entry, kw):
        f = [list(x) for x in entry]
        nums = {"dtype": (1, 0), "shard_id": (3, 0), "offset": (4, 0), "size": (5, 0), "crc32c": (6, 5)}
        for k, v in kw.items():
            if k == "shape":
                f = pb_set(f, 2, 2, b"".join(pb_field(2, 2, pb_field(1, 0, d)) for d in v))
            else:
                fn, wt = nums[k]
                f = pb_set(f, fn, wt, v)
        return f

    def crafted_sm_files(self):
        feats = self.feats()
        V = os.path.join("variables", "variables.data-00000-of-00001")
        I = os.path.join("variables", "variables.index")  # noqa: E741

        def fifo(p):
            os.unlink(p)
            os.mkfifo(p)

        specs = [
            ("data shard missing", lambda sm, c: os.unlink(os.path.join(sm, V)), "must_fail"),
            ("data shard is a FIFO", lambda sm, c: fifo(os.path.join(sm, V)), "must_fail"),
            ("data shard is a directory", lambda sm, c: (os.unlink(os.path.join(sm, V)), os.makedirs(os.path.join(sm, V))), "must_fail"),
            ("data shard symlink -> /dev/zero", lambda sm, c: (os.unlink(os.path.join(sm, V)), os.symlink("/dev/zero", os.path.join(sm, V))), "must_fail"),
            ("data shard symlink -> /dev/urandom", lambda sm, c: (os.unlink(os.path.join(sm, V)), os.symlink("/dev/urandom", os.path.join(sm, V))), "must_fail"),
            ("data shard symlink loop", lambda sm, c: (os.unlink(os.path.join(sm, V)), os.symlink(os.path.basename(V), os.path.join(sm, V))), "must_fail"),
            ("data shard extended by 1 GiB (sparse)", lambda sm, c: os.truncate(os.path.join(sm, V), 2 ** 30), "any"),
            ("variables.index is a FIFO", lambda sm, c: fifo(os.path.join(sm, I)), "must_fail"),
            ("variables.index is a directory", lambda sm, c: (os.unlink(os.path.join(sm, I)), os.makedirs(os.path.join(sm, I))), "must_fail"),
            ("variables.index symlink -> /dev/zero", lambda sm, c: (os.unlink(os.path.join(sm, I)), os.symlink("/dev/zero", os.path.join(sm, I))), "must_fail"),
            ("variables.index symlink loop", lambda sm, c: (os.unlink(os.path.join(sm, I)), os.symlink("variables.index", os.path.join(sm, I))), "must_fail"),
            ("variables.index sparse 4 GiB", lambda sm, c: os.truncate(os.path.join(sm, I), 2 ** 32), "must_fail"),
            ("variables/ missing", lambda sm, c: rm_tree(os.path.join(sm, "variables")), "must_fail"),
            ("variables/ symlink to itself (loop)", lambda sm, c: (rm_tree(os.path.join(sm, "variables")), os.symlink("variables", os.path.join(sm, "variables"))), "must_fail"),
            ("variables/ symlink to '.' (the model dir)", lambda sm, c: (rm_tree(os.path.join(sm, "variables")), os.symlink(".", os.path.join(sm, "variables"))), "must_fail"),
            ("saved_model.pb is a FIFO", lambda sm, c: fifo(os.path.join(sm, "saved_model.pb")), "must_fail"),
            ("saved_model.pb is a directory", lambda sm, c: (os.unlink(os.path.join(sm, "saved_model.pb")), os.makedirs(os.path.join(sm, "saved_model.pb"))), "must_fail"),
            ("saved_model.pb symlink -> /dev/zero", lambda sm, c: (os.unlink(os.path.join(sm, "saved_model.pb")), os.symlink("/dev/zero", os.path.join(sm, "saved_model.pb"))), "must_fail"),
            ("saved_model.pb symlink -> /dev/urandom", lambda sm, c: (os.unlink(os.path.join(sm, "saved_model.pb")), os.symlink("/dev/urandom", os.path.join(sm, "saved_model.pb"))), "must_fail"),
            ("saved_model.pb symlink loop", lambda sm, c: (os.unlink(os.path.join(sm, "saved_model.pb")), os.symlink("saved_model.pb", os.path.join(sm, "saved_model.pb"))), "must_fail"),
            ("saved_model.pb sparse 3 GiB of zeros", lambda sm, c: os.truncate(os.path.join(sm, "saved_model.pb"), 3 * 2 ** 30), "must_fail"),
            ("saved_model.pb missing, saved_model.pbtxt a FIFO", lambda sm, c: (os.unlink(os.path.join(sm, "saved_model.pb")), os.mkfifo(os.path.join(sm, "saved_model.pbtxt"))), "must_fail"),
            ("empty directory", lambda sm, c: [rm_tree(os.path.join(sm, n)) for n in os.listdir(sm)], "must_fail"),
        ]
        for desc, mk, pol in specs:
            c, sm = self.sm_case(desc)
            mk(sm, c)
            self.run_case(c, ["run", sm] + feats, pol, "sm")
        # the model path itself
        for desc in ("model path is a symlink to itself (loop)", "model path is a FIFO", "model path is /dev/zero",
                     "model path symlink -> /dev/urandom", "model path two symlinks pointing at each other",
                     "model path is a socket"):
            c = self.new_case("savedmodel", "craft", desc)
            mp = os.path.join(c["dir"], "model")
            if "itself" in desc:
                os.symlink("model", mp)
            elif "FIFO" in desc:
                os.mkfifo(mp)
            elif "/dev/zero" in desc:
                mp = "/dev/zero"
            elif "urandom" in desc:
                os.symlink("/dev/urandom", mp)
            elif "socket" in desc:
                import socket
                sk = socket.socket(socket.AF_UNIX)
                sk.bind(mp)
                c["_sock"] = sk
            else:
                os.symlink("other", mp)
                os.symlink("model", os.path.join(c["dir"], "other"))
            sk = c.pop("_sock", None)
            self.run_case(c, ["run", mp] + feats, "must_fail", "sm")
            if sk:
                sk.close()

    # -- crafted: converted models, engine files, .kiln files as special files -------------------
    def crafted_converted(self):
        feats = self.feats()
        eng = self.engine_rel
        crc = os.path.join("assets", "kiln", "saved_model.pb.crc32c")
        cj = os.path.join("assets", "kiln", "conversion.json")

        def repl(p, how, c):
            if os.path.lexists(p):
                rm_tree(p)
            if how == "fifo":
                os.mkfifo(p)
            elif how == "dir":
                os.makedirs(p)
            elif how == "zero":
                os.symlink("/dev/zero", p)
            elif how == "loop":
                os.symlink(os.path.basename(p), p)
            elif how == "outside":
                out = self.outside(c)
                shutil.copy2(self.p("conv", os.path.relpath(p, c["dir"] + "/m")), os.path.join(out, "f"))
                os.symlink(os.path.join(out, "f"), p)
            elif how == "sparse":
                write(p, b"")
                os.truncate(p, 3 * 2 ** 30)
        specs = [(what, how) for what in (eng, "saved_model.pb", crc, cj, cj + ".crc32c")
                 for how in ("fifo", "dir", "zero", "loop", "outside", "sparse", "missing")]
        for what, how in specs:
            c = self.new_case("converted", "craft", "%s: %s" % (what, how))
            conv = self.copy_base("conv", c)
            if how == "missing":
                rm_tree(os.path.join(conv, what))
            else:
                repl(os.path.join(conv, what), how, c)
            # a missing/unusable engine may legitimately be rebuilt at run time: outputs must then be right
            pol = "expect_same" if (what == eng or how == "outside") else "must_fail"
            self.run_case(c, ["run", conv] + feats, pol, "conv")
        for how in ("fifo", "dir", "zero", "loop", "sparse"):
            c = self.new_case("converted", "craft", "m.kiln: %s" % how)
            path = os.path.join(c["dir"], "m.kiln")
            write(path, b"")
            repl(path, how, c)
            self.run_case(c, ["run", path] + feats, "must_fail", "kiln")

    # -- crafted: convert / build onto the input -------------------------------------------------
    def crafted_convert(self):
        specs = [
            ("convert X X", lambda x, d: ["convert", x, x]),
            ("convert X X/sub", lambda x, d: ["convert", x, os.path.join(x, "sub")]),
            ("convert X X/variables", lambda x, d: ["convert", x, os.path.join(x, "variables")]),
            ("convert X X/assets", lambda x, d: ["convert", x, os.path.join(x, "assets")]),
            ("convert X X/saved_model.pb", lambda x, d: ["convert", x, os.path.join(x, "saved_model.pb")]),
            ("convert X parent-of-X", lambda x, d: ["convert", x, d]),
            ("convert X X/.", lambda x, d: ["convert", x, x + "/."]),
            ("convert X X/sub/..", lambda x, d: ["convert", x, x + "/variables/.."]),
            ("convert X L (L symlink to X)", lambda x, d: (os.symlink(x, os.path.join(d, "L")), ["convert", x, os.path.join(d, "L")])[1]),
            ("convert X L/sub (L symlink to X)", lambda x, d: (os.symlink(x, os.path.join(d, "L")), ["convert", x, os.path.join(d, "L", "sub")])[1]),
            ("convert L X (L symlink to X)", lambda x, d: (os.symlink(x, os.path.join(d, "L")), ["convert", os.path.join(d, "L"), x])[1]),
            ("build X -o X/m.kiln", lambda x, d: ["build", x, "-o", os.path.join(x, "m.kiln"), "--shapes", "features:2x32"]),
            ("build X -o X/saved_model.pb", lambda x, d: ["build", x, "-o", os.path.join(x, "saved_model.pb"), "--shapes", "features:2x32"]),
            ("build X -o X/variables/variables.index", lambda x, d: ["build", x, "-o", os.path.join(x, "variables", "variables.index"), "--shapes", "features:2x32"]),
            ("build X -o L (L symlink to X/saved_model.pb)", lambda x, d: (os.symlink(os.path.join(x, "saved_model.pb"), os.path.join(d, "L")), ["build", x, "-o", os.path.join(d, "L"), "--shapes", "features:2x32"])[1]),
            ("build X -o hardlink-to-X/saved_model.pb", lambda x, d: (os.link(os.path.join(x, "saved_model.pb"), os.path.join(d, "H")), ["build", x, "-o", os.path.join(d, "H"), "--shapes", "features:2x32"])[1]),
        ]
        for desc, mk in specs:
            c = self.new_case("convert", "craft", desc)
            x = self.copy_base("sm", c, "X")
            argv = mk(x, c["dir"])
            # only X is input: the output path (even a hard link to a file of X) may be replaced
            self.run_case(c, argv, "any" if "hardlink" in desc else "must_fail", None, tree=[x])
        # converted model as input, onto itself
        for desc, mk in [("convert C C (C converted)", lambda x, d: ["convert", x, x]),
                         ("convert C C/assets/kiln", lambda x, d: ["convert", x, os.path.join(x, "assets", "kiln")]),
                         ("convert C C/assets/kiln/engines", lambda x, d: ["convert", x, os.path.join(x, "assets", "kiln", "engines")])]:
            c = self.new_case("convert", "craft", desc)
            x = self.copy_base("conv", c, "C")
            self.run_case(c, mk(x, c["dir"]), "must_fail", None)

    # -- random byte-level mutations, --count per format -----------------------------------------
    def mutation_cases(self, count):
        rng = self.rng
        gens = [
            ("npy", self.mut_npy), ("onnx", self.mut_onnx), ("saved_model_pb", self.mut_saved_model_pb),
            ("variables_index", self.mut_index), ("variables_data", self.mut_data), ("kiln_file", self.mut_kiln),
            ("engine_file", self.mut_engine), ("converted_pb", self.mut_converted_pb),
        ]
        per = {name: (count if name != "converted_pb" else max(1, count // 3)) for name, _ in gens}
        plan = [name for name, _ in gens for _ in range(per[name])]
        rng.shuffle(plan)  # interleave formats so that a time limit cuts all of them evenly
        g = dict(gens)
        deadline = self.deadline
        for name in plan:
            if time.time() > deadline:
                print("time budget reached; stopping mutations", flush=True)
                break
            g[name](rng)

    def mut_npy(self, rng):
        data = read(self.p("in", "features.npy"))
        m, d = mutate(data, rng, hot=(0, 128))
        c = self.new_case("npy", "mut", d)
        path = os.path.join(c["dir"], "features.npy")
        write(path, m)
        self.run_case(c, ["run", self.p("sm"), "--input", "features=" + path], "npy", "sm", npy=path)

    def mut_onnx(self, rng):
        m, d = mutate(read(self.p("onnx", "model.onnx")), rng)
        c = self.new_case("onnx", "mut", d)
        path = os.path.join(c["dir"], "model.onnx")
        write(path, m)
        self.run_case(c, ["run", path] + self.feats(), "onnx", "onnx", onnx=path)

    def mut_saved_model_pb(self, rng):
        m, d = mutate(read(self.p("sm", "saved_model.pb")), rng)
        c = self.new_case("saved_model_pb", "mut", d)
        sm = self.copy_base("sm", c)
        write(os.path.join(sm, "saved_model.pb"), m)
        self.run_case(c, ["run", sm] + self.feats(), "savedmodel", "sm", pb=os.path.join(sm, "saved_model.pb"))

    def mut_index(self, rng):
        m, d = mutate(read(self.p("sm", "variables", "variables.index")), rng)
        c = self.new_case("variables_index", "mut", d)
        sm = self.copy_base("sm", c)
        write(os.path.join(sm, "variables", "variables.index"), m)
        self.run_case(c, ["run", sm] + self.feats(), "checksummed", "sm")

    def mut_data(self, rng):
        m, d = mutate(read(self.p("sm", "variables", "variables.data-00000-of-00001")), rng)
        c = self.new_case("variables_data", "mut", d)
        sm = self.copy_base("sm", c)
        write(os.path.join(sm, "variables", "variables.data-00000-of-00001"), m)
        self.run_case(c, ["run", sm] + self.feats(), "checksummed", "sm")

    def mut_kiln(self, rng):
        x = rng.random()
        if x < 0.1:
            m, d = mutate(read(self.p("sample_v1.kiln")), rng, hot=(0, 64))
            d, pol = "sample_v1.kiln (format 1): " + d, "must_fail"
        elif x < 0.55:
            m, d = mutate(read(self.p("m.kiln")), rng, hot=(0, 400))
            pol = "checksummed"
        else:
            m, d = mutate_resealed(read(self.p("m.kiln")), rng)
            pol = "resealed" if d.startswith("resealed") else "checksummed"
        c = self.new_case("kiln_file", "mut", d)
        path = os.path.join(c["dir"], "m.kiln")
        write(path, m)
        self.run_case(c, ["run", path] + self.feats(), pol, "kiln")

    def mut_engine(self, rng):
        data = read(self.p("conv", self.engine_rel))
        if rng.random() < 0.5:
            m, d = mutate(data, rng, hot=(0, 400))
            pol = "checksummed"
        else:
            m, d = mutate_resealed(data, rng)
            pol = "resealed" if d.startswith("resealed") else "checksummed"
        c = self.new_case("engine_file", "mut", d)
        conv = self.copy_base("conv", c)
        write(os.path.join(conv, self.engine_rel), m)
        self.run_case(c, ["run", conv] + self.feats(), pol, "conv")

    def mut_converted_pb(self, rng):
        which = rng.choice(["saved_model.pb", "assets/kiln/graph.pb", "assets/kiln/conversion.json"])
        m, d = mutate(read(self.p("conv", which)), rng)
        c = self.new_case("converted_pb", "mut", which + ": " + d)
        conv = self.copy_base("conv", c)
        write(os.path.join(conv, which), m)
        self.run_case(c, ["run", conv] + self.feats(), "checksummed", "conv")

    # -- report ------------------------------------------------------------------------------------
    def summarize(self, started, cmdline):
        counts = collections.defaultdict(collections.Counter)
        for r in self.results:
            counts["%s/%s" % (r["fmt"], r["kind"])][r["outcome"]] += 1
        outcomes = ["OK", "accepted-changed", "CLEAN-ERROR", "SUSPECT", "BAD"]
        lines = ["command: `%s`" % cmdline, "kiln: snapshot of %s, sha256 %s" % (self.runner.kiln_src, self.runner.kiln_sha256),
                 "started: %s, finished: %s (UTC)" % (
            started, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())), "",
            "| format/kind | " + " | ".join(outcomes) + " | total |", "|---" * (len(outcomes) + 2) + "|"]
        tot = collections.Counter()
        for k in sorted(counts):
            tot.update(counts[k])
            lines.append("| %s | %s | %d |" % (k, " | ".join(str(counts[k][o]) for o in outcomes),
                                               sum(counts[k].values())))
        lines.append("| **all** | %s | %d |" % (" | ".join(str(tot[o]) for o in outcomes), sum(tot.values())))
        for o in ("BAD", "SUSPECT"):
            lines += ["", "## %s" % o, ""]
            for r in self.results:
                if r["outcome"] == o:
                    lines += ["- `%s` (%s): %s — %s" % (r["id"], r["desc"][:200], r["why"], r.get("outputs", "")[:200]),
                              "  - reproducer: `%s`" % r.get("repro"),
                              "  - command: `kiln %s`" % " ".join(r.get("repro_argv", r["argv"])),
                              "  - exit %s, timeout %s; stderr tail: `%s`" % (
                                  r["rc"], r["timeout"], r["stderr_tail"].strip()[-400:].replace("\n", " | "))]
                    if "recheck_with_limits" in r:
                        rc = r["recheck_with_limits"]
                        lines.append("  - rerun with KILN_MAX_TENSOR_BYTES/KILN_MAX_MODEL_BYTES set: exit %s, timeout %s: `%s`"
                                     % (rc["rc"], rc["timeout"], rc["stderr_tail"].strip()[-300:].replace("\n", " | ")))
        text = "\n".join(lines) + "\n"
        write(os.path.join(self.work, "report.md"), text.encode())
        with open(os.path.join(self.work, "summary.json"), "w") as f:
            json.dump({k: dict(v) for k, v in counts.items()}, f, indent=1)
        return text


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--onnx-oracle":
        return onnx_oracle_main(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "--make-tf-models":
        return make_tf_models_main(*sys.argv[2:5])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "tools", "kiln"))
    ap.add_argument("--work", default="/tmp/hostile_work")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300, help="random mutations per format")
    ap.add_argument("--timeout", type=float, default=30, help="wall-clock seconds per kiln run")
    ap.add_argument("--mem-mb", type=int, default=4096, help="RLIMIT_AS of each kiln run")
    ap.add_argument("--repro", default="/tmp/hostile_repro")
    ap.add_argument("--budget-min", type=float, default=1e9, help="stop starting new mutation cases after this")
    ap.add_argument("--no-crafted", action="store_true")
    ap.add_argument("--no-mutations", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated crafted groups (npy,onnx,savedmodel,convert)")
    ap.add_argument("--keep", action="store_true", help="keep every case directory")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cmdline = " ".join([os.path.basename(sys.executable)] + sys.argv)
    camp = Campaign(args)
    os.makedirs(camp.work, exist_ok=True)
    if os.path.exists(os.path.join(camp.work, "results.jsonl")):
        os.unlink(os.path.join(camp.work, "results.jsonl"))
    camp.setup()
    camp.deadline = time.time() + args.budget_min * 60
    if not args.no_crafted:
        camp.crafted_cases([g for g in args.only.split(",") if g])
    if not args.no_mutations:
        camp.mutation_cases(args.count)
    print(camp.summarize(started, cmdline))


if __name__ == "__main__":
    sys.exit(main())
