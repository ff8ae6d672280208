"""NetGraph + weights -> ONNX, built directly with the onnx package (no PyTorch, no tracing).

The model is the inference form: auxiliary heads and dropout are left out, BN stays BN.
Node names, value names and initializer names are the IR's names (``layer1.0.conv1``,
``layer1.0.conv1.weight``), so the model reads like the spec and its weights like a state_dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .. import __version__, ops
from ..errors import NetdslError
from ..fsutil import atomic_path, write_durably
from ..network import Network
from .weights import init_weights, match_weights

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17: loadable by onnxruntime releases since 1.12
PROTOBUF_LIMIT = 2**31 - 1  # a serialized ModelProto cannot exceed 2 GiB
EXTERNAL_MARGIN = 64 << 20  # room for the graph itself next to the weights
EXTERNAL_THRESHOLD = PROTOBUF_LIMIT - EXTERNAL_MARGIN  # weight bytes past which data goes external


class OnnxBuilder:
    """What an op's ``onnx`` method emits through: nodes, weights, integer constants."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.params: list[tuple[str, np.ndarray]] = []  # weight initializers, bytes added late
        self.consts: list[TensorProto] = []
        self.domains: set[str] = set()  # operator sets beyond ONNX's own that the nodes use

    def node(self, op_type: str, inputs: list[str], name: str, domain: str = "",
             **attrs: Any) -> str:
        """Add a node named ``name`` whose single output is also called ``name``; return it.

        ``domain`` other than ONNX's own (onnxruntime's "com.microsoft") is imported at version 1.
        """
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, domain=domain,
                                           **attrs))
        if domain:
            self.domains.add(domain)
        return name

    def param(self, name: str) -> str:
        """Use the weight ``name`` (a state_dict key) as an initializer; return its name."""
        self.params.append((name, self.weights[name]))
        return name

    def ints(self, name: str, values: list[int] | np.ndarray) -> str:
        """Add an int64 constant (shapes, axes, pads) as an initializer; return its name."""
        t = _meta(name, np.asarray(values, dtype=np.int64))
        t.raw_data = np.asarray(values, dtype="<i8").tobytes()
        self.consts.append(t)
        return name

    def floats(self, name: str, values: list[float]) -> str:
        """Add a float32 constant vector (e.g. fixed unit scales) as an initializer."""
        t = _meta(name, np.asarray(values, dtype=np.float32))
        t.raw_data = np.asarray(values, dtype="<f4").tobytes()
        self.consts.append(t)
        return name

    def scalar_int(self, name: str, value: int) -> str:
        """Add an int64 scalar (a Gather index) as an initializer; return its name."""
        t = _meta(name, np.asarray(value, dtype=np.int64))
        t.raw_data = np.asarray(value, dtype="<i8").tobytes()
        self.consts.append(t)
        return name

    def constant(self, name: str, values: np.ndarray) -> str:
        """Add a float32 tensor that is no weight (Swin's shift mask) as a Constant node."""
        a = np.ascontiguousarray(values, dtype="<f4")
        tensor = helper.make_tensor(name, TensorProto.FLOAT, a.shape, a.tobytes(), raw=True)
        return self.node("Constant", [], name, value=tensor)

    def float(self, name: str, value: float) -> str:
        """Add a float32 scalar as a Constant node (initializers stay exactly the weights)."""
        tensor = helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        return self.node("Constant", [], name, value=tensor)


def _meta(name: str, arr: np.ndarray) -> TensorProto:
    """A TensorProto's name, type and dims, without its data."""
    t = TensorProto()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
    t.dims.extend(arr.shape)
    return t


WEIGHTS_KEY = "netdsl.weights"  # metadata: where the weights came from ("given" or the init)


def lower(net: Network, weights: Mapping[str, np.ndarray] | None = None, seed: int = 0,
          values: dict[str, str] | None = None
          ) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The model without its weight initializers, and those weights as (name, float32 array).

    Weights stay numpy arrays until written, so large models are never copied into protobuf.
    ``values``, when given, receives each layer's ONNX output value (``import`` compares them).
    """
    w = init_weights(net, seed) if weights is None else match_weights(net, weights)
    b = OnnxBuilder(w)
    source = net.graph.input  # the graph input, under the input node's name
    values = {} if values is None else values
    values[source] = source
    for lay in net.graph.layers():
        op = ops.OPS[lay.op]
        if op.arity == 0 or lay.aux:
            continue
        values[lay.name] = op.onnx(b, lay.attrs, lay.name, [values[i] for i in lay.inputs],
                                   net.in_shapes(lay))
    out = values[net.graph.outputs[0]]
    if out == source:  # a graph output must be produced by a node
        out = b.node("Identity", [source], "output")
    graph = helper.make_graph(
        b.nodes, net.name, [_value(source, net.input_shape)],
        [_value(out, net.output_shape)], initializer=b.consts)
    model = helper.make_model(graph, producer_name="netdsl", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)] + [
                                  helper.make_opsetid(d, 1) for d in sorted(b.domains)],
                              doc_string=net.header.title or net.name)
    model.ir_version = IR_VERSION
    origin = (f"netdsl's random initialization ({' '.join(net.header.init)}, seed {seed})"
              if weights is None else "given")
    helper.set_model_props(model, {"netdsl.version": __version__, "netdsl.spec": net.source,
                                   "netdsl.spec_path": net.path, WEIGHTS_KEY: origin})
    return model, [(n, np.ascontiguousarray(a, dtype="<f4")) for n, a in b.params]


def to_onnx(net: Network, weights: Mapping[str, np.ndarray] | None = None,
            seed: int = 0, values: dict[str, str] | None = None) -> onnx.ModelProto:
    """Lower a network to an ONNX model (inference form, opset 17, dynamic batch).

    Args:
        net: a loaded network.
        weights: tensors under netdsl's names (a state_dict as numpy arrays, or the result
            of ``weights.match_weights``); None draws the spec's seeded initialization.
        seed: the random seed when ``weights`` is None.
        values: when given, receives each layer's ONNX output value, by layer name.

    Raises:
        NetdslError: when ``weights`` lack, add or mis-shape a tensor.
    """
    model, params = lower(net, weights, seed, values)
    for name, arr in params:
        t = model.graph.initializer.add()
        t.CopyFrom(_meta(name, arr))
        t.raw_data = arr.tobytes()
    return model


def _value(name: str, shape: tuple[int | str, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def compile_onnx(net: Network, path: str | Path,
                 weights: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                 external_threshold: int | None = None) -> Path | None:
    """Lower ``net``, write it atomically to ``path`` and check it (``full_check``).

    The protobuf is assembled from the weights' numpy buffers directly (protobuf's own
    serializer copies every tensor into its arena first, several times slower). Models whose
    weights exceed ``external_threshold`` bytes (default ``EXTERNAL_THRESHOLD``, just under 2 GiB)
    keep them in ``<path>.data`` beside the model (ONNX external data), since a protobuf
    message cannot exceed 2 GiB.

    Returns:
        The external data file, or None when the model is a single file.

    Raises:
        NetdslError: on unfitting weights, an unwritable path, or a model the checker rejects.
    """
    path = Path(path)
    model, params = lower(net, weights, seed)
    limit = EXTERNAL_THRESHOLD if external_threshold is None else external_threshold
    if sum(a.nbytes for _, a in params) > limit:
        return _save_external(model, params, path)
    # Checked before writing, without the weights' bytes: the checker would parse (copy) them
    # all, and their framing is exact by construction (tag and length from ``arr.nbytes``).
    _check(_skeleton(model, params), path)
    parts = _parts(model, params)  # written straight from the numpy buffers: no joined copy
    with atomic_path(path, suffix=".onnx") as tmp:
        write_durably(tmp, lambda f: f.writelines(parts), path)
    return None


def _skeleton(model: onnx.ModelProto, params: list[tuple[str, np.ndarray]]) -> onnx.ModelProto:
    """The model with its weights as typed graph inputs: what the checker needs of them."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.input.extend(_value(name, arr.shape) for name, arr in params)
    return m


def serialize(model: onnx.ModelProto, params: list[tuple[str, np.ndarray]]) -> bytes:
    """The bytes of ``model`` with ``params`` as its weight initializers (as from ``lower``).

    Assembled from the arrays' own buffers, one copy in all: protobuf's serializer copies every
    tensor into its arena first and is several times slower. ``model`` loses its graph.
    """
    return b"".join(_parts(model, params))


def _parts(model: onnx.ModelProto, params: list[tuple[str, np.ndarray]]) -> list:
    """``serialize``'s pieces, the weights as views of their arrays. ``model`` loses its graph."""
    graph = model.graph.SerializeToString()  # nodes and constants: small
    model.ClearField("graph")
    head = model.SerializeToString()
    entries = []
    for name, arr in params:
        meta = _meta(name, arr).SerializeToString() + _field(9, arr.nbytes)  # 9: raw_data
        entries.append((_field(5, len(meta) + arr.nbytes) + meta, arr))  # 5: initializer
    size = len(graph) + sum(len(e) + a.nbytes for e, a in entries)
    # fields may come in any order: the graph (7) follows the model's others
    return [head, _field(7, size), graph,
            *(part for entry, arr in entries for part in (entry, memoryview(arr).cast("B")))]


def _field(number: int, length: int) -> bytes:
    """A length-delimited protobuf field's tag and length (the payload follows)."""
    return _varint(number << 3 | 2) + _varint(length)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _check(model: str | bytes | onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise NetdslError(f"the generated ONNX model is invalid: {str(e).splitlines()[0]}",
                          path=str(path), hint="this is a netdsl bug; please report it") from None


def _save_external(model: onnx.ModelProto, params: list[tuple[str, np.ndarray]],
                   path: Path) -> Path:
    """Weights to ``<path>.data`` (64-byte aligned), the graph to ``path`` referring to them."""
    data_path = path.with_name(path.name + ".data")

    def write_data(f: Any) -> None:
        for name, arr in params:
            pad = -f.tell() % 64  # aligned so runtimes can memory-map the tensors
            f.write(b"\0" * pad)
            t = model.graph.initializer.add()
            t.CopyFrom(_meta(name, arr))
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data_path.name), ("offset", str(f.tell())),
                               ("length", str(arr.nbytes))):
                t.external_data.add(key=key, value=value)
            f.write(memoryview(arr).cast("B"))

    with atomic_path(data_path) as tmp_data:
        write_durably(tmp_data, write_data, data_path)
    # the data is in place: write the graph beside it and check it through its path, so the
    # checker resolves the external tensors; a rejected model takes its data file with it
    try:
        with atomic_path(path, suffix=".onnx") as tmp:
            data = model.SerializeToString()
            write_durably(tmp, lambda f: f.write(data), path)
            _check(str(tmp), path)
    except BaseException:
        data_path.unlink(missing_ok=True)
        raise
    return data_path
