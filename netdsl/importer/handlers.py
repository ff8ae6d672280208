"""One handler per ONNX op type: the node's attributes and weights → one netdsl layer.

A handler raises ``Unsupported`` (a short reason) when the node, though of a known op type,
has no netdsl meaning (an axis-2 concat, asymmetric padding); the recognizer turns that into
an error naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .arrays import sizes
from .layers import CHANNELS_FIRST, CHANNELS_LAST, Hole, Part, Unsupported, dims, ksize, pads
from .read import Node

if TYPE_CHECKING:
    from .recognize import Recognizer


# ---- handlers: one per ONNX op type -------------------------------------------------------
def conv(r: Recognizer, n: Node) -> None:
    w = r.const(n.inputs[1], n)
    nd = w.ndim - 2
    out, k = int(w.shape[0]), tuple(int(x) for x in w.shape[2:])
    s = dims(n.attrs.get("strides"), 1, nd, "strides")
    d = dims(n.attrs.get("dilations"), 1, nd, "dilations")
    pad = pads(n, nd)
    default = tuple(di * (ki - 1) // 2 if ki % 2 else 0 for ki, di in zip(k, d, strict=True))
    square = len(set(k)) == 1  # a square kernel may become a block parameter (3×3 or 5×5)
    parts: list[Part] = ["conv", Hole("k", k[0]), "-"] if square else [f"conv{ksize(k)}-"]
    parts.append(Hole("c", out))
    parts.append(Hole("s", s[0]) if len(set(s)) == 1 else f" stride={ksize(s)}")
    if pad != default:
        parts.append(f" pad {ksize(pad)}")
    if len(set(d)) > 1 or d[0] != 1:
        parts.append(f" dilation {ksize(d)}")
    groups = int(n.attrs.get("group", 1))
    if groups != 1:
        parts += [" groups=", Hole("c", groups)]
    has_bias = len(n.inputs) > 2 and bool(n.inputs[2])
    parts.append(" bias on" if has_bias else " bias off")  # `default` lines drop the usual one
    if square:
        parts.append(Hole("k", k[0], "opt"))  # ` kernel=k` when it is a block parameter
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
        x = n.inputs[0]
        r.add(n, kind, [text(n) if text else kind], [r.src(x)], nhwc=x in r.nhwc)
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
    s = dims(n.attrs.get("strides"), 1, nd, "strides")
    if any(x != 1 for x in dims(n.attrs.get("dilations"), 1, nd, "dilations")):
        raise Unsupported("a dilated pooling window")
    if len([o for o in n.outputs if o]) > 1:
        raise Unsupported("pooling with indices")
    pad = pads(n, nd)
    text = kind if set(k) == {2} and s == k and nd == 2 else \
        f"{kind}{ksize(k)}" + ("" if s == k else f"/{ksize(s)}")
    if any(pad):
        text += f" pad {ksize(pad)}"
    if n.attrs.get("ceil_mode", 0):
        text += " ceil"
    if kind == "avgpool" and any(pad) and not n.attrs.get("count_include_pad", 0):
        text += " count_pad off"  # netdsl's avgpool counts the padding, like PyTorch's
    r.add(n, kind, [text], [r.src(n.inputs[0])])


def reduce_mean(r: Recognizer, n: Node) -> None:
    """A mean over all spatial axes: global average pooling (``x.mean((2, 3))`` drops the
    axes: then a flatten follows, unless an FC, which flattens itself, reads it)."""
    axes = n.attrs.get("axes") or (list(r.const(n.inputs[1], n)) if len(n.inputs) > 1 else None)
    shape = r.shape(n.inputs[0])
    rank = len(shape) + 1 if shape is not None else 0
    if shape is None or rank < 3 or n.inputs[0] in r.nhwc or \
            sorted(int(a) % rank for a in axes or []) != list(range(2, rank)):
        raise Unsupported("a mean other than global average pooling over the spatial axes")
    if n.attrs.get("keepdims", 1):
        r.add(n, "gap", ["gap"], [r.src(n.inputs[0])])
        return
    lay = r.add(n, "gap", ["gap"], [r.src(n.inputs[0])])
    lay.shape = (shape[0], *[1] * (rank - 2))
    users = r.users.get(n.outputs[0], [])
    if n.outputs[0] == r.g.output or any(u.op not in ("Gemm", "MatMul") for u in users):
        r.add(n, "flatten", ["flatten"], [lay.id])


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
    """An FC layer with weight ``w`` (out × in); on a channels-last map, a 1×1 convolution."""
    tensors = [w] + ([np.ascontiguousarray(b)] if b is not None else [])
    if x in r.nhwc:  # ConvNeXt's Linear after a permute: the same as conv1 before it
        rank = len(r.shape(x) or ()) + 1
        tensors[0] = w.reshape(*w.shape, *[1] * (rank - 2))
        parts: list[Part] = ["conv1-", Hole("c", int(w.shape[0])),
                             " bias on" if b is not None else " bias off"]
        r.add(n, "conv", parts, [r.src(x)], tensors, out=out, nhwc=True)
        return
    parts = ["FC-", Hole("c", int(w.shape[0]))]
    if b is None:
        parts.append(" bias=off")  # not conv's " bias off", which a `default` may make implicit
    r.add(n, "fc", parts, [r.src(x)], tensors, out=out)


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
        layer_scale(r, n)
        return
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
    """Option A shortcut (x[:, :, ::s, ::s]) as netdsl and torch write it, or one of equal
    channel parts (x[:, lo:hi], ShuffleNet's halves)."""
    ins = [r.const(i, n) if i else None for i in n.inputs[1:]]
    starts, ends, axes, steps = (list(map(int, a)) if a is not None else None
                                 for a in (*ins, None, None, None)[:4])
    shape = r.shape(n.inputs[0])
    if shape is not None and axes in ([1], [-len(shape) - 1]) and (steps or [1]) == [1]:
        c = shape[0]
        lo, hi = max(0, min(starts[0], c)), max(0, min(ends[0], c))
        if hi > lo and c % (hi - lo) == 0 and lo % (hi - lo) == 0:
            _split(r, n, c // (hi - lo), lo // (hi - lo), n.outputs[0])
            return
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


def _split(r: Recognizer, n: Node, parts: int, index: int, out: str) -> None:
    x = n.inputs[0]
    if x in r.nhwc:
        raise Unsupported("a channel split of a channels-last map")
    lay = r.add(n, "split", [f"split {parts} {index}"], [r.src(x)], out=out)
    shape = r.shape(x)
    if lay.shape is None and shape is not None:
        lay.shape = (shape[0] // parts, *shape[1:])


def split(r: Recognizer, n: Node) -> None:
    """``torch.chunk`` along the channels: one ``split k i`` layer per output."""
    shape = r.shape(n.inputs[0])
    axis = int(n.attrs.get("axis", 0))
    if shape is None or axis % (len(shape) + 1) != 1:
        raise Unsupported(f"a split along axis {axis}: netdsl splits channels")
    k = len(n.outputs)
    sizes = ([int(v) for v in r.const(n.inputs[1], n)] if len(n.inputs) > 1 and n.inputs[1]
             else [int(v) for v in n.attrs.get("split", [shape[0] // k] * k)])
    if len(set(sizes)) != 1 or sum(sizes) != shape[0]:
        raise Unsupported(f"a split into unequal parts {sizes}: netdsl's parts are equal")
    for i, out in enumerate(n.outputs):
        _split(r, n, k, i, out)


def transpose(r: Recognizer, n: Node) -> None:
    """A map to channels-last and back: ConvNeXt's permutes around LayerNorm and Linear, or
    a token grid (Swin's, ``grid.opens_grid``) and back to a map."""
    from .grid import opens_grid

    x, perm = n.inputs[0], [int(p) for p in n.attrs.get("perm", [])]
    rank = len(perm)
    shape = r.shape(x)
    if rank == 4 and shape and len(shape) == 3 and r.is_tokens(x) and perm == CHANNELS_FIRST[4]:
        r.add(n, "map", ["map"], [r.src(x)])
    elif rank == 4 and shape and len(shape) == 3 and x not in r.nhwc and not r.is_tokens(x) \
            and perm == CHANNELS_LAST[4] and opens_grid(r, n.outputs[0]):
        r.add(n, "grid", ["grid"], [r.src(x)])
    elif x in r.nhwc and perm == CHANNELS_FIRST.get(rank):
        r.value[n.outputs[0]] = r.src(x)  # back to the map it is
        lay = r.layers[r.src(x)]
        lay.value = lay.value or n.outputs[0]
    elif x not in r.nhwc and not r.is_tokens(x) and perm == CHANNELS_LAST.get(rank) and \
            shape and len(shape) == rank - 1:
        r.value[n.outputs[0]] = r.src(x)
        r.nhwc.add(n.outputs[0])
    else:
        raise Unsupported(f"a transpose {perm} other than a map to channels-last and back")


def layernorm(r: Recognizer, n: Node) -> None:
    """LayerNormalization over the last axis: of tokens, vectors or a channels-last map."""
    x = n.inputs[0]
    shape = r.shape(x)
    axis = int(n.attrs.get("axis", -1))
    rank = len(shape) + 1 if shape is not None else 0
    if shape is None or axis % rank != rank - 1 or not _features_last(r, x, shape):
        raise Unsupported("LayerNormalization over other than the last axis of tokens, "
                          "vectors, a token grid or a channels-last map")
    c = shape[-1]
    w = r.const(n.inputs[1], n).reshape(-1) if len(n.inputs) > 1 else np.ones(c, np.float32)
    b = r.const(n.inputs[2], n).reshape(-1) if len(n.inputs) > 2 and n.inputs[2] else \
        np.zeros(c, np.float32)
    if w.size != c or b.size != c:
        raise Unsupported("a LayerNormalization scale or shift of another size than the axis")
    _layernorm(r, n, x, float(n.attrs.get("epsilon", 1e-5)), w, b)


def _features_last(r: Recognizer, x: str, shape: tuple[int, ...]) -> bool:
    """Whether x's last axis is its features: a vector, tokens, a grid, a channels-last map."""
    return len(shape) <= 2 or x in r.nhwc or r.is_tokens(x)


def _layernorm(r: Recognizer, n: Node, x: str, eps: float, w: np.ndarray, b: np.ndarray,
               out: str | None = None) -> None:
    text = "layernorm" if abs(eps - 1e-5) < 1e-12 else f"layernorm eps={eps:g}"
    r.add(n, "layernorm", [text], [r.src(x)], [np.ascontiguousarray(w, np.float32),
                                               np.ascontiguousarray(b, np.float32)],
          out=out, nhwc=x in r.nhwc)


def layer_scale(r: Recognizer, n: Node) -> None:
    """x · γ with γ a learned per-channel constant (C×1×1 on a map, D on tokens): layer scale."""
    (x,), (g,) = ([i for i in n.inputs if not r.is_const(i)] or [None],
                  [i for i in n.inputs if r.is_const(i)])
    shape = r.shape(x) if x else None
    gamma = r.consts[g]
    if shape is None or x in r.nhwc:
        raise Unsupported("multiplying by a constant tensor")
    c = shape[-1] if len(shape) == 2 else shape[0]  # tokens: D; maps and vectors: C
    want = (c, *[1] * (len(shape) - 1)) if len(shape) != 2 else (c,)
    have = list(gamma.shape)
    while len(have) > len(want) and have[0] == 1:
        have.pop(0)
    if tuple(have) != want or c == 1:
        raise Unsupported("multiplying by a constant tensor other than a per-channel layer "
                          "scale")
    name = g.rsplit(".", 1)[-1] if "." in g or g.isidentifier() else ""
    parts = [f"{name} = layerscale" if name.isidentifier() and name != "layerscale"
             else "layerscale"]
    r.add(n, "layerscale", parts, [r.src(x)], [gamma.reshape(want)])


def shape_of(r: Recognizer, n: Node) -> None:
    """Shape of a tensor of known size: a constant (the exporters' view arithmetic)."""
    s = r.g.full.get(n.inputs[0])
    if s is None:
        raise Unsupported("the shape of a tensor whose size is not fixed")
    r.consts[n.outputs[0]] = sizes(n, s)


HANDLERS: dict[str, Callable[[Recognizer, Node], None]] = {
    "Conv": conv, "BatchNormalization": batchnorm,
    "Relu": _simple("relu"), "LeakyRelu": _simple("leakyrelu", _leaky),
    "Elu": _simple("elu", _elu), "Tanh": _simple("tanh"), "Sigmoid": _simple("sigmoid"),
    "Softmax": softmax, "Identity": passthrough, "Dropout": passthrough,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": _simple("gap"),
    "ReduceMean": reduce_mean, "Flatten": flatten, "Gemm": gemm, "Add": add, "Sum": add,
    "Concat": concat, "Mul": mul, "LRN": lrn, "Slice": slice_, "Pad": pad, "MatMul": matmul,
    "Unsqueeze": unsqueeze, "Reshape": reshape, "Split": split, "Transpose": transpose,
    "LayerNormalization": layernorm, "Shape": shape_of,
}

