"""Writes the hand-made part of the fuzz regression corpus (tests/fuzz/regression/): one file per
class of hostile input from the hostile-input issue, for each reader. Crashing inputs a fuzzer finds
are added next to them as they are (scripts/fuzz.sh copies them). Run with a Python that has numpy
and onnx: python3 tests/fuzz/make_seed_regressions.py"""

import os
import struct

import numpy as np
import onnx
from onnx import helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regression")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(header):
    body = header.encode("latin1")
    pad = (64 - (10 + len(body) + 1) % 64) % 64
    body += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


def onnx_bytes(nodes, inputs, outputs, initializers=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def main():
    put("npy", "huge_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (576460752303423488, 32), }") + b"\0" * 64)
    put("npy", "negative_dim.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }") + b"\0" * 16)
    put("npy", "duplicate_keys.npy", npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,), }") + b"\0" * 16)
    put("npy", "long_header.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "1, " * 5000 + "), }"))
    put("npy", "truncated.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }") + b"\0" * 7)

    f = onnx.TensorProto.FLOAT
    big = onnx.TensorProto()
    big.name, big.data_type = "w", f
    big.dims.extend([1 << 30])  # declares 4 GiB, carries nothing
    put("onnx", "declared_not_carried.onnx",
        onnx_bytes([helper.make_node("Identity", ["w"], ["y"])], [], [helper.make_tensor_value_info("y", f, None)], [big]))
    put("onnx", "tile_overflow.onnx", onnx_bytes(
        [helper.make_node("Tile", ["x", "r"], ["y"])],
        [helper.make_tensor_value_info("x", f, [2, 2])], [helper.make_tensor_value_info("y", f, None)],
        [helper.make_tensor("r", onnx.TensorProto.INT64, [2], [1 << 62, 4])]))
    put("onnx", "range_huge.onnx", onnx_bytes(
        [helper.make_node("Range", ["a", "b", "c"], ["y"])], [], [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, None)],
        [helper.make_tensor("a", onnx.TensorProto.INT64, [], [0]), helper.make_tensor("b", onnx.TensorProto.INT64, [], [1 << 62]),
         helper.make_tensor("c", onnx.TensorProto.INT64, [], [1])]))
    put("onnx", "garbage.onnx", bytes(np.random.default_rng(1).integers(0, 256, 512, dtype=np.uint8)))

    put("saved_model_pb", "garbage.pb", bytes(np.random.default_rng(2).integers(0, 256, 512, dtype=np.uint8)))
    put("saved_model_pb", "empty.pb", b"")
    put("tensor_bundle_index", "garbage.index", bytes(np.random.default_rng(3).integers(0, 256, 300, dtype=np.uint8)))
    put("tensor_bundle_index", "short.index", b"\0" * 47)
    put("kiln_file", "garbage.kiln", bytes(np.random.default_rng(4).integers(0, 256, 400, dtype=np.uint8)))
    put("kiln_file", "magic_only.kiln", b"KILNFILE")
    put("engine_file", "garbage.engine", bytes(np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8)))
    put("engine_file", "empty.engine", b"")


if __name__ == "__main__":
    main()
