"""Elementwise functions recognized by what they compute, not by how they are written.

PyTorch's two exporters and netdsl write GELU, SiLU, hard-swish… as different chains of Mul,
Div, Erf, Tanh, Clip… (operand order, constants folded or not, ``x·0.5`` first or last). A
*unary region* is a set of elementwise nodes with scalar constants and one tensor input x whose
inner values are read only inside the region; it is evaluated in float64 on sample points and
compared with each activation netdsl has. Regions are grown from their last node, the latest
node first, so the longest function claims its nodes (hard-swish before the hard-sigmoid
inside it). Regions stay small (``MAX_NODES``): the pass is linear in the model's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .layers import Unsupported
from .read import Node

if TYPE_CHECKING:
    from .recognize import Recognizer

MAX_NODES = 12
X = np.concatenate([np.linspace(-12.0, 12.0, 193), [-0.3, 0.05, 0.7, 2.9, 3.1, 5.9, 6.1]])
_erf = np.vectorize(math.erf)


def _clip(x: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _hsig(x: np.ndarray) -> np.ndarray:
    return _clip(x / 6.0 + 0.5, 0.0, 1.0)


# netdsl's activations: their text and what they compute
KNOWN: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
    ("relu", lambda x: np.maximum(x, 0.0)),
    ("relu6", lambda x: _clip(x, 0.0, 6.0)),
    ("sigmoid", _sigmoid),
    ("tanh", np.tanh),
    ("hsigmoid", _hsig),
    ("hswish", lambda x: x * _hsig(x)),
    ("silu", lambda x: x * _sigmoid(x)),
    ("gelu", lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))),
    ("gelu tanh", lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi)
                                                      * (x + 0.044715 * x ** 3)))),
    ("mish", lambda x: x * np.tanh(np.logaddexp(0.0, x))),
]
KNOWN_VALUES = [(text, fn(X)) for text, fn in KNOWN]


def _attr(n: Node, key: str, default: float) -> float:
    return float(n.attrs.get(key, default))


UNARY: dict[str, Callable[[Node, np.ndarray], np.ndarray]] = {
    "Relu": lambda n, x: np.maximum(x, 0.0),
    "Sigmoid": lambda n, x: _sigmoid(x),
    "Tanh": lambda n, x: np.tanh(x),
    "Erf": lambda n, x: _erf(x),
    "Exp": lambda n, x: np.exp(np.minimum(x, 700.0)),
    "Softplus": lambda n, x: np.logaddexp(0.0, x),
    "Neg": lambda n, x: -x,
    "Abs": lambda n, x: np.abs(x),
    "Sqrt": lambda n, x: np.sqrt(np.maximum(x, 0.0)),
    "Identity": lambda n, x: x,
    "HardSigmoid": lambda n, x: _clip(_attr(n, "alpha", 0.2) * x + _attr(n, "beta", 0.5),
                                      0.0, 1.0),
    "HardSwish": lambda n, x: x * _hsig(x),
    "Gelu": lambda n, x: (KNOWN[8][1] if n.attrs.get("approximate") in (b"tanh", "tanh")
                          else KNOWN[7][1])(x),
    "Mish": lambda n, x: KNOWN[9][1](x),
    "LeakyRelu": lambda n, x: np.where(x >= 0, x, _attr(n, "alpha", 0.01) * x),
}
BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Div": lambda a, b: a / np.where(b == 0, np.nan, b),
    "Pow": lambda a, b: np.power(np.abs(a), b) * np.where((a < 0) & (b % 2 == 1), -1.0, 1.0),
    "Min": np.minimum, "Max": np.maximum,
}
ELEMENTWISE = set(UNARY) | set(BINARY) | {"Clip"}
HAS_HANDLER = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Identity", "Add", "Mul"}


def _tensor_inputs(r: Recognizer, n: Node) -> list[str] | None:
    """The node's non-constant inputs, or None when a constant is not a scalar (a bias)."""
    out = []
    for k, i in enumerate(n.inputs):
        if not i:
            continue
        if i in r.consts:
            if r.consts[i].size != 1:
                return None
        elif r.is_const_like(i):
            return None  # shape arithmetic, folded later: not a tensor function
        elif n.op == "Clip" and k > 0:
            return None  # bounds computed at run time
        else:
            out.append(i)
    return out


def _grow(r: Recognizer, end: Node) -> list[Node] | None:
    """The elementwise nodes feeding ``end`` whose outputs only the region reads."""
    region = [end]
    inside = {id(end)}
    todo = [end]
    while todo:
        n = todo.pop()
        ins = _tensor_inputs(r, n)
        if ins is None:
            return None
        for v in ins:
            p = r.producer.get(v)
            if p is None or id(p) in inside or p.op not in ELEMENTWISE or \
                    r.index[id(p)] in r.absorbed or _tensor_inputs(r, p) is None:
                continue
            if all(id(u) in inside for u in r.users.get(v, [])) and v != r.g.output:
                if len(region) == MAX_NODES:
                    return None
                region.append(p)
                inside.add(id(p))
                todo.append(p)
    return region


def _evaluate(r: Recognizer, region: list[Node], x: str, out: str) -> np.ndarray | None:
    vals: dict[str, np.ndarray] = {x: X}
    order = sorted(region, key=lambda n: r.index[id(n)])
    for n in order:
        ins = []
        for i in n.inputs:
            if not i:
                ins.append(None)
            elif i in vals:
                ins.append(vals[i])
            elif i in r.consts and r.consts[i].size == 1:
                ins.append(np.float64(r.consts[i].reshape(-1)[0]))
            else:
                return None  # reads a tensor from outside: not a function of x alone
        if n.op in UNARY:
            y = UNARY[n.op](n, ins[0])
        elif n.op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else n.attrs.get("min")
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else n.attrs.get("max")
            y = _clip(ins[0], lo, hi)
        else:
            if len(ins) != 2:
                return None
            y = BINARY[n.op](ins[0], ins[1])
        vals[n.outputs[0]] = np.broadcast_to(np.asarray(y, dtype=np.float64), X.shape)
    return vals.get(out)


def identify(y: np.ndarray) -> str | None:
    with np.errstate(all="ignore"):
        for text, ref in KNOWN_VALUES:
            if np.all(np.abs(y - ref) <= 1e-5 * (1.0 + np.abs(ref))):
                return text
    return None


def _match(r: Recognizer, end: Node) -> tuple[str, str, list[Node]] | None:
    region = _grow(r, end)
    if region is None:
        return None
    produced = {n.outputs[0] for n in region}
    # candidate inputs: each tensor read by the region, tried from the earliest (the longest
    # function) on; the nodes between it and the end form the function
    cands = sorted({i for n in region for i in _tensor_inputs(r, n) or [] if i not in produced} |
                   {n.outputs[0] for n in region[1:]},
                   key=lambda v: r.index[id(r.producer[v])] if v in r.producer else -1)
    for x in cands:
        sub = _between(r, region, x)
        if not sub or (len(sub) == 1 and sub[0].op in HAS_HANDLER):
            continue
        with np.errstate(all="ignore"):
            y = _evaluate(r, sub, x, end.outputs[0])
        text = identify(y) if y is not None else None
        if text is not None:
            return text, x, sub
    return None


def _between(r: Recognizer, region: list[Node], x: str) -> list[Node]:
    """The region's nodes computed from ``x`` (a node whose inputs all come from x or from
    such nodes, or constants)."""
    known = {x}
    sub = []
    for n in sorted(region, key=lambda n: r.index[id(n)]):
        ins = _tensor_inputs(r, n) or []
        if ins and all(i in known for i in ins):
            sub.append(n)
            known.add(n.outputs[0])
    return sub if sub and sub[-1] is region[0] else []


def match_functions(r: Recognizer) -> dict[int, Callable[[], None]]:
    """Actions (by the index of each function's last node) adding one activation layer."""
    actions: dict[int, Callable[[], None]] = {}
    for idx in range(len(r.g.nodes) - 1, -1, -1):
        end = r.g.nodes[idx]
        if end.op not in ELEMENTWISE or idx in r.absorbed or len(end.outputs) != 1:
            continue
        found = _match(r, end)
        if found is None:
            continue
        text, x, nodes = found
        r.absorb(*(n for n in nodes if n is not end))
        actions[idx] = _action(r, end, text, x)
    return actions


def _action(r: Recognizer, end: Node, text: str, x: str) -> Callable[[], None]:
    def act() -> None:
        if x in r.consts:
            raise Unsupported("an activation of a constant")
        r.add(end, text.split()[0], [text], [r.src(x)], nhwc=x in r.nhwc)
    return act
