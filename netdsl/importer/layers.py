"""What recognition produces: layers (``Lyr``) whose text keeps channels and strides as holes.

Shared by the recognizer, its handlers and patterns, and the folding that reads the holes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .read import Node

CHANNELS_LAST = {3: [0, 2, 1], 4: [0, 2, 3, 1], 5: [0, 2, 3, 4, 1]}  # by rank
CHANNELS_FIRST = {3: [0, 2, 1], 4: [0, 3, 1, 2], 5: [0, 4, 1, 2, 3]}
# layers whose output has their (first) input's shape: a help where ONNX's shape inference
# stops (after onnxruntime's own ops, or a batch read at run time)
KEEPS_SHAPE = {"relu", "leakyrelu", "elu", "tanh", "sigmoid", "relu6", "hsigmoid", "hswish",
               "silu", "gelu", "mish", "bn", "layernorm", "groupnorm", "layerscale",
               "pos_embed", "attention", "add", "mul", "shuffle", "softmax", "lrn"}
# a value is a token sequence (rank 3) or grid (rank 4) after one of these, until one of those
MAKE_TOKENS = {"patch", "tokens", "grid"}
TAKE_TOKENS = {"token", "avgtokens", "flatten", "map"}


@dataclass(frozen=True, slots=True)
class Hole:
    """A number of a layer's text that may become a block parameter: channels, a stride, a
    kernel size or a window's shift."""

    kind: str  # "c" (channels, groups, features, heads), "s" (stride), "k" (kernel size),
    # "shift" (a window's cyclic shift)
    value: int
    role: str = ""  # a kernel has two places: "" in the keyword (conv3), "opt" (kernel=k)


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
    tokens: bool = False  # the output is a token sequence (L×D), not a 1-D map (C×L)
    value: str = ""  # the ONNX value holding its output (channels-first): verify compares it
    origin_op: str = ""  # that node's op type

    def text(self) -> str:
        return "".join(render_part(p) for p in self.parts)


def origin_ops(lays: list[Lyr]) -> str:
    """The ONNX op types the layers came from (Conv, Add…), for warnings."""
    ops = dict.fromkeys(lay.origin_op or lay.kind for lay in lays)
    return ", ".join(ops)


def render_part(p: Part) -> str:
    if isinstance(p, str):
        return p
    if p.kind == "s":
        return "" if p.value == 1 else f"/{p.value}"
    if p.kind == "shift":
        return "" if p.value == 0 else f" shift={p.value}"
    if p.role == "opt":
        return ""  # a literal kernel is written in the keyword
    return str(p.value)


class Unsupported(Exception):
    """A node with no netdsl meaning; ``recognize`` turns it into a located NetdslError."""


@dataclass
class Net:
    layers: dict[int, Lyr]
    output: int
    warnings: list[str]


def dims(values: list[int] | None, default: int, n: int, what: str) -> tuple[int, ...]:
    v = tuple(int(x) for x in (values or [default] * n))
    if len(v) != n or not 1 <= n <= 3:
        raise Unsupported(f"{what} {list(v)}: netdsl layers are 1-, 2- or 3-D")
    return v


def pads(node: Node, n: int) -> tuple[int, ...]:
    if node.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Unsupported(f"auto_pad={node.attrs['auto_pad']!r}: export with explicit pads")
    p = [int(x) for x in node.attrs.get("pads", [0] * 2 * n)]
    if len(p) != 2 * n or p[:n] != p[n:]:
        raise Unsupported(f"asymmetric padding {p}: netdsl pads both sides equally")
    return tuple(p[:n])


def ksize(v: tuple[int, ...]) -> str:
    """``3`` when every axis agrees, else ``1x7`` / ``1x2x2`` (netdsl's size notation)."""
    return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))


def common_prefix(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The longest module path all ``paths`` start with."""
    if not paths:
        return ()
    first = paths[0]
    n = len(first)
    for p in paths[1:]:
        n = min(n, len(p))
        for i in range(n):
            if p[i] != first[i]:
                n = i
                break
    return first[:n]
