"""ONNX nodes → netdsl layers: a DAG of ``Lyr``, each one layer of the papers' notation.

One handler per ONNX op type (``HANDLERS``); multi-node patterns (LRN lowered to elementwise
ops, MatMul + Add) are matched first, looking backwards from their last node, and their inner
nodes absorbed. Pass-through nodes (Identity, Dropout, a Flatten feeding an FC) alias their
input. The torch exporters' node names (``/layer1/layer1.0/conv1/Conv``) and netdsl's own
(``layer1.0.conv1``) give each layer its module path, from which ``fold`` recovers the blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NetdslError
from .read import Graph, Node


@dataclass(frozen=True, slots=True)
class Hole:
    """A number of a layer's text that may become a block parameter: channels or a stride."""

    kind: str  # "c" (channels, groups, features) or "s" (stride)
    value: int


Part = str | Hole


@dataclass
class Lyr:
    """One recognized layer: its text (with holes), inputs and weights in netdsl's order."""

    id: int
    kind: str  # netdsl op: conv, bn, relu, add, concat, mul, ...
    parts: list[Part]
    inputs: list[int]
    path: tuple[str, ...]  # module path from the exporter's names (may be empty)
    tensors: list[np.ndarray] = field(default_factory=list)
    origin: str = ""  # the ONNX node it came from (for messages)
    shape: tuple[int, ...] | None = None  # output shape without the batch axis

    def text(self) -> str:
        return "".join(render_part(p) for p in self.parts)


def render_part(p: Part) -> str:
    if isinstance(p, str):
        return p
    if p.kind == "s":
        return "" if p.value == 1 else f"/{p.value}"
    return str(p.value)


class Unsupported(Exception):
    """A node with no netdsl meaning; ``recognize`` turns it into a located NetdslError."""


@dataclass
class Net:
    layers: dict[int, Lyr]
    output: int
    warnings: list[str]


class Recognizer:
    def __init__(self, g: Graph) -> None:
        self.g = g
        self.consts: dict[str, np.ndarray] = dict(g.consts)
        self.value: dict[str, int] = {g.input: 0}  # ONNX value -> layer id
        self.layers: dict[int, Lyr] = {0: Lyr(0, "input", [], [], (), shape=g.input_shape)}
        self.producer = {o: n for n in g.nodes for o in n.outputs}
        self.users: dict[str, list[Node]] = {}
        for n in g.nodes:
            for i in n.inputs:
                self.users.setdefault(i, []).append(n)
        self.absorbed: set[int] = set()
        self.warnings: list[str] = []

    # ---- helpers ---------------------------------------------------------------------------
    def const(self, name: str, node: Node) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        raise Unsupported(f"input '{name}' must be a constant (a weight) for netdsl")

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def src(self, name: str) -> int:
        if name not in self.value:
            raise Unsupported(f"input '{name}' is computed by an op netdsl cannot follow")
        return self.value[name]

    def add(self, node: Node, kind: str, parts: list[Part], inputs: list[int],
            tensors: list[np.ndarray] = (), out: str | None = None) -> Lyr:
        out = out or node.outputs[0]
        lid = len(self.layers)
        path = tuple(node.scope.split(".")) if node.scope else module_path(node.name)
        lay = Lyr(lid, kind, parts, inputs, path, list(tensors), node.name,
                  self.g.shapes.get(out))
        self.layers[lid] = lay
        self.value[out] = lid
        return lay

    def alias(self, node: Node, src: str) -> None:
        if src in self.consts:
            self.consts[node.outputs[0]] = self.consts[src]
        else:
            self.value[node.outputs[0]] = self.src(src)

    def shape(self, value: str) -> tuple[int, ...] | None:
        """A value's shape without the batch axis: ONNX's inference, else the layer's own."""
        s = self.g.shapes.get(value)
        if s is None and value in self.value:
            s = self.layers[self.value[value]].shape
        return s

    def single_user(self, value: str) -> Node | None:
        us = self.users.get(value, [])
        return us[0] if len(us) == 1 and value != self.g.output else None

    # ---- the pass ----------------------------------------------------------------------------
    def run(self) -> Net:
        for node in self.g.nodes:
            if node.op == "Constant":
                self.consts[node.outputs[0]] = self.guard(node, _constant, node)
        actions: dict[int, Callable[[], None]] = {}
        for idx, node in enumerate(self.g.nodes):  # multi-node patterns, anchored at their end
            for pattern in PATTERNS:
                act = self.guard(node, pattern, self, node)
                if act is not None:
                    actions[idx] = act
                    break
        for idx, node in enumerate(self.g.nodes):
            if idx in self.absorbed or node.op == "Constant":
                continue
            if idx in actions:
                self.guard(node, actions[idx])
            elif node.inputs and all(self.is_const(i) for i in node.inputs if i):
                self.guard(node, self.fold_constant, node)
            else:
                handler = HANDLERS.get(node.op)
                if handler is None:
                    self.guard(node, _unknown, node)
                self.guard(node, handler, self, node)
        if self.g.output not in self.value:
            raise NetdslError("the model's output is a constant, not computed from its input",
                              path=self.g.path)
        return Net(self.layers, self.value[self.g.output], self.warnings)

    def guard(self, node: Node, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one recognition step; an ``Unsupported`` becomes an error naming the node."""
        try:
            return fn(*args)
        except Unsupported as e:
            raise NetdslError(f"{node.where()}: {e}", path=self.g.path,
                              hint="netdsl's layers cover the ONNX ops "
                                   f"{', '.join(sorted(HANDLERS))}; a model using others "
                                   "cannot be written as a spec") from None

    def fold_constant(self, node: Node) -> None:
        """Shape arithmetic on constants (Identity of a weight, Reshape of a bias)."""
        ins = [self.consts[i] for i in node.inputs if i]
        if node.op in ("Identity", "Cast"):
            self.consts[node.outputs[0]] = ins[0]
        elif node.op in ("Reshape", "Unsqueeze", "Squeeze", "Transpose"):
            self.consts[node.outputs[0]] = _fold(node, ins)
        else:
            raise Unsupported("an op computing on constants only: export with constant "
                              "folding on")


def module_path(name: str) -> tuple[str, ...]:
    """``/layer1/layer1.0/conv1/Conv`` → (layer1, 0, conv1); ``layer1.0.conv1`` → the same."""
    if name.startswith("/"):
        segs = [s for s in name.split("/") if s][:-1]  # the last one is the op
        path: list[str] = []
        for s in segs:
            prefix = ".".join(path)
            if path and s.startswith(prefix + "."):
                path = s.split(".")
            elif not path or s != path[-1]:
                path.extend(s.split("."))
        return tuple(p for p in path if p)
    base = name.split("/")[0]
    return tuple(base.split(".")) if base and "::" not in base else ()


def _unknown(node: Node) -> None:
    raise Unsupported("this op has no netdsl meaning")


def _constant(node: Node) -> np.ndarray:
    from onnx import numpy_helper

    if "value" in node.attrs:
        return numpy_helper.to_array(node.attrs["value"])
    for key in ("value_float", "value_int"):
        if key in node.attrs:
            return np.asarray(node.attrs[key])
    for key in ("value_floats", "value_ints"):
        if key in node.attrs:
            return np.asarray(node.attrs[key])
    raise Unsupported("a Constant of a kind netdsl does not read")


def _fold(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    if node.op == "Reshape":
        return x.reshape([int(d) for d in ins[1]])
    if node.op == "Transpose":
        return np.transpose(x, node.attrs.get("perm"))
    axes = node.attrs.get("axes") if len(ins) < 2 else [int(a) for a in ins[1]]
    if node.op == "Unsqueeze":
        return np.expand_dims(x, tuple(axes))
    return np.squeeze(x, tuple(axes) if axes is not None else None)


def _dims(values: list[int] | None, default: int, n: int, what: str) -> tuple[int, ...]:
    v = tuple(int(x) for x in (values or [default] * n))
    if len(v) != n or not 1 <= n <= 3:
        raise Unsupported(f"{what} {list(v)}: netdsl layers are 1-, 2- or 3-D")
    return v


def _pads(node: Node, n: int) -> tuple[int, ...]:
    if node.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Unsupported(f"auto_pad={node.attrs['auto_pad']!r}: export with explicit pads")
    p = [int(x) for x in node.attrs.get("pads", [0] * 2 * n)]
    if len(p) != 2 * n or p[:n] != p[n:]:
        raise Unsupported(f"asymmetric padding {p}: netdsl pads both sides equally")
    return tuple(p[:n])


def _k(v: tuple[int, ...]) -> str:
    """``3`` when every axis agrees, else ``1x7`` / ``1x2x2`` (netdsl's size notation)."""
    return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))


# ---- handlers: one per ONNX op type -------------------------------------------------------
def conv(r: Recognizer, n: Node) -> None:
    w = r.const(n.inputs[1], n)
    nd = w.ndim - 2
    out, k = int(w.shape[0]), tuple(int(x) for x in w.shape[2:])
    s = _dims(n.attrs.get("strides"), 1, nd, "strides")
    d = _dims(n.attrs.get("dilations"), 1, nd, "dilations")
    pad = _pads(n, nd)
    default = tuple(di * (ki - 1) // 2 if ki % 2 else 0 for ki, di in zip(k, d, strict=True))
    parts: list[Part] = [f"conv{_k(k)}-", Hole("c", out)]
    parts.append(Hole("s", s[0]) if len(set(s)) == 1 else f" stride={_k(s)}")
    if pad != default:
        parts.append(f" pad {_k(pad)}")
    if len(set(d)) > 1 or d[0] != 1:
        parts.append(f" dilation {_k(d)}")
    groups = int(n.attrs.get("group", 1))
    if groups != 1:
        parts += [" groups=", Hole("c", groups)]
    has_bias = len(n.inputs) > 2 and bool(n.inputs[2])
    parts.append(" bias on" if has_bias else " bias off")  # `default` lines drop the usual one
    tensors = [w] + ([r.const(n.inputs[2], n)] if has_bias else [])
    r.add(n, "conv", parts, [r.src(n.inputs[0])], tensors)


def batchnorm(r: Recognizer, n: Node) -> None:
    if len([o for o in n.outputs if o]) > 1 or n.attrs.get("training_mode", 0):
        raise Unsupported("BatchNormalization in training mode: export the model in eval mode")
    eps = float(n.attrs.get("epsilon", 1e-5))
    ts = [r.const(i, n) for i in n.inputs[1:5]]
    parts: list[Part] = ["bn"] if abs(eps - 1e-5) < 1e-12 else ["bn", f" eps={eps:g}"]
    r.add(n, "bn", parts, [r.src(n.inputs[0])], ts)


def _simple(kind: str, text: Callable[[Node], str] | None = None
            ) -> Callable[[Recognizer, Node], None]:
    def handle(r: Recognizer, n: Node) -> None:
        r.add(n, kind, [text(n) if text else kind], [r.src(n.inputs[0])])
    return handle


def _leaky(n: Node) -> str:
    a = float(n.attrs.get("alpha", 0.01))
    return "leakyrelu" if abs(a - 0.01) < 1e-9 else f"leakyrelu {a:g}"


def _elu(n: Node) -> str:
    a = float(n.attrs.get("alpha", 1.0))
    return "elu" if a == 1.0 else f"elu {a:g}"


def softmax(r: Recognizer, n: Node) -> None:
    shape = r.g.shapes.get(n.inputs[0])
    axis = int(n.attrs.get("axis", -1))
    if not (axis == 1 or (axis == -1 and shape is not None and len(shape) == 1)):
        raise Unsupported(f"soft-max over axis {axis}: netdsl's soft-max is over the classes "
                          "(axis 1 of an N×classes tensor)")
    r.add(n, "softmax", ["soft-max"], [r.src(n.inputs[0])])


def passthrough(r: Recognizer, n: Node) -> None:
    r.alias(n, n.inputs[0])


def pool(r: Recognizer, n: Node) -> None:
    kind = "maxpool" if n.op == "MaxPool" else "avgpool"
    k = tuple(int(x) for x in n.attrs.get("kernel_shape", []))
    nd = len(k)
    s = _dims(n.attrs.get("strides"), 1, nd, "strides")
    if any(x != 1 for x in _dims(n.attrs.get("dilations"), 1, nd, "dilations")):
        raise Unsupported("a dilated pooling window")
    if len([o for o in n.outputs if o]) > 1:
        raise Unsupported("pooling with indices")
    pad = _pads(n, nd)
    text = kind if set(k) == {2} and s == k and nd == 2 else \
        f"{kind}{_k(k)}" + ("" if s == k else f"/{_k(s)}")
    if any(pad):
        text += f" pad {_k(pad)}"
    if n.attrs.get("ceil_mode", 0):
        text += " ceil"
    if kind == "avgpool" and any(pad) and not n.attrs.get("count_include_pad", 0):
        text += " count_pad off"  # netdsl's avgpool counts the padding, like PyTorch's
    r.add(n, kind, [text], [r.src(n.inputs[0])])


def reduce_mean(r: Recognizer, n: Node) -> None:
    axes = n.attrs.get("axes") or (list(r.const(n.inputs[1], n)) if len(n.inputs) > 1 else None)
    shape = r.g.shapes.get(n.inputs[0])
    rank = len(shape) + 1 if shape is not None else 0
    if shape is None or rank < 3 or sorted(int(a) % rank for a in axes or []) != \
            list(range(2, rank)) or not n.attrs.get("keepdims", 1):
        raise Unsupported("a mean other than global average pooling over the spatial axes")
    r.add(n, "gap", ["gap"], [r.src(n.inputs[0])])


def flatten(r: Recognizer, n: Node) -> None:
    if int(n.attrs.get("axis", 1)) != 1 and n.op == "Flatten":
        raise Unsupported("flatten keeping more than the batch axis")
    if all(u.op in ("Gemm", "MatMul") for u in r.users.get(n.outputs[0], [])) and \
            n.outputs[0] != r.g.output:
        r.alias(n, n.inputs[0])  # netdsl's FC flattens its input itself
    else:
        r.add(n, "flatten", ["flatten"], [r.src(n.inputs[0])])


def reshape(r: Recognizer, n: Node) -> None:
    """A reshape to (N, features): a flatten (the dynamo exporter's, before an FC)."""
    shape, out = r.shape(n.inputs[0]), r.g.shapes.get(n.outputs[0])
    if shape is None or out is None or len(out) != 1 or out[0] != int(np.prod(shape)):
        raise Unsupported("a reshape other than flattening to (N, features)")
    if len(shape) == 1:
        r.alias(n, n.inputs[0])
    else:
        flatten(r, n)


def gemm(r: Recognizer, n: Node) -> None:
    if n.attrs.get("transA", 0):
        raise Unsupported("Gemm with a transposed input")
    w = r.const(n.inputs[1], n) * np.float32(n.attrs.get("alpha", 1.0))
    w = w if n.attrs.get("transB", 0) else w.T
    b = None
    if len(n.inputs) > 2 and n.inputs[2]:
        b = np.broadcast_to(r.const(n.inputs[2], n) * np.float32(n.attrs.get("beta", 1.0)),
                            (w.shape[0],))
    _fc(r, n, np.ascontiguousarray(w), b, n.inputs[0])


def _fc(r: Recognizer, n: Node, w: np.ndarray, b: np.ndarray | None, x: str,
        out: str | None = None) -> None:
    parts: list[Part] = ["FC-", Hole("c", int(w.shape[0]))]
    if b is None:
        parts.append(" bias=off")  # not conv's " bias off", which a `default` may make implicit
    r.add(n, "fc", parts, [r.src(x)], [w] + ([np.ascontiguousarray(b)] if b is not None else []),
          out=out)


def add(r: Recognizer, n: Node) -> None:
    if any(r.is_const(i) for i in n.inputs):
        raise Unsupported("adding a constant tensor (only a MatMul's bias is understood)")
    r.add(n, "add", ["add"], [r.src(i) for i in n.inputs])


def concat(r: Recognizer, n: Node) -> None:
    shape = r.g.shapes.get(n.outputs[0])
    rank = len(shape) + 1 if shape is not None else 4
    axis = int(n.attrs.get("axis", 1))
    if axis % rank != 1:
        raise Unsupported(f"concatenation along axis {axis}: netdsl concatenates channels")
    if len(n.inputs) == 1:
        r.alias(n, n.inputs[0])
        return
    if any(r.is_const(i) for i in n.inputs):
        raise Unsupported("concatenating a constant tensor")
    r.add(n, "concat", ["concat"], [r.src(i) for i in n.inputs])


def mul(r: Recognizer, n: Node) -> None:
    if any(r.is_const(i) for i in n.inputs):
        raise Unsupported("multiplying by a constant tensor")
    a, b = n.inputs
    sa, sb = r.shape(a), r.shape(b)
    if sa is not None and sb is not None and sa != sb and sb[0] == sa[0] \
            and all(d == 1 for d in sb[1:]):
        ins = [a, b]
    elif sa is not None and sb is not None and sa != sb and sa[0] == sb[0] \
            and all(d == 1 for d in sa[1:]):
        ins = [b, a]
    elif sa is not None and sa == sb:
        ins = [a, b]
    else:
        raise Unsupported("a product that is not a channel gate (x · g with g of C×1×1)")
    r.add(n, "mul", ["mul"], [r.src(i) for i in ins])


def lrn(r: Recognizer, n: Node) -> None:
    size = int(n.attrs["size"])
    r.add(n, "lrn", [_lrn_text(size, n.attrs.get("alpha", 1e-4), n.attrs.get("beta", 0.75),
                               n.attrs.get("bias", 1.0))], [r.src(n.inputs[0])])


def _lrn_text(size: int, alpha: float, beta: float, k: float) -> str:
    return f"LRN {size} alpha={float(alpha):.6g} beta={float(beta):.6g} k={float(k):.6g}"


def slice_(r: Recognizer, n: Node) -> None:
    """Option A shortcut (x[:, :, ::s, ::s]) as netdsl and torch write it."""
    ins = [r.const(i, n) if i else None for i in n.inputs[1:]]
    starts, ends, axes, steps = (list(map(int, a)) if a is not None else None
                                 for a in (*ins, None, None, None)[:4])
    shape = r.g.shapes.get(n.inputs[0])
    if shape is None or len(shape) != 3 or sorted(axes or []) != [2, 3] \
            or any(starts) or steps is None or len(set(steps)) != 1:
        raise Unsupported("a slice other than the option-A shortcut's x[:, :, ::s, ::s]")
    lay = r.add(n, "padshortcut", ["padshortcut-", Hole("c", shape[0]), Hole("s", steps[0])],
                [r.src(n.inputs[0])])
    lay.shape = lay.shape or (shape[0], -(-shape[1] // steps[0]), -(-shape[2] // steps[0]))


def pad(r: Recognizer, n: Node) -> None:
    pads = [int(p) for p in r.const(n.inputs[1], n)] if len(n.inputs) > 1 else \
        list(n.attrs.get("pads", []))
    mode = n.attrs.get("mode", b"constant")
    src = r.layers[r.src(n.inputs[0])]
    shape = r.g.shapes.get(n.inputs[0]) or src.shape
    if len(pads) != 8 or mode not in (b"constant", "constant") or shape is None or \
            any(p for i, p in enumerate(pads) if i != 5) or \
            (len(n.inputs) > 2 and n.inputs[2] and float(r.const(n.inputs[2], n)) != 0.0):
        raise Unsupported("padding other than zero channels appended (option-A shortcut)")
    total = shape[0] + pads[5]
    if src.kind == "padshortcut" and r.single_user(n.inputs[0]) is n:
        src.parts[1] = Hole("c", total)  # one netdsl layer: subsample, then pad
        r.value[n.outputs[0]] = src.id
        src.shape = (total, *shape[1:])
        return
    lay = r.add(n, "padshortcut", ["padshortcut-", Hole("c", total)], [src.id])
    lay.shape = (total, *shape[1:])


# ---- multi-node patterns --------------------------------------------------------------------
def lrn_pattern(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """x / (k + alpha·avg(x²))^beta: netdsl's and PyTorch's lowering of LRN."""
    if n.op != "Div":
        return None
    chain: list[Node] = []

    def prod(v: str, *ops: str) -> Node | None:
        p = r.producer.get(v)
        if p is None or p.op not in ops or r.single_user(v) is None:
            return None
        chain.append(p)
        return p

    x = n.inputs[0]
    p = prod(n.inputs[1], "Pow")
    a = p and prod(p.inputs[0], "Add")
    m = a and prod(a.inputs[0], "Mul")
    s = m and prod(m.inputs[0], "Squeeze")
    v = s and prod(s.inputs[0], "AveragePool")
    cur = v and (prod(v.inputs[0], "Pad") or v)
    u = cur and prod(cur.inputs[0], "Unsqueeze")
    sq = u and prod(u.inputs[0], "Mul")
    if not sq or sq.inputs[0] != x or sq.inputs[1] != x:
        return None
    try:
        beta, k, alpha = (float(r.const(q.inputs[1], q)) for q in (p, a, m))
    except Unsupported:
        return None
    size = int(v.attrs["kernel_shape"][0])
    ids = {id(c) for c in chain}
    r.absorbed.update(i for i, node in enumerate(r.g.nodes) if id(node) in ids)
    text = _lrn_text(size, alpha, beta, k)  # alpha scales the window's mean, as in netdsl
    return lambda: r.add(n, "lrn", [text], [r.src(x)]) and None


def matmul_add(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """MatMul by a weight matrix, plus a bias (anchored at the Add): a fully connected layer."""
    if n.op != "Add" or len(n.inputs) != 2:
        return None
    for mm, b in (n.inputs, n.inputs[::-1]):
        p = r.producer.get(mm)
        if p is not None and p.op == "MatMul" and r.is_const(b) and r.is_const(p.inputs[1]) \
                and r.single_user(mm) is n:
            w = r.consts[p.inputs[1]]
            if w.ndim == 2 and r.consts[b].size == w.shape[1]:
                r.absorbed.add(r.g.nodes.index(p))
                bias = r.consts[b].reshape(-1)
                return lambda: _fc(r, n, np.ascontiguousarray(w.T), bias, p.inputs[0])
    return None


def matmul(r: Recognizer, n: Node) -> None:
    w = r.const(n.inputs[1], n)
    if w.ndim != 2:
        raise Unsupported("a product with a non-matrix weight")
    _fc(r, n, np.ascontiguousarray(w.T), None, n.inputs[0])


def unsqueeze(r: Recognizer, n: Node) -> None:
    """(N, C) → (N, C, 1, 1) for a channel gate: netdsl's mul does that itself."""
    shape = r.shape(n.inputs[0])
    users = r.users.get(n.outputs[0], [])
    if shape is None or len(shape) != 1 or not users or any(u.op != "Mul" for u in users):
        raise Unsupported("adding axes other than a channel gate's")
    r.alias(n, n.inputs[0])


PATTERNS: list[Callable[[Recognizer, Node], Callable[[], None] | None]] = [lrn_pattern, matmul_add]

HANDLERS: dict[str, Callable[[Recognizer, Node], None]] = {
    "Conv": conv, "BatchNormalization": batchnorm,
    "Relu": _simple("relu"), "LeakyRelu": _simple("leakyrelu", _leaky),
    "Elu": _simple("elu", _elu), "Tanh": _simple("tanh"), "Sigmoid": _simple("sigmoid"),
    "Softmax": softmax, "Identity": passthrough, "Dropout": passthrough,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": _simple("gap"),
    "ReduceMean": reduce_mean, "Flatten": flatten, "Gemm": gemm, "Add": add, "Sum": add,
    "Concat": concat, "Mul": mul, "LRN": lrn, "Slice": slice_, "Pad": pad, "MatMul": matmul,
    "Unsqueeze": unsqueeze, "Reshape": reshape,
}


def recognize(g: Graph) -> Net:
    return Recognizer(g).run()


def describe(lay: Lyr) -> str:
    return f"{lay.text()} (from ONNX node '{lay.origin}')"

