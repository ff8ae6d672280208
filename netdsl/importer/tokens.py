"""Token sequences: patch embedding, class token, position embedding, attention, token-taking.

Handlers here take the rank-3 values that a patch embedding (or ``tokens``) made: a Concat
with a constant is the class token, an Add of a constant the position embedding, a Gather on
axis 1 takes a token, a mean over axis 1 averages them. Attention is a pattern: onnxruntime's
fused ``Attention`` that netdsl writes, or the exporters' decomposed form (``attention_graph``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from . import handlers as base
from .layers import Hole, Part, Unsupported
from .read import Node

if TYPE_CHECKING:
    from .recognize import Recognizer


def weight_name(r: Recognizer, value: str) -> str:
    """The initializer a constant comes from (through Expand, Reshape, Identity…): its last
    name segment when that is an identifier (``encoder.pos_embedding`` → ``pos_embedding``)."""
    seen = 0
    while value not in r.g.consts and value in r.producer and seen < 8:
        p = r.producer[value]
        if not p.inputs or p.op not in ("Expand", "Reshape", "Identity", "Unsqueeze", "Cast",
                                        "Squeeze", "Transpose"):
            return ""
        value, seen = p.inputs[0], seen + 1
    name = value.rsplit(".", 1)[-1] if value in r.g.consts else ""
    if name in EXPORTER_NAMES or not name.isidentifier() or \
            name.startswith(("onnx", "_", "node_", "val_")):
        return ""  # a constant the exporter folded and named after its op
    return name


EXPORTER_NAMES = {"expand", "view", "reshape", "transpose", "permute", "unsqueeze", "clone",
                  "cat", "concat", "add", "mul", "slice"}


def _named(r: Recognizer, value: str, text: str) -> str:
    name = weight_name(r, value)
    return f"{name} = {text}" if name and name != text else text


def tokens_pattern(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """Reshape C×H×W → C×(H·W), then swap the last two axes: a map's positions as tokens
    (anchored at the Transpose); after a convolution with kernel = stride, a patch embedding."""
    if n.op != "Transpose" or [int(p) for p in n.attrs.get("perm", [])] != [0, 2, 1]:
        return None
    v = r.producing(n.inputs[0], "Reshape", "Flatten")
    if v is None:
        return None
    x = v.inputs[0]
    shape, flat = r.g.shapes.get(x), r.g.shapes.get(v.outputs[0])
    if shape is None or flat is None or len(shape) < 3 or \
            flat != (shape[0], int(np.prod(shape[1:]))):
        return None
    r.absorb(v)

    def act() -> None:
        src = r.layers[r.src(x)]
        conv = r.producer.get(x)
        if src.kind == "conv" and conv is not None and _patch(r, src, conv, x):
            r.value[n.outputs[0]] = src.id
            return
        r.add(n, "tokens", ["tokens"], [src.id])
    return act


def _patch(r: Recognizer, lay: object, conv: Node, x: str) -> bool:
    """Turn the convolution ``lay`` into a patch embedding if it is one (kernel = stride, no
    padding, dilation or groups, 2-D, read only by the flattening)."""
    k = [int(v) for v in conv.attrs.get("kernel_shape", [])]
    s = [int(v) for v in conv.attrs.get("strides", [1] * len(k))]
    if len(k) != 2 or k != s or any(int(p) for p in conv.attrs.get("pads", [])) or \
            any(int(d) != 1 for d in conv.attrs.get("dilations", [1, 1])) or \
            int(conv.attrs.get("group", 1)) != 1 or r.single_user(x) is None:
        return False
    size = str(k[0]) if k[0] == k[1] else f"{k[0]}x{k[1]}"
    parts: list[Part] = [f"patch{size}-", Hole("c", int(lay.tensors[0].shape[0]))]
    if len(lay.tensors) == 1:
        parts.append(" bias=off")
    lay.kind, lay.parts, lay.tokens = "patch", parts, True
    lay.shape = r.g.shapes.get(x) and (int(np.prod(r.g.shapes[x][1:])), r.g.shapes[x][0])
    return True


def concat(r: Recognizer, n: Node) -> None:
    """[token; x] with a learned token: the class token."""
    consts = [i for i in n.inputs if r.is_const(i)]
    xs = [i for i in n.inputs if not r.is_const(i)]
    if not consts:
        base.concat(r, n)
        return
    if len(n.inputs) != 2 or n.inputs[0] != consts[0] or not r.is_tokens(xs[0]) or \
            int(n.attrs.get("axis", 1)) not in (1, -2):
        raise Unsupported("concatenating a constant tensor other than a class token before "
                          "a token sequence")
    t = r.consts[consts[0]]
    d = r.shape(xs[0])[-1]
    if t.ndim != 3 or t.shape[1] != 1 or t.shape[2] != d:
        raise Unsupported(f"a class token of shape {list(t.shape)}, not (1, 1, {d})")
    r.add(n, "cls", [_named(r, consts[0], "cls")], [r.src(xs[0])],
          [np.ascontiguousarray(t[:1])])


def class_token(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """Concat(Expand(token, (N, 1, D)), x) on axis 1 with the batch N read from x at run time
    (netdsl's own ``cls``, a dynamic batch): the Expand and its shape arithmetic are absorbed."""
    if n.op != "Concat" or len(n.inputs) != 2 or int(n.attrs.get("axis", 0)) not in (1, -2):
        return None
    e = r.producing(n.inputs[0], "Expand")
    if e is None or not r.g.consts.get(e.inputs[0], np.zeros(0)).shape[:2] == (1, 1):
        return None
    chain, todo = [e], [e.inputs[1]]
    while todo:  # the shape's arithmetic: Shape(x), Concat with constants…
        p = r.producer.get(todo.pop())
        if p is None or p.op == "Constant":
            continue
        if p.op not in ("Shape", "Concat", "Gather", "Slice", "Unsqueeze", "Cast") or \
                any(u not in chain for o in p.outputs for u in r.users.get(o, [])):
            return None
        chain.append(p)
        todo += [i for i in p.inputs if i and p.op != "Shape" and i not in r.g.consts]
    r.absorb(*chain)
    t = r.g.consts[e.inputs[0]]
    return lambda: r.add(n, "cls", [_named(r, e.inputs[0], "cls")], [r.src(n.inputs[1])],
                         [np.ascontiguousarray(t)]) and None


def add(r: Recognizer, n: Node) -> None:
    """x + E with a learned E of the sequence's shape: the position embedding."""
    consts = [i for i in n.inputs if r.is_const(i)]
    if not consts:
        base.add(r, n)
        return
    xs = [i for i in n.inputs if not r.is_const(i)]
    e = r.consts[consts[0]]
    shape = r.shape(xs[0]) if len(xs) == 1 else None
    if shape is None or not r.is_tokens(xs[0]) or e.reshape(-1).size != int(np.prod(shape)):
        raise Unsupported("adding a constant tensor other than a bias or a position embedding")
    r.add(n, "pos_embed", [_named(r, consts[0], "pos_embed")], [r.src(xs[0])],
          [np.ascontiguousarray(e.reshape(1, *shape))])


def gather(r: Recognizer, n: Node) -> None:
    """x[:, i] of a token sequence: that token."""
    x = n.inputs[0]
    idx = r.const(n.inputs[1], n)
    shape = r.shape(x)
    if not r.is_tokens(x) or int(n.attrs.get("axis", 0)) not in (1, -2) or idx.size != 1 or \
            idx.ndim != 0 or shape is None:
        raise Unsupported("a gather other than taking one token of a token sequence")
    i = int(idx) % shape[0]
    r.add(n, "token", [f"token {i}"], [r.src(x)])


def reduce_mean(r: Recognizer, n: Node) -> None:
    x = n.inputs[0]
    if not r.is_tokens(x):
        base.reduce_mean(r, n)
        return
    axes = n.attrs.get("axes") or (list(r.const(n.inputs[1], n)) if len(n.inputs) > 1 else None)
    rank = len(r.shape(x) or ()) + 1
    if sorted(int(a) % rank for a in axes or []) != list(range(1, rank - 1)) or \
            n.attrs.get("keepdims", 1):
        raise Unsupported("a mean over a token sequence or grid other than over its tokens")
    r.add(n, "avgtokens", ["avgtokens"], [r.src(x)])


def fused_attention(r: Recognizer, n: Node) -> Callable[[], None] | None:
    """onnxruntime's Attention (as netdsl writes ``attention``), then the output projection
    (MatMul + Add), anchored at the Add."""
    if n.op != "Add":
        return None
    found = [(mm, att, b) for mm, b in ((r.producing(v, "MatMul"), b) for v, b in
                                          (n.inputs, n.inputs[::-1])) if mm is not None
             for att in [r.producing(mm.inputs[0], "Attention")]
             if att is not None and att.domain == "com.microsoft"]
    if len(found) != 1:
        return None
    mm, att, bo = found[0]
    if att.attrs.get("unidirectional", 0) or len([i for i in att.inputs if i]) != 3:
        return None
    r.absorb(mm, att)

    def act() -> None:
        w, b = r.const(att.inputs[1], att), r.const(att.inputs[2], att)
        wo, bias = r.const(mm.inputs[1], mm), r.const(bo, n)
        heads = int(att.attrs["num_heads"])
        _attention(r, n, att.inputs[0], heads, w.T, b, wo.T, bias)
    return act


def _attention(r: Recognizer, n: Node, x: str, heads: int, w_in: np.ndarray, b_in: np.ndarray,
               w_out: np.ndarray, b_out: np.ndarray) -> None:
    d = w_out.shape[0]
    if w_in.shape != (3 * d, d) or b_in.size != 3 * d or b_out.size != d or not r.is_tokens(x):
        raise Unsupported("an attention whose projections are not D×D on a token sequence")
    tensors = [np.ascontiguousarray(t, np.float32) for t in
               (w_in, b_in.reshape(-1), w_out, b_out.reshape(-1))]
    r.add(n, "attention", ["attention heads=", Hole("c", heads)], [r.src(x)], tensors)


# ---- the exporters' decomposed attention ------------------------------------------------------
SHAPE_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Split", "Slice",
             "Identity", "Dropout", "Flatten", "Shape", "Concat", "Cast", "Constant", "Expand"}
SCALE_OPS = {"Mul", "Div", "Sqrt"}  # 1/√(D/h), on the scores or on Q and K


def attention_graph(r: Recognizer, sm: Node) -> tuple[Node, Callable[[], None]] | None:
    """softmax(Q·Kᵀ·s)·V with Q, K, V and the output projected from one token sequence x: the
    torch exporters' ``nn.MultiheadAttention`` (anchored at the Softmax; the layer is added at
    the region's last node). The region is every node between x and that last node: shape
    arithmetic, scalar scales and the projections only, each read only inside the region."""
    if sm.op != "Softmax":
        return None
    full = r.g.full
    s = r.producer.get(sm.inputs[0])
    while s is not None and s.op in SCALE_OPS | {"Identity", "Cast"}:
        s = r.producer.get(s.inputs[0])
    if s is None or s.op != "MatMul" or any(r.is_const(i) for i in s.inputs):
        return None
    # A·V, then forward through shape ops to the output projection and back to x's shape
    cur = sm.outputs[0]
    av = None
    while (u := r.single_user(cur)) is not None:
        if u.op == "MatMul" and u.inputs[0] == cur:
            av = u
            break
        if u.op not in ("Identity", "Dropout", "Cast"):
            return None
        cur = u.outputs[0]
    if av is None:
        return None
    cur, proj = av.outputs[0], None
    while (u := r.single_user(cur)) is not None and proj is None:
        if u.op in ("MatMul", "Gemm") and not any(r.is_const(i) for i in u.inputs[:1]) and \
                r.is_const_like(u.inputs[1]):
            proj = u
        elif u.op not in SHAPE_OPS:
            return None
        cur = u.outputs[0]
    if proj is None:
        return None
    end = proj
    bias = None
    u = r.single_user(proj.outputs[0])
    if proj.op == "MatMul" and u is not None and u.op == "Add" and \
            any(r.is_const_like(i) for i in u.inputs):
        end, bias = u, next(i for i in u.inputs if r.is_const_like(i))
    # back from the scores and the values to the one sequence they are computed from
    region = _ancestors(r, [s, av, end], proj)
    if region is None:
        return None
    inside = {id(n) for n in region}
    xs = {i for n in region for i in n.inputs
          if i and not r.is_const_like(i) and id(r.producer.get(i)) not in inside}
    if len(xs) != 1:
        return None
    x = xs.pop()
    while (p := r.producer.get(x)) is not None and p.op in ("Transpose", "Identity") and \
            all(id(u) in inside for u in r.users.get(x, [])):
        region.append(p)  # batch_first: the exporter's transpose to (L, N, D) and back
        inside.add(id(p))
        x = p.inputs[0]
    xf = full.get(x)
    while (u := r.single_user(end.outputs[0])) is not None and u.op in SHAPE_OPS and \
            full.get(end.outputs[0]) != xf:
        region.append(u)
        inside.add(id(u))
        end = u
    if xf is None or len(xf) != 3 or full.get(end.outputs[0]) != xf:
        return None
    if not r.one_layer(region, x, end.outputs[0]):
        return None
    scores = full.get(s.outputs[0])
    batch, length, d = xf
    if scores is None or int(np.prod(scores)) % (batch * length * length):
        return None
    heads = int(np.prod(scores)) // (batch * length * length)
    projs = [n for n in region if n is not proj and n.op in ("MatMul", "Gemm") and
             r.is_const_like(n.inputs[1])]
    r.absorb(*(n for n in region if n is not end))

    def act() -> None:
        w_in, b_in = _in_projection(r, projs, s, av, d)
        wo = r.const(proj.inputs[1], proj)
        wo = wo if proj.op == "Gemm" and proj.attrs.get("transB", 0) else wo.T
        bo = r.const(bias, end) if bias is not None else (
            r.const(proj.inputs[2], proj) if proj.op == "Gemm" and len(proj.inputs) > 2
            else np.zeros(d, np.float32))
        _attention(r, end, x, heads, w_in, b_in, wo, bo)
    return end, act


def _ancestors(r: Recognizer, ends: list[Node], proj: Node) -> list[Node] | None:
    """Nodes reached backwards from ``ends`` through shape arithmetic, scalar scales, biases
    and projections; an input projection (a product with a constant other than ``proj``) is
    the border: its input is x. At most a few hundred nodes: one attention."""
    seen: dict[int, Node] = {}
    todo = list(ends)
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        if len(seen) > 400:
            return None
        if n is not proj and n.op in ("MatMul", "Gemm") and r.is_const_like(n.inputs[1]):
            continue  # an input projection: x is its input
        for i in n.inputs:
            p = r.producer.get(i)
            if p is None or r.is_const_like(i):
                continue
            if p.op in SHAPE_OPS | SCALE_OPS | {"MatMul", "Gemm", "Add", "Softmax"}:
                todo.append(p)
    return sorted(seen.values(), key=lambda n: r.index[id(n)])


def _in_projection(r: Recognizer, projs: list[Node], s: Node, av: Node, d: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Q, K, V's weights (3D × D) and biases: one packed projection, or one per Q, K, V in the
    order the scores and A·V read them."""
    def wb(n: Node) -> tuple[np.ndarray, np.ndarray]:
        w = r.const(n.inputs[1], n)
        w = w if n.op == "Gemm" and n.attrs.get("transB", 0) else w.T
        b = None
        if n.op == "Gemm" and len(n.inputs) > 2 and n.inputs[2]:
            b = r.const(n.inputs[2], n)
        else:
            u = r.single_user(n.outputs[0])
            if u is not None and u.op == "Add":
                b = next((r.const(i, u) for i in u.inputs if r.is_const(i)), None)
        return w, (b.reshape(-1) if b is not None else np.zeros(w.shape[0], np.float32))

    if len(projs) == 1:
        w, b = wb(projs[0])
        if w.shape == (3 * d, d):
            return w, b
    if len(projs) == 3:
        order = {id(p): _reads(r, p, s, av) for p in projs}
        if sorted(order.values()) == [0, 1, 2]:
            ws = sorted(projs, key=lambda p: order[id(p)])
            pairs = [wb(p) for p in ws]
            return np.concatenate([w for w, _ in pairs]), np.concatenate([b for _, b in pairs])
    raise Unsupported("an attention whose Q, K, V projections netdsl cannot tell apart")


def _reads(r: Recognizer, p: Node, s: Node, av: Node) -> int:
    """Which of Q (0), K (1), V (2) the projection ``p`` computes."""
    todo, seen = [p], set()
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        for o in n.outputs:
            for u in r.users.get(o, []):
                if u is s:
                    return 0 if s.inputs[0] == o else 1
                if u is av:
                    return 2
                if u.op in SHAPE_OPS | SCALE_OPS:
                    todo.append(u)
    return -1


PATTERNS = [tokens_pattern, class_token, fused_attention, attention_graph]
HANDLERS = {"Concat": concat, "Add": add, "Gather": gather, "ReduceMean": reduce_mean}
