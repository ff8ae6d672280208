"""Print the bytes of an ONNX model's initializers (external data included)."""

from __future__ import annotations

import math
import sys

import onnx


def weight_bytes(path: str) -> int:
    m = onnx.load(path, load_external_data=False)
    total = 0
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            total += int(next(e.value for e in t.external_data if e.key == "length"))
        elif t.raw_data:
            total += len(t.raw_data)
        else:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
            total += dtype.itemsize * math.prod(t.dims)
    return total


if __name__ == "__main__":
    print(weight_bytes(sys.argv[1]))
