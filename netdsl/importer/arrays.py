"""ONNX ops evaluated with numpy: constant folding, shapes ONNX's inference leaves unknown.

The exporters leave shape arithmetic in the graph (sizes read with ``Shape``, gathered,
divided, concatenated into a ``Reshape``'s target; torchvision's Swin builds its padding and
shift mask that way). ``propagate`` walks the graph once in order: values computed from
constants only are "constant-like" and folded where ``FOLD`` can, and a value whose shape
ONNX's inference did not give gets it from its inputs' (data movement evaluated on zeros,
elementwise ops by broadcasting), so that a ``Shape`` read of it folds in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..limits import MAX_FOLD_ELEMENTS
from .layers import Unsupported
from .read import Graph, Node

if TYPE_CHECKING:
    from .recognize import Recognizer


def constant(node: Node) -> np.ndarray:
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


def _axes(node: Node, ins: list[np.ndarray]) -> tuple[int, ...] | None:
    axes = node.attrs.get("axes") if len(ins) < 2 else [int(a) for a in ins[1]]
    return tuple(int(a) for a in axes) if axes is not None else None


def _slice(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    starts, ends = ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 else range(len(starts))
    steps = ins[4] if len(ins) > 4 else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


# Shape arithmetic on constants, as the exporters leave it (sizes read with Shape, gathered,
# concatenated into a Reshape's target): evaluated here, so the Reshape sees a constant.
FOLD: dict[str, Callable[[Node, list[np.ndarray]], np.ndarray]] = {
    "Reshape": lambda n, i: i[0].reshape([int(d) if d else i[0].shape[k]
                                          for k, d in enumerate(i[1])]),
    "Transpose": lambda n, i: np.transpose(i[0], n.attrs.get("perm")),
    "Unsqueeze": lambda n, i: np.expand_dims(i[0], _axes(n, i)),
    "Squeeze": lambda n, i: np.squeeze(i[0], _axes(n, i)),
    "Gather": lambda n, i: np.take(i[0], i[1].astype(np.int64), axis=int(n.attrs.get("axis", 0))),
    "Concat": lambda n, i: np.concatenate([np.atleast_1d(x) for x in i],
                                          axis=int(n.attrs.get("axis", 0))),
    "Slice": _slice,
    "Add": lambda n, i: i[0] + i[1], "Sub": lambda n, i: i[0] - i[1],
    "Mul": lambda n, i: i[0] * i[1],
    "Div": lambda n, i: i[0] // i[1] if i[0].dtype.kind == "i" else i[0] / i[1],
    "Sqrt": lambda n, i: np.sqrt(i[0]), "Mod": lambda n, i: np.mod(i[0], i[1]),
    "Equal": lambda n, i: np.equal(i[0], i[1]), "Where": lambda n, i: np.where(*i),
    "Max": lambda n, i: np.maximum(i[0], i[1]), "Min": lambda n, i: np.minimum(i[0], i[1]),
    "ConstantOfShape": lambda n, i: np.full(
        _bounded(i[0]), constant(n).reshape(-1)[0] if "value" in n.attrs else 0.0),
    "Expand": lambda n, i: i[0] * np.ones(_bounded(np.broadcast_shapes(
        i[0].shape, tuple(int(d) for d in i[1]))), dtype=i[0].dtype),
    "Pad": lambda n, i: _pad(n, i),
    "Range": lambda n, i: np.arange(i[0], i[1], i[2]) if _bounded(
        [max(0, int(np.ceil((float(i[1]) - float(i[0])) / float(i[2]))))]) else None,
    "ScatterND": lambda n, i: _scatter_nd(i[0], i[1], i[2]),
    "Not": lambda n, i: np.logical_not(i[0]), "Pow": lambda n, i: np.power(i[0], i[1]),
    "Neg": lambda n, i: -i[0], "Identity": lambda n, i: i[0],
    "Dropout": lambda n, i: i[0],  # inference
    "Flatten": lambda n, i: i[0].reshape(int(np.prod(i[0].shape[:int(n.attrs.get("axis", 1))])),
                                         -1),
    "Cast": lambda n, i: i[0].astype(CAST.get(int(n.attrs.get("to", 1)), i[0].dtype)),
    "Shape": lambda n, i: sizes(n, i[0].shape),
}


def sizes(n: Node, dims: tuple[int, ...]) -> np.ndarray:
    """What a Shape node gives for a tensor of shape ``dims`` (its start and end applied)."""
    return np.asarray(dims, np.int64)[n.attrs.get("start", 0):n.attrs.get("end", len(dims))]


def _bounded(dims: object) -> list[int]:
    """Sizes of an array about to be made, refused past MAX_FOLD_ELEMENTS (a model from a
    stranger may ask for any size)."""
    shape = [int(d) for d in np.asarray(dims).reshape(-1)]
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=object)) > MAX_FOLD_ELEMENTS:
        raise Unsupported(f"a constant of shape {shape}: over the {MAX_FOLD_ELEMENTS:,} "
                          "elements netdsl folds")
    return shape


def _pad(n: Node, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    p = [int(v) for v in (ins[1] if len(ins) > 1 else n.attrs.get("pads", []))]
    fill = ins[2].reshape(-1)[0] if len(ins) > 2 and ins[2] is not None else 0
    if (n.attrs.get("mode", b"constant") not in (b"constant", "constant") or len(ins) > 3
            or any(v < 0 for v in p) or len(p) != 2 * x.ndim):
        raise Unsupported("a padding other than with a constant on every axis")
    _bounded([s + a + b for s, a, b in zip(x.shape, p[:x.ndim], p[x.ndim:], strict=True)])
    return np.pad(x, list(zip(p[:x.ndim], p[x.ndim:], strict=True)), constant_values=fill)


def _scatter_nd(x: np.ndarray, index: np.ndarray, updates: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[tuple(np.moveaxis(index.astype(np.int64), -1, 0))] = updates
    return out


# ONNX's TensorProto data types netdsl folds: float, uint8, int8, int32, int64, bool, double
CAST = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 9: np.bool_,
        11: np.float64}

# ops whose output has their first input's shape, and ops that broadcast their inputs
SAME_SHAPE = {"Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Softmax", "LayerNormalization", "Cast",
              "Identity", "Dropout", "Neg", "Not", "Abs", "Exp", "Log", "LeakyRelu", "Elu",
              "HardSigmoid", "HardSwish", "Clip", "BatchNormalization", "Reciprocal"}
BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Equal", "Where", "Max", "Min", "Mod"}
# ops that only move values (a region of them is evaluated on element numbers)
MOVES = {"Reshape", "Transpose", "Slice", "Concat", "Pad", "Expand", "Gather", "Squeeze",
         "Unsqueeze", "Flatten", "Identity", "Dropout"}


def propagate(g: Graph, consts: dict[str, np.ndarray]) -> set[str]:
    """The constant-like values (computed from constants only; ``consts`` gets those that
    fold now), with ``g.shapes``/``g.full`` completed where the batch size is fixed."""
    like: set[str] = set()
    for n in g.nodes:
        outs = [o for o in n.outputs if o]
        if n.op == "Constant":
            like.update(outs)
        elif n.op == "Shape" and n.inputs[0] not in consts and n.inputs[0] not in like and \
                n.inputs[0] in g.full:
            like.update(outs)
            consts[outs[0]] = sizes(n, g.full[n.inputs[0]])
        elif n.inputs and all(not i or i in consts or i in like for i in n.inputs):
            like.update(outs)
            if n.op in FOLD and all(not i or i in consts for i in n.inputs):
                try:
                    consts[outs[0]] = np.asarray(FOLD[n.op](n, [consts[i] for i in n.inputs
                                                                if i]))
                except Exception:  # folded again (or refused, saying why) in its turn
                    pass
        elif g.batch is not None and outs and outs[0] not in g.full:
            s = _shape(g, n, consts)
            if s is not None:
                g.full[outs[0]], g.shapes[outs[0]] = s, s[1:]
    return like


def _shape(g: Graph, n: Node, consts: dict[str, np.ndarray]) -> tuple[int, ...] | None:
    ins = [g.full.get(i) if i not in consts else consts[i].shape for i in n.inputs if i]
    if not ins or any(s is None for s in ins):
        return None
    try:
        if n.op in SAME_SHAPE:
            return tuple(ins[0])
        if n.op in BROADCAST:
            return tuple(np.broadcast_shapes(*ins))
        if n.op == "MatMul" and len(ins[0]) >= 2 and len(ins[1]) >= 2:
            return (*np.broadcast_shapes(ins[0][:-2], ins[1][:-2]), ins[0][-2], ins[1][-1])
        if n.op in MOVES and all(int(np.prod(s, dtype=object)) <= MAX_FOLD_ELEMENTS for s in ins):
            vals = [consts[i] if i in consts else np.zeros(g.full[i], np.float32)
                    for i in n.inputs if i]
            return tuple(np.asarray(FOLD[n.op](n, vals)).shape)
    except Exception:  # a shape left unknown is only less help
        return None
    return None


def move(r: Recognizer, nodes: Iterable[Node], x: str, value: np.ndarray
         ) -> dict[str, np.ndarray]:
    """The values the data-movement ``nodes`` compute when ``x`` holds ``value``."""
    vals = {x: value}
    for n in nodes:
        ins = [vals[i] if i in vals else r.consts[i] if i in r.consts else None
               for i in n.inputs]
        while ins and ins[-1] is None and not n.inputs[len(ins) - 1]:
            ins.pop()  # trailing optional inputs left out
        if any(v is None for v in ins) or n.op not in FOLD:
            raise Unsupported(f"a {n.op} moving values in a way netdsl cannot follow")
        try:
            vals[n.outputs[0]] = np.asarray(FOLD[n.op](n, ins))
        except (ValueError, IndexError, TypeError) as e:
            raise Unsupported(f"a {n.op} that netdsl cannot follow ({e})") from None
    return vals


def numbers(shape: tuple[int, ...]) -> np.ndarray:
    """An array of ``shape`` whose elements are numbered 1, 2, … in order (0 is padding):
    data movement evaluated on it shows where each value goes."""
    n = int(np.prod(shape, dtype=object))
    if n > MAX_FOLD_ELEMENTS:
        raise Unsupported(f"a value of {n:,} elements: over the {MAX_FOLD_ELEMENTS:,} whose "
                          "data movement netdsl checks")
    return np.arange(1, n + 1, dtype=np.float64).reshape(shape)
