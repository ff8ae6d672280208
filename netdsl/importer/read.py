"""Load an ONNX model defensively: bounded size, checked structure, no code executed.

Everything the later stages need comes out as plain data (``Graph``): the nodes in
topological order with their attributes, the constant tensors as numpy arrays, the one
input's shape and the one output. Any problem is a NetdslError naming the file, the node and
its op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetdslError
from ..fsutil import open_regular

MAX_MODEL_BYTES = 4 << 30  # the .onnx file itself (external data is checked per tensor)
MAX_NODES = 200_000
MS_DOMAIN = "com.microsoft"
CONTRIB = {"Attention"}  # onnxruntime's contrib ops that netdsl itself writes (`attention`)


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    domain: str = ""
    scope: str = ""  # the dynamo exporter's module path (its node names carry none)

    def where(self) -> str:
        return f"node '{self.name}' ({self.op})"


@dataclass
class Graph:
    path: str
    nodes: list[Node]
    consts: dict[str, np.ndarray]
    input: str
    input_shape: tuple[int, ...]  # without the batch axis
    output: str
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # value -> dims (no batch)
    full: dict[str, tuple[int, ...]] = field(default_factory=dict)  # value -> all dims, if fixed
    producer: str = ""
    batch: int | None = None  # a fixed batch size, when the model has one
    name: str = ""  # netdsl's own models: the network's name and title
    title: str = ""


def _fail(path: str, message: str, hint: str | None = None) -> NetdslError:
    return NetdslError(message, path=path, hint=hint)


def read_model(source: str | Path | bytes | Any, path: str | None = None) -> Graph:
    """Read an ONNX file (a path), its bytes, or a ``ModelProto``, into a checked ``Graph``."""
    import onnx

    name = path or (str(source) if isinstance(source, (str, Path)) else "<model>")
    base: Path | None = None
    if isinstance(source, onnx.ModelProto):
        model = source
    else:
        if isinstance(source, (str, Path)):
            data, base = _read_bytes(Path(source), name), Path(source).parent
        else:
            data = bytes(source)
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception:  # protobuf's DecodeError: truncated or not protobuf at all
            raise _fail(name, "is not a readable ONNX model (truncated or corrupt protobuf)",
                        "re-export the model; compare the file's size with the original's"
                        ) from None
        if not model.HasField("graph") or not model.graph.node:
            raise _fail(name, "is not an ONNX model: it has no graph (truncated or not ONNX)",
                        "re-export the model")
    g = model.graph
    if len(g.node) > MAX_NODES:
        raise _fail(name, f"has {len(g.node):,} nodes, more than the limit of {MAX_NODES:,}")
    _load_external(model, base, name)
    skeleton = _skeleton(model)
    try:
        onnx.checker.check_model(skeleton)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        raise _fail(name, f"is not a valid ONNX model: {first}",
                    "the file is corrupt or was written by a broken exporter") from None
    return _to_graph(model, skeleton, name)


def _skeleton(model: Any) -> Any:
    """The model with its weights as typed graph inputs: all the checker and shape inference
    need of them, without serializing (copying) hundreds of MB of weights, twice."""
    import onnx
    from onnx import helper

    m = onnx.ModelProto()
    m.ir_version = model.ir_version
    m.opset_import.extend(model.opset_import)
    m.functions.extend(model.functions)
    g = m.graph
    src = model.graph
    g.name = src.name
    for n in src.node:
        if n.domain == MS_DOMAIN and n.op_type in CONTRIB:
            # shape inference does not know onnxruntime's ops: an Identity of the input
            # has the same output shape (self-attention keeps the sequence's shape)
            g.node.add().CopyFrom(onnx.helper.make_node("Identity", [n.input[0]], [n.output[0]],
                                                        name=n.name))
        else:
            g.node.add().CopyFrom(n)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    have = {i.name for i in src.input}
    for t in src.initializer:  # small ones (axes, shapes, pads) stay: shapes depend on them
        if t.name in have:
            continue
        if len(t.raw_data) <= 256 and not t.data_location:
            g.initializer.append(t)
        else:
            g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return m


def _read_bytes(p: Path, name: str) -> bytes:
    try:
        if not p.is_file():
            raise _fail(name, "no such file" if not p.exists() else "is not a regular file",
                        "check the path")
        size = p.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise _fail(name, f"is {size >> 20:,} MiB, more than the limit of "
                        f"{MAX_MODEL_BYTES >> 20:,} MiB", "keep large weights as external data")
        with open_regular(p) as f:  # checked again on the descriptor: nothing can block
            return f.read()
    except OSError as e:
        raise _fail(name, f"cannot read: {e.strerror or e}") from None


def _load_external(model: Any, base: Path | None, name: str) -> None:
    """Resolve external tensors: only files beside the model, each long enough."""
    from onnx import TensorProto

    ext = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    for t in ext:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if base is None:
            raise _fail(name, f"tensor '{t.name}' is stored in external data ('{loc}'), "
                        "which needs the model's path", "load the model from its file")
        target = (base / loc).resolve()
        if os.path.isabs(loc) or ".." in Path(loc).parts or target.parent != base.resolve():
            raise _fail(name, f"tensor '{t.name}' refers to external data outside the "
                        f"model's folder ('{loc}')", "netdsl reads external data only beside "
                        "the model")
        if not target.is_file():
            raise _fail(name, f"external data '{loc}' of tensor '{t.name}' is missing",
                        f"keep {loc} next to the model")
        need = int(info.get("offset", 0)) + int(info.get("length", 0) or 0)
        if target.stat().st_size < need:
            raise _fail(name, f"external data '{loc}' is truncated: tensor '{t.name}' needs "
                        f"{need:,} bytes, the file has {target.stat().st_size:,}")
    if ext:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, str(base))


def _scope(n: Any) -> str:
    """``layer1.0.bn1`` from the dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata
    (``['', 'layer1', 'layer1.0', 'layer1.0.bn1', '_native_batch_norm…']``): data, not code."""
    for p in n.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            parts = [s.strip().strip("'\"") for s in p.value.strip("[]").split(",")]
            return parts[-2] if len(parts) >= 2 else ""
    return ""


def _to_graph(model: Any, skeleton: Any, name: str) -> Graph:
    from onnx import helper, numpy_helper, shape_inference

    g = model.graph
    consts = {}
    for t in g.initializer:
        try:
            consts[t.name] = numpy_helper.to_array(t)
        except Exception:  # raw_data of the wrong length: a damaged file
            raise _fail(name, f"weight '{t.name}' is damaged (its data does not match its "
                        "shape)", "re-export the model") from None
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        listed = ", ".join(f"'{i.name}'" for i in inputs) or "none"
        raise _fail(name, f"has {len(inputs)} inputs ({listed}); a netdsl network takes one",
                    "export the model with a single input tensor")
    if len(g.output) != 1:
        raise _fail(name, f"has {len(g.output)} outputs; a netdsl network has one (auxiliary "
                    "heads are training-only)", "export the inference model (model.eval())")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) < 2 or any(d is None or d < 1 for d in shape[1:]):
        shown = "×".join(d.dim_param or "?" if not d.HasField("dim_value") else str(d.dim_value)
                         for d in dims)
        raise _fail(name, f"input '{inputs[0].name}' has shape {shown}; netdsl needs a batch "
                    "axis and fixed sizes for the others (C×H×W or features)",
                    "export with a fixed example input size")
    nodes = []
    for i, n in enumerate(g.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        nodes.append(Node(n.name or f"{n.op_type}_{i}", n.op_type, list(n.input),
                          list(n.output), attrs, n.domain, _scope(n)))
    for n in nodes:
        if n.domain not in ("", "ai.onnx") and not (n.domain == MS_DOMAIN and n.op in CONTRIB):
            raise _fail(name, f"{n.where()} is in the custom domain '{n.domain}', which has "
                        "no netdsl meaning", "export with standard ONNX operators")
    shapes: dict[str, tuple[int, ...]] = {}
    full: dict[str, tuple[int, ...]] = {}
    try:
        inferred = shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True)
        for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
            d = v.type.tensor_type.shape.dim
            if d and all(x.HasField("dim_value") for x in d[1:]):
                shapes[v.name] = tuple(x.dim_value for x in d[1:])
                if d[0].HasField("dim_value"):
                    full[v.name] = (d[0].dim_value, *shapes[v.name])
    except Exception:  # shapes are a help for recognition, not a requirement
        pass
    return Graph(name, nodes, consts, inputs[0].name, tuple(shape[1:]), g.output[0].name,
                 shapes, full, model.producer_name, shape[0],
                 g.name if model.producer_name == "netdsl" else "",
                 model.doc_string if model.producer_name == "netdsl" else "")
