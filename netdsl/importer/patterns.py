"""Multi-node patterns: several ONNX nodes that are one netdsl layer.

A pattern looks at one node (its anchor) and, when the nodes around it match, absorbs the
others and returns the action that adds the layer when the anchor's turn comes (every input
is recognized by then). Patterns use the recognizer's helpers only; ``PATTERNS`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .arrays import move, numbers
from .handlers import _fc, _features_last, _layernorm, _lrn_text
from .layers import Unsupported
from .read import Node

if TYPE_CHECKING:
    from .recognize import Recognizer


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
    r.absorb(*chain)
    text = _lrn_text(size, alpha, beta, k)  # alpha scales the window's mean, as in netdsl
    return lambda: r.add(n, "lrn", [text], [r.src(x)]) and None


def matmul_add(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """MatMul by a weight matrix, plus a bias (anchored at the Add): a fully connected layer.
    The weight may still be computed from constants (netdsl's Transpose of ``fc.weight``)."""
    if n.op != "Add" or len(n.inputs) != 2:
        return None
    for mm, b in (n.inputs, n.inputs[::-1]):
        p = r.producer.get(mm)
        if p is not None and p.op == "MatMul" and r.is_const_like(b) and \
                r.is_const_like(p.inputs[1]) and not r.is_const_like(p.inputs[0]) and \
                r.single_user(mm) is n:
            r.absorb(p)
            return _fc_action(r, n, p, b)
    return None


def _fc_action(r: Recognizer, n: Node, p: Node, b: str) -> Callable[[], None]:
    def act() -> None:
        w, bias = r.const(p.inputs[1], p), r.const(b, n)
        if w.ndim != 2 or bias.size != w.shape[1]:
            raise Unsupported("a product by a constant that is not an FC layer's weight")
        _fc(r, n, np.ascontiguousarray(w.T), bias.reshape(-1), p.inputs[0])
    return act


def shuffle(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """Reshape C → G×(C/G), swap those two axes, reshape back: a channel shuffle (anchored at
    the last Reshape; sizes from ONNX's shape inference, whatever the exporter's shape
    arithmetic)."""
    if n.op != "Reshape":
        return None
    t = r.producing(n.inputs[0], "Transpose")
    v = t and r.producing(t.inputs[0], "Reshape")
    if not v:
        return None
    x = v.inputs[0]
    shape, grouped, out = r.g.shapes.get(x), r.g.shapes.get(v.outputs[0]), \
        r.g.shapes.get(n.outputs[0])
    perm = [int(p) for p in t.attrs.get("perm", [])]
    if grouped is None or out != (grouped[0] * grouped[1], *grouped[2:]) or \
            shape not in (None, out) or perm != [0, 2, 1, *range(3, len(grouped) + 1)]:
        return None
    r.absorb(t, v)
    return lambda: r.add(n, "shuffle", [f"shuffle {grouped[0]}"], [r.src(x)]) and None


def groupnorm(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """Reshape to (N, G, rest), InstanceNormalization with unit scale, reshape back, then the
    per-channel scale and shift: GroupNorm as netdsl and PyTorch's exporter write it (anchored
    at the shift's Add, or at the back Reshape when there is no affine part)."""
    if n.op not in ("Add", "Reshape"):
        return None
    mul = bias = None
    back = n
    if n.op == "Add":
        cands = [(i, j) for i, j in (n.inputs, n.inputs[::-1])
                 if r.producing(i, "Mul") is not None]
        if len(cands) != 1:
            return None
        mv, bias = cands[0]
        mul = r.producer[mv]
        muls = [(i, j) for i, j in (mul.inputs, mul.inputs[::-1])
                if r.producing(i, "Reshape") is not None]
        if len(muls) != 1:
            return None
        back, scale = r.producer[muls[0][0]], muls[0][1]
    norm = r.producing(back.inputs[0], "InstanceNormalization")
    grouped = norm and r.producing(norm.inputs[0], "Reshape")
    if not grouped:
        return None
    x = grouped.inputs[0]
    shape, gs = r.g.shapes.get(x), r.g.shapes.get(grouped.outputs[0])
    if shape is None or gs is None or r.g.shapes.get(back.outputs[0]) != shape or \
            len(gs) < 2 or int(np.prod(gs)) != int(np.prod(shape)):
        return None
    groups, c, eps = gs[0], shape[0], float(norm.attrs.get("epsilon", 1e-5))
    r.absorb(*(m for m in (grouped, norm, back, mul) if m is not None and m is not n))

    def act() -> None:
        ones = [r.const(i, norm).reshape(-1) for i in norm.inputs[1:3]]
        if not (np.all(ones[0] == 1) and np.all(ones[1] == 0)):
            raise Unsupported("an InstanceNormalization with a learned scale inside GroupNorm")
        w = r.const(scale, mul).reshape(-1) if mul is not None else np.ones(c, np.float32)
        b = r.const(bias, n).reshape(-1) if mul is not None else np.zeros(c, np.float32)
        if w.size != c or b.size != c:
            raise Unsupported("a GroupNorm scale or shift of another size than the channels")
        text = f"groupnorm {groups}" + ("" if abs(eps - 1e-5) < 1e-12 else f" eps={eps:g}")
        r.add(n, "groupnorm", [text], [r.src(x)], [w.astype(np.float32), b.astype(np.float32)])
    return act


def _last_axis_mean(r: Recognizer, n: Node | None) -> bool:
    if n is None or n.op != "ReduceMean" or not n.attrs.get("keepdims", 1):
        return False
    axes = n.attrs.get("axes")
    if axes is None and len(n.inputs) > 1:
        axes = r.consts.get(n.inputs[1])
    return axes is not None and [int(a) for a in np.asarray(axes).reshape(-1)] == [-1]


def layernorm_graph(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """(x − mean) / √(var + ε) · γ + β over the last axis, as the exporters write LayerNorm
    before opset 17 (anchored at the shift's Add, or the Div without the affine part)."""
    end, mul, bias = n, None, None
    if n.op == "Add":
        cands = [(r.producing(i, "Mul"), j) for i, j in (n.inputs, n.inputs[::-1])]
        cands = [(m, j) for m, j in cands if m is not None and r.is_const_like(j)]
        if len(cands) != 1:
            return None
        mul, bias = cands[0]
        ds = [(r.producing(i, "Div"), j) for i, j in (mul.inputs, mul.inputs[::-1])]
        ds = [(d, j) for d, j in ds if d is not None and r.is_const_like(j)]
        if len(ds) != 1:
            return None
        div, scale = ds[0]
    elif n.op == "Div":
        div, scale = n, None
    else:
        return None
    sub = r.producer.get(div.inputs[0])
    sq = r.producing(div.inputs[1], "Sqrt")
    eps_add = sq and r.producing(sq.inputs[0], "Add")
    if sub is None or sub.op != "Sub" or eps_add is None:
        return None
    var_in = [i for i in eps_add.inputs if not r.is_const_like(i)]
    eps = [r.scalar(i) for i in eps_add.inputs if r.is_const_like(i)]
    var = r.producing(var_in[0], "ReduceMean") if len(var_in) == 1 else None
    pw = var and r.producing(var.inputs[0], "Pow")
    mean = r.producer.get(sub.inputs[1])
    x = sub.inputs[0]
    if not (_last_axis_mean(r, var) and _last_axis_mean(r, mean) and pw is not None and
            pw.inputs[0] == sub.outputs[0] and r.scalar(pw.inputs[1]) == 2.0 and
            mean.inputs[0] == x and len(eps) == 1 and eps[0] is not None and
            {id(u) for u in r.users.get(sub.outputs[0], [])} == {id(pw), id(div)} and
            len(r.users.get(mean.outputs[0], [])) == 1):
        return None
    r.absorb(*(m for m in (mean, sub, pw, var, eps_add, sq, div, mul) if m is not None
               and m is not end))

    def act() -> None:
        shape = r.shape(x)
        c = shape[-1] if shape else 0
        w = r.const(scale, mul).reshape(-1) if mul is not None else np.ones(c, np.float32)
        b = r.const(bias, n).reshape(-1) if mul is not None else np.zeros(c, np.float32)
        if shape is None or w.size != c or b.size != c or not _features_last(r, x, shape):
            raise Unsupported("a normalization over the last axis other than LayerNorm of "
                              "vectors, tokens or a channels-last map")
        _layernorm(r, end, x, float(eps[0]), w, b)
    return act


def flattening(r: Recognizer, n: Node) -> tuple[Node, Callable[[], None]] | None:
    """Reshapes and gathers by constant indices that, together, flatten a value to (N, F)
    keeping its order (the dynamo exporter's ``as_strided``: all to one axis, a Gather, a
    Reshape): a flatten, anchored at the chain's first node, added at its last."""
    if n.op != "Reshape" or r.is_const_like(n.inputs[0]) or \
            (p := r.producer.get(n.inputs[0])) is not None and p.op in FLATTENS:
        return None
    chain, cur = [n], n.outputs[0]
    while (u := r.single_user(cur)) is not None and u.op in FLATTENS and u.inputs[0] == cur \
            and all(r.is_const_like(i) for i in u.inputs[1:]):
        chain.append(u)
        cur = u.outputs[0]
    x, xs, ys = n.inputs[0], r.g.full.get(n.inputs[0]), r.g.full.get(cur)
    if len(chain) < 2 or xs is None or ys is None or ys != (xs[0], int(np.prod(xs[1:]))):
        return None
    end = chain[-1]
    r.absorb(*chain[:-1])

    def act() -> None:
        ids = numbers(xs)
        if not np.array_equal(move(r, chain, x, ids)[cur], ids.reshape(ys)):
            raise Unsupported("reshapes and gathers that reorder the values: netdsl flattens "
                              "only in order")
        if cur != r.g.output and all(u.op in ("Gemm", "MatMul") for u in r.users.get(cur, [])):
            r.alias(end, x, cur)  # netdsl's FC flattens its input itself
        else:
            r.add(end, "flatten", ["flatten"], [r.src(x)], out=cur)
    return end, act


FLATTENS = {"Reshape", "Gather", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


PATTERNS: list[Callable[[Recognizer, Node], Callable[[], None] | None]] = [
    lrn_pattern, matmul_add, shuffle, groupnorm, layernorm_graph, flattening]
