"""CLI error handling: bad inputs and damaged SavedModels.

Every case copies the small zoo model mlp_keras3 into a temp dir, damages the
copy (or passes a bad argument) and checks that `kiln run`
  * exits non-zero, without crashing (no signal: exit code not negative and not
    128+SIGILL/SIGABRT/SIGBUS/SIGFPE/SIGSEGV),
  * says on stderr what is wrong, naming the thing (input name, file name, ...).
Messages are matched on case-insensitive substrings, never on full text.

CLI flags (as declared in tools/kiln.cc; change TAG_FLAG / SIGNATURE_FLAG if they change):
  kiln run DIR [--tag TAG] [--signature-key KEY] --input NAME=FILE.npy ... --output-dir OUT
"""

import os
import shutil
import struct

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from reference import load_meta, make_inputs

pytestmark = pytest.mark.zoo_models("mlp_keras3")

MODEL = "mlp_keras3"
TAG_FLAG = "--tag"
SIGNATURE_FLAG = "--signature-key"
DATA_FILE = "variables.data-00000-of-00001"
CRASH_CODES = {128 + 4, 128 + 6, 128 + 7, 128 + 8, 128 + 11}  # ILL ABRT BUS FPE SEGV


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

@pytest.fixture
def meta(zoo_dir):
    return load_meta(zoo_dir, MODEL)


@pytest.fixture
def model_copy(zoo_dir, tmp_path):
    """A private copy of the good model, free to damage."""
    dst = tmp_path / "model"
    shutil.copytree(zoo_dir / MODEL, dst)
    return dst


@pytest.fixture
def input_name(meta):
    (name,) = meta["inputs"]  # mlp_keras3 has a single input: [None, 32] float32
    assert meta["inputs"][name]["dtype"] == "float32"
    assert meta["inputs"][name]["shape"] == [None, 32]
    return name


def good_inputs(meta):
    return make_inputs(meta, np.random.default_rng(0))


def run(kiln_bin, model_dir, inputs, tmp_path, extra=()):
    args = (["run", model_dir] + write_inputs(inputs, tmp_path / "in")
            + ["--output-dir", tmp_path / "out"] + list(extra))
    return run_kiln(kiln_bin, args, timeout=120)


def assert_clean_failure(proc, *required):
    """Non-zero exit, no crash, stderr contains every item of `required`
    (case-insensitive); an item may be a tuple of acceptable alternatives."""
    err = proc.stderr
    info = "exit code %d\n--- stderr:\n%s\n--- stdout:\n%s" % (
        proc.returncode, err[-4000:], proc.stdout[-2000:])
    assert proc.returncode != 0, "kiln should have failed but exited 0\n" + info
    assert proc.returncode > 0, "kiln was killed by signal %d\n%s" % (-proc.returncode, info)
    assert proc.returncode not in CRASH_CODES, "kiln crashed\n" + info
    assert err.strip(), "kiln failed without an error message on stderr\n" + info
    low = err.lower()
    for item in required:
        alts = item if isinstance(item, tuple) else (item,)
        assert any(a.lower() in low for a in alts), (
            "stderr should mention %s\n%s" % (" or ".join(repr(a) for a in alts), info))


def bundle_entries(index_path):
    """{key: BundleEntryProto} from a TensorBundle index (LevelDB-style table,
    uncompressed blocks; see /work/shared/docs/savedmodel-format.md section 8)."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    data = index_path.read_bytes()

    def varint(buf, pos):
        shift = result = 0
        while True:
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result, pos

    def block(off, size):
        assert data[off + size] == 0, "compressed block"
        blk = data[off:off + size]
        (num_restarts,) = struct.unpack("<I", blk[-4:])
        end = size - 4 - 4 * num_restarts
        pos, key = 0, b""
        while pos < end:
            shared, pos = varint(blk, pos)
            non_shared, pos = varint(blk, pos)
            vlen, pos = varint(blk, pos)
            key = key[:shared] + blk[pos:pos + non_shared]
            pos += non_shared
            yield key, blk[pos:pos + vlen]
            pos += vlen

    footer = data[-48:]
    assert struct.unpack("<Q", footer[40:48])[0] == 0xDB4775248B80FB57, "bad table magic"
    _, p = varint(footer, 0)
    _, p = varint(footer, p)
    idx_off, p = varint(footer, p)
    idx_size, p = varint(footer, p)
    entries = {}
    for _, handle in block(idx_off, idx_size):
        off, q = varint(handle, 0)
        size, q = varint(handle, q)
        for key, val in block(off, size):
            if key:
                e = tensor_bundle_pb2.BundleEntryProto()
                e.ParseFromString(val)
                entries[key.decode()] = e
    return entries


def variable_entries(model_dir):
    """Bundle entries holding variable values (everything but the object graph).

    Keras 3 export stores every variable twice (`_all_variables/N/...` and
    `variables/N/...`, the latter is what the object graph wires to the
    signature), so damage is applied to every variable entry: whichever copy
    Kiln reads must be hit.
    """
    entries = bundle_entries(model_dir / "variables" / "variables.index")
    out = [e for k, e in entries.items() if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and e.size > 0]
    assert out and all(e.shard_id == 0 for e in out)
    return entries, out


# ---------------------------------------------------------------------------
# control: the undamaged copy must run, so failures below come from the damage
# ---------------------------------------------------------------------------

def test_good_copy_runs(kiln_bin, meta, model_copy, tmp_path):
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path)
    assert proc.returncode == 0, "undamaged copy failed:\n" + proc.stderr[-4000:]


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------

def test_wrong_input_name(kiln_bin, meta, model_copy, input_name, tmp_path):
    inputs = {"no_such_input": good_inputs(meta)[input_name]}
    proc = run(kiln_bin, model_copy, inputs, tmp_path)
    assert_clean_failure(proc, "no_such_input", input_name)


def test_wrong_dtype(kiln_bin, meta, model_copy, input_name, tmp_path):
    inputs = {input_name: np.ones((2, 32), np.int32)}
    proc = run(kiln_bin, model_copy, inputs, tmp_path)
    assert_clean_failure(proc, input_name, ("float32", "dt_float", "float"), "int32")


@pytest.mark.parametrize("shape", [(2, 32, 1), (32,)], ids=["rank3", "rank1"])
def test_wrong_rank(kiln_bin, meta, model_copy, input_name, tmp_path, shape):
    inputs = {input_name: np.zeros(shape, np.float32)}
    proc = run(kiln_bin, model_copy, inputs, tmp_path)
    assert_clean_failure(proc, input_name, ("rank", "dimension", "dims", "shape"))


def test_wrong_static_dim(kiln_bin, meta, model_copy, input_name, tmp_path):
    inputs = {input_name: np.zeros((2, 31), np.float32)}
    proc = run(kiln_bin, model_copy, inputs, tmp_path)
    assert_clean_failure(proc, input_name, "32", "31")


def test_unknown_tag(kiln_bin, meta, model_copy, tmp_path):
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path,
               extra=[TAG_FLAG, "no_such_tag"])
    assert_clean_failure(proc, "no_such_tag", "serve")


def test_unknown_signature_key(kiln_bin, meta, model_copy, tmp_path):
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path,
               extra=[SIGNATURE_FLAG, "no_such_signature"])
    assert_clean_failure(proc, "no_such_signature", "serving_default")


# ---------------------------------------------------------------------------
# damaged SavedModels
# ---------------------------------------------------------------------------

def test_missing_saved_model_pb(kiln_bin, meta, model_copy, tmp_path):
    (model_copy / "saved_model.pb").unlink()
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path)
    assert_clean_failure(proc, "saved_model.pb")


def test_missing_variables_index(kiln_bin, meta, model_copy, tmp_path):
    (model_copy / "variables" / "variables.index").unlink()
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path)
    assert_clean_failure(proc, "variables.index")


def test_truncated_data_file(kiln_bin, meta, model_copy, tmp_path):
    data = model_copy / "variables" / DATA_FILE
    entries, var_entries = variable_entries(model_copy)
    # Cut halfway into the first variable: every variable value is now short,
    # the object graph (stored first, key "_CHECKPOINTABLE_OBJECT_GRAPH") intact.
    first = min(var_entries, key=lambda e: e.offset)
    cut = first.offset + first.size // 2
    assert 0 < cut < data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(cut)
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path)
    assert_clean_failure(proc, (DATA_FILE, "variables.data"))


def test_flipped_byte_in_data_file(kiln_bin, meta, model_copy, tmp_path):
    data = model_copy / "variables" / DATA_FILE
    _, var_entries = variable_entries(model_copy)
    buf = bytearray(data.read_bytes())
    for e in var_entries:  # one flipped byte inside each variable's value
        buf[e.offset + e.size // 2] ^= 0xFF
    data.write_bytes(bytes(buf))
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path)
    assert_clean_failure(proc, ("crc", "checksum"))


def test_unparsable_saved_model_pb(kiln_bin, meta, model_copy, tmp_path):
    junk = bytearray(np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    junk[0] = 0x0F  # field 1, wire type 7: invalid in any protobuf parser
    (model_copy / "saved_model.pb").write_bytes(bytes(junk))
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2
    with pytest.raises(DecodeError):  # sanity: really unparsable
        saved_model_pb2.SavedModel().ParseFromString(bytes(junk))
    proc = run(kiln_bin, model_copy, good_inputs(meta), tmp_path)
    assert_clean_failure(proc, "saved_model.pb")


@pytest.mark.zoo_models("unsupported_ops")
def test_unsupported_ops_are_listed_once(kiln_bin, zoo_dir, tmp_path):
    """One error lists every unsupported op type with its count and first node names."""
    proc = run_kiln(kiln_bin, ["run", zoo_dir / "unsupported_ops"], timeout=120)
    assert_clean_failure(proc, "unsupported", "Qr x2", "BesselJ0 x1")
    # Node names are listed, not just op types.
    assert "'" in proc.stderr.split("Qr x2", 1)[1].splitlines()[0]
    # inspect reports the same without failing to print the rest.
    proc = run_kiln(kiln_bin, ["inspect", zoo_dir / "unsupported_ops"], timeout=120)
    assert proc.returncode == 1
    assert "Qr" in proc.stdout and "Signatures" in proc.stdout


def test_a_fifo_as_the_model_is_refused_without_hanging(kiln_bin, tmp_path):
    # Opening a FIFO for reading blocks until a writer comes: Kiln must not open it at all.
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    proc = run_kiln(kiln_bin, ["run", str(fifo)], timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert "neither a regular file nor a directory" in proc.stderr, proc.stderr


def test_signature_tensor_with_an_absurd_output_index(kiln_bin, meta, model_copy, tmp_path):
    # "name:999999999" would size a table of a billion outputs: refused as malformed.
    from tensorflow.core.protobuf import saved_model_pb2
    pb = model_copy / "saved_model.pb"
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    sig = saved.meta_graphs[0].signature_def["serving_default"]
    name = next(iter(sig.inputs))
    sig.inputs[name].name = sig.inputs[name].name.split(":")[0] + ":999999999"
    pb.write_bytes(saved.SerializeToString())
    proc = run_kiln(kiln_bin, ["run", model_copy])
    assert proc.returncode == 1, proc.stderr
    assert "malformed tensor reference" in proc.stderr, proc.stderr
