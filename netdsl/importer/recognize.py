"""ONNX nodes → netdsl layers: a DAG of ``Lyr``, each one layer of the papers' notation.

The pass runs in three rounds. Elementwise functions first (``functions``): a chain of Mul,
Erf, Tanh, Clip… with one tensor input that computes GELU, SiLU, hard-swish… becomes that one
activation, whatever order the exporter wrote it in. Then the other multi-node patterns
(``patterns``: LRN's lowering, MatMul + Add, LayerNorm and GroupNorm decomposed, channel
shuffle, attention), anchored at one of their nodes, their inner nodes absorbed. Then one
handler per ONNX op type (``handlers``). Pass-through nodes (Identity, Dropout, a Flatten
feeding an FC) alias their input; shape arithmetic on constants is folded. A map transposed to
channels-last (ConvNeXt's ``permute``) is followed as such: LayerNorm, FC and activations on it
are the map's own LayerNorm, 1×1 convolutions and activations, until it is transposed back.
The torch exporters' node names (``/layer1/layer1.0/conv1/Conv``), the dynamo exporter's
scope metadata and netdsl's own names (``layer1.0.conv1``) give each layer its module path,
from which ``fold`` recovers the blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import NetdslError
from . import grid, handlers, patterns, tokens
from .arrays import FOLD, constant, propagate
from .functions import match_functions
from .layers import (
    CHANNELS_FIRST,
    KEEPS_SHAPE,
    MAKE_TOKENS,
    TAKE_TOKENS,
    Hole,
    Lyr,
    Net,
    Part,
    Unsupported,
    render_part,
)
from .read import Graph, Node

HANDLERS = handlers.HANDLERS | tokens.HANDLERS
# window attention before the sequences' attention, fused attention before MatMul + Add
PATTERNS = grid.PATTERNS + tokens.PATTERNS + patterns.PATTERNS

__all__ = ["Hole", "Lyr", "Net", "Part", "Recognizer", "Unsupported", "describe", "recognize",
           "render_part"]



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
        self.index = {id(n): i for i, n in enumerate(g.nodes)}
        self.absorbed: set[int] = set()
        self.warnings: list[str] = []
        self.nhwc: set[str] = set()  # values that are a map transposed to channels-last
        self._const_like: set[str] = set()

    # ---- helpers ---------------------------------------------------------------------------
    def const(self, name: str, node: Node) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        raise Unsupported(f"input '{name}' must be a constant (a weight) for netdsl")

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def is_const_like(self, name: str) -> bool:
        """A constant, or computed from constants only (a transposed weight): what a pattern
        may treat as a constant before the nodes folding it have run."""
        return not name or name in self.consts or name in self._const_like

    def src(self, name: str) -> int:
        if name not in self.value:
            raise Unsupported(f"input '{name}' is computed by an op netdsl cannot follow")
        return self.value[name]

    def add(self, node: Node, kind: str, parts: list[Part], inputs: list[int],
            tensors: list[np.ndarray] = (), out: str | None = None,
            nhwc: bool = False) -> Lyr:
        """A new layer computing ONNX value ``out`` (the node's first output by default);
        ``nhwc``: that value is the layer's map transposed to channels-last."""
        out = out or node.outputs[0]
        lid = len(self.layers)
        path = self.path_of(node)
        shape = self.g.shapes.get(out)
        if nhwc:
            self.nhwc.add(out)
            if shape is not None:
                shape = tuple(shape[i - 1] for i in CHANNELS_FIRST[len(shape) + 1][1:])
        if shape is None and inputs and kind in KEEPS_SHAPE:
            shape = self.layers[inputs[0]].shape
        elif shape is None and kind == "cls" and self.layers[inputs[0]].shape:
            length, d = self.layers[inputs[0]].shape
            shape = (length + 1, d)
        tokens = kind in MAKE_TOKENS or (kind not in TAKE_TOKENS and
                                         any(self.layers[i].tokens for i in inputs))
        lay = Lyr(lid, kind, parts, inputs, path, list(tensors), node.name, shape, tokens,
                  "" if nhwc else out, node.op)
        self.layers[lid] = lay
        self.value[out] = lid
        return lay

    def sizes_only(self, n: Node) -> bool:
        """A node that only computes with sizes (Shape, and what it feeds): not data."""
        return all(self.is_const_like(o) for o in n.outputs if o)

    def one_layer(self, region: list[Node], x: str, y: str) -> bool:
        """Whether ``region`` can become one layer from x to y: its data inputs come from x
        or from inside, and what it computes is read only inside (or for its size), but y."""
        inside = {id(n) for n in region}
        made = {o for n in region for o in n.outputs if o}
        for n in region:
            if any(i and i not in made and i != x and not self.is_const_like(i)
                   for i in n.inputs):
                return False
            if any(o and o != y and any(id(u) not in inside and not self.sizes_only(u)
                                        for u in self.users.get(o, [])) for o in n.outputs):
                return False
        return y in made

    def path_of(self, node: Node) -> tuple[str, ...]:
        """The module a node belongs to: the dynamo exporter's scope, else the node's name."""
        return tuple(node.scope.split(".")) if node.scope else module_path(node.name)

    def alias(self, node: Node, src: str, out: str | None = None) -> None:
        out = out or node.outputs[0]
        if src in self.consts:
            self.consts[out] = self.consts[src]
        else:
            self.value[out] = self.src(src)
            if src in self.nhwc:
                self.nhwc.add(out)

    def absorb(self, *nodes: Node) -> None:
        """Inner nodes of a pattern: recognized with it, never on their own."""
        self.absorbed.update(self.index[id(n)] for n in nodes)

    def producing(self, value: str, *ops: str) -> Node | None:
        """The node computing ``value`` if its op is one of ``ops`` and only one node reads it."""
        p = self.producer.get(value)
        if p is None or p.op not in ops or self.single_user(value) is None:
            return None
        return p

    def scalar(self, value: str) -> float | None:
        """A constant holding one number, else None."""
        c = self.consts.get(value)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    def shape(self, value: str) -> tuple[int, ...] | None:
        """A value's shape without the batch axis: ONNX's inference, else the layer's own."""
        s = self.g.shapes.get(value)
        if s is None and value in self.value:
            s = self.layers[self.value[value]].shape
        return s

    def is_tokens(self, value: str) -> bool:
        return value in self.value and self.layers[self.value[value]].tokens

    def single_user(self, value: str) -> Node | None:
        us = self.users.get(value, [])
        return us[0] if len(us) == 1 and value != self.g.output else None

    # ---- the pass ----------------------------------------------------------------------------
    def run(self) -> Net:
        for node in self.g.nodes:
            if node.op == "Constant":
                self.consts[node.outputs[0]] = self.guard(node, constant, node)
        self._const_like = propagate(self.g, self.consts)
        actions = match_functions(self)  # elementwise functions, the longest first
        for idx, node in enumerate(self.g.nodes):  # other multi-node patterns
            if idx in self.absorbed or idx in actions:
                continue
            for pattern in PATTERNS:
                act = self.guard(node, pattern, self, node)
                if isinstance(act, tuple):  # anchored at another node: (that node, action)
                    actions[self.index[id(act[0])]] = act[1]
                    break
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
                if node.op not in FOLLOWS_NHWC and any(i in self.nhwc for i in node.inputs):
                    self.guard(node, _channels_last, node)
                self.guard(node, handler, self, node)
        if self.g.output not in self.value:
            raise NetdslError("the model's output is a constant, not computed from its input",
                              path=self.g.path)
        if self.g.output in self.nhwc:
            raise NetdslError("the model's output is a map transposed to channels-last, which "
                              "netdsl cannot write", path=self.g.path,
                              hint="transpose the output back to channels-first")
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
        if node.op in FOLD:
            self.consts[node.outputs[0]] = np.asarray(FOLD[node.op](node, ins))
        else:
            raise Unsupported("an op computing on constants only: export with constant "
                              "folding on")


def module_path(name: str) -> tuple[str, ...]:
    """``/layer1/layer1.0/conv1/Conv`` → (layer1, 0, conv1); ``layer1.0.conv1`` → the same.

    A segment repeats the names before it that it is inside (``/features/features.2/conv/
    conv.0/conv.0.0/Conv``: a Sequential's children are named after it): it replaces them.
    """
    if name.startswith("/"):
        segs = [s for s in name.split("/") if s][:-1]  # the last one is the op
        path: list[str] = []
        for s in segs:
            for k in range(len(path), 0, -1):
                if s.startswith(".".join(path[-k:]) + "."):
                    path = path[:-k] + s.split(".")
                    break
            else:
                if not path or s != path[-1]:
                    path.extend(s.split("."))
        return tuple(p for p in path if p)
    base = name.split("/")[0]
    return tuple(base.split(".")) if base and "::" not in base else ()


# the ops that may read a channels-last map (their handlers keep it so)
FOLLOWS_NHWC = {"Transpose", "LayerNormalization", "MatMul", "Relu", "Sigmoid", "Tanh",
                "LeakyRelu", "Elu", "Identity", "Dropout"}


def _channels_last(node: Node) -> None:
    raise Unsupported("it reads a map transposed to channels-last, which netdsl follows only "
                      "through LayerNorm, FC and activations")


def _unknown(node: Node) -> None:
    raise Unsupported("this op has no netdsl meaning")


def recognize(g: Graph) -> Net:
    return Recognizer(g).run()


def describe(lay: Lyr) -> str:
    return f"{lay.text()} (from ONNX node '{lay.origin}')"

