"""Nested statements → spec text with the exporter's hierarchy, block definitions and ×n.

1. ``Renderer`` walks the items, grouping consecutive ones by the next segment of their module
   path (``layer1`` → ``layer1.0``): a scope whose children are all block instances is a stage
   (``layer2 = (…; … ×3)``), a scope holding only layers is an instance (a block call), any
   other scope is written inline. Statements are token lists whose channel and stride numbers
   are ``Hole``s, so an instance's *template* (its text with the holes blanked) is a hash key.
2. ``blocks.Blocks`` groups the instances into parametric blocks and ``blocks.Writer`` prints
   the text (see there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import ops
from .layers import common_prefix
from .recognize import Hole, Lyr
from .structure import Concat, Dense, Flat, Item, L, Residual, Scale

CHAIN_HEADS = {"conv", "fc", "bn"}
ACTIVATIONS = {"relu", "leakyrelu", "elu", "tanh", "sigmoid", "relu6", "hsigmoid", "hswish",
               "silu", "gelu", "mish"}
INDENT = "    "
CONSTRUCTS = ("residual", "concat", "scale", "dense")


@dataclass(eq=False)
class Instance:
    """One scope written as a block call: its name, its statements and their template."""

    name: str  # the scope's own name (layer1.0 → "0", inception3a)
    base: str  # block name it suggests
    body: list[list]  # statements (token lists)
    key: tuple = ()
    values: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # per value: "c" or "s"
    block: Block | None = None


@dataclass(eq=False)
class Block:
    name: str
    key: tuple
    params: list[str]  # names, channels first then strides
    defaults: dict[str, int]
    exprs: list[str | None]  # per hole: the expression, or None for a literal
    sources: list[int]  # per parameter: the hole giving its value
    body: list[list]  # a representative instance's statements


Stmt = list  # tokens: str | Hole | Instance | Stage | Body | Branches | Inline | Group


@dataclass(eq=False)
class Stage:
    calls: list[Stmt]  # layer2 = (bottleneck(128, 2); bottleneck(128) ×3)


@dataclass(eq=False)
class Body:
    stmts: list[Stmt]  # one statement per line, indented, inside { }


@dataclass(eq=False)
class Branches:
    branches: list[list[Stmt]]  # concat's branches, one per line, separated by |


@dataclass(eq=False)
class Inline:
    stmts: list[Stmt]  # a; b; c on one line


@dataclass(eq=False)
class Named:
    """``name = `` before a call, left out when the call is of a block and the name says
    nothing: a numbered scope (mbconv3, transition2) is what netdsl names an unnamed call
    itself, a name used for several calls (MobileNetV2's ``conv`` in each ``features.k``) names
    none; unnamed, equal calls fold into ×n."""

    name: str
    inst: Instance
    counts: dict[str, int]

    def shown(self) -> bool:
        return self.inst.block is None or not (
            re.fullmatch(r"[A-Za-z_]+[0-9]+", self.name) or self.counts[self.name] > 1)


@dataclass(eq=False)
class Group:
    stmts: list[Stmt]  # (a; b), or a alone


class Renderer:
    def __init__(self, shortcut_a: bool = False) -> None:
        self.shortcut_a = shortcut_a  # the header says `default residual shortcut=A`
        self.instances: list[Instance] = []
        self._prefix: dict[int, tuple[str, ...]] = {}
        self.names: dict[str, int] = {}  # named calls at the top, by name

    # ---- module paths -----------------------------------------------------------------------
    def prefix(self, item: Item) -> tuple[str, ...]:
        key = id(item)
        if key not in self._prefix:
            if isinstance(item, L):
                p = item.lay.path
            else:
                p = common_prefix([lay.path for lay in _layers(item)])
            self._prefix[key] = p
        return self._prefix[key]

    def runs(self, items: list[Item], depth: int) -> list[tuple[str | None, list[Item]]]:
        out: list[tuple[str | None, list[Item]]] = []
        for it in items:
            p = self.prefix(it)
            key = p[depth] if len(p) > depth else None
            if out and out[-1][0] == key and key is not None:
                out[-1][1].append(it)
            else:
                out.append((key, [it]))
        return out

    def is_group(self, key: str | None, run: list[Item], depth: int) -> bool:
        if key is None:
            return False
        return len(run) > 1 or len(self.prefix(run[0])) > depth + 1 or not isinstance(run[0], L)

    # ---- sequences ----------------------------------------------------------------------------
    def seq(self, items: list[Item], depth: int, top: bool = False) -> list[Stmt]:
        """Statements for ``items``; ``top``: scopes may be named (``layer1 = …``)."""
        out: list[Stmt] = []
        leaves: list[Lyr] = []
        for key, run in self.runs(items, depth):
            if not self.is_group(key, run, depth):
                for it in run:
                    if isinstance(it, L):
                        leaves.append(it.lay)
                    else:
                        out += chains(leaves, depth)
                        leaves = []
                        out.append(self.item(it, depth))
                continue
            out += chains(leaves, depth)
            leaves = []
            out += self.group(str(key), run, depth + 1, top)
        return out + chains(leaves, depth)

    def group(self, name: str, items: list[Item], depth: int, top: bool) -> list[Stmt]:
        runs = self.runs(items, depth)
        named = top and _ident(name)
        if named and all(self.is_group(k, r, depth) and self.is_instance(r, depth + 1) or
                         self.is_module(k, r, depth) for k, r in runs):
            # a stage: layer2 = (bottleneck(128, 2); …), or Swin's features, whose patch
            # merging modules are one layer each
            calls = []
            for k, r in runs:
                body = self.seq(r, depth + 1)
                calls += [[self.instance(str(k), body, r)]] if _worth(body, False) else body
            return [[f"{name} = ", Stage(calls)]]
        if not self.is_instance(items, depth):
            return self.seq(items, depth, top)
        body = self.seq(items, depth, top)
        construct = named and len(body) == 1 and str(body[0][0]).startswith(CONSTRUCTS)
        if not (_worth(body, top) or construct) or (top and len(body) > 8):
            return body  # written in place
        inst = self.instance(name, body, items)
        if named:
            self.names[name] = self.names.get(name, 0) + 1
            return [[Named(name, inst, self.names), inst]]
        return [[inst]]

    def is_module(self, key: str | None, run: list[Item], depth: int) -> bool:
        """One layer with weights, not one that chains (conv +bn), that is a numbered module
        of its own (Swin's patch merging, ``features.2``)."""
        return key is not None and key.isdigit() and len(run) == 1 and \
            isinstance(run[0], L) and bool(run[0].lay.tensors) and \
            run[0].lay.kind not in CHAIN_HEADS

    def is_instance(self, items: list[Item], depth: int) -> bool:
        """Only layers and constructs below: no scope that would itself be a call."""
        return all(not self.is_group(k, r, depth) or self._flat(r, depth + 1)
                   for k, r in self.runs(items, depth))

    def _flat(self, items: list[Item], depth: int) -> bool:
        return all(not self.is_group(k, r, depth) for k, r in self.runs(items, depth))

    def instance(self, name: str, body: list[Stmt], items: list[Item]) -> Instance:
        inst = Instance(name, _base(name, items), body)
        inst.key, inst.values, inst.kinds = template(body)
        self.instances.append(inst)
        return inst

    # ---- constructs -----------------------------------------------------------------------------
    def item(self, it: Item, depth: int) -> Stmt:
        d = max(depth, len(self.prefix(it)))
        if isinstance(it, Residual):
            words = " shortcut=A" if it.auto == "A" and not self.shortcut_a else ""
            s: Stmt = [f"residual{words} {{", Body(self.seq(it.body, d)), "}"]
            if it.shortcut and not it.auto:
                s += [" shortcut {", Body(self.seq(it.shortcut, d)), "}"]
            return s
        if isinstance(it, Concat):
            return ["concat {", Branches([self.seq(b, d) or [["identity"]]
                                          for b in it.branches]), "}"]
        if isinstance(it, Scale):
            return ["scale { ", Inline(self.seq(it.gate, d)), " }"]
        if isinstance(it, Dense):
            return ["dense { ", Inline([[Group(self.seq(u, d))] for u in it.units]), " }"]
        if isinstance(it, Flat):
            return ["(", Body(flat_statements(it.layers, it.entry)), ")"]
        raise AssertionError(it)


def flat_statements(lays: list[Lyr], entry: int) -> list[Stmt]:
    """One statement per layer wired with ``from``; ``entry`` is read as ``input``. A layer
    reading only the statement before it needs no ``from``; one read elsewhere is named."""
    ids = {lay.id for lay in lays}
    named = {i for k, lay in enumerate(lays) for i in lay.inputs if i in ids and
             (k == 0 or lay.inputs != [lays[k - 1].id])}
    out = []
    for k, lay in enumerate(lays):
        prev = lays[k - 1].id if k else entry
        s: list = [f"n{lay.id} = "] if lay.id in named else []
        s += list(lay.parts)
        if lay.inputs != [prev]:
            refs = ", ".join("input" if i == entry else f"n{i}" for i in lay.inputs)
            s.append(f" from {refs}")
        out.append(s)
    return out


def _worth(body: list[Stmt], top: bool) -> bool:
    """A scope worth a block call: a construct, or several statements (three, nested)."""
    return any(_multiline(s) for s in body) or len(body) >= (2 if top else 3)


def chains(lays: list[Lyr], depth: int = 0) -> list[Stmt]:
    """conv +bn +relu on one line: a weight layer, then BN, then an activation. A lone layer
    with weights keeps its module's name in its scope (``fc = FC-1000``: ``fc.weight``; in a
    Swin block ``attn = wattention …``: ``features.1.0.attn.qkv.weight``)."""
    out = [_named(s, lay, depth) if len(s) == len(lay.parts) else s
           for s, lay in _chains(lays)]
    return out


def _named(s: Stmt, lay: Lyr, depth: int) -> Stmt:
    if " = " in str(s[0]):
        return s  # the layer names itself (a tensor without a module: layer_scale = …)
    name = lay.path[depth] if len(lay.path) == depth + 1 else ""
    auto = re.fullmatch(rf"{lay.kind}\d+", name) is not None  # conv1, fc1: netdsl's own
    return [f"{name} = ", *s] if lay.tensors and _ident(name) and not auto else s


def _chains(lays: list[Lyr]) -> list[tuple[Stmt, Lyr]]:
    out: list[tuple[Stmt, Lyr]] = []
    cur: Stmt = []
    head = lays[0] if lays else None
    state = ""
    for lay in lays:
        if cur and ((lay.kind == "bn" and state in ("conv", "fc")) or
                    (lay.kind in ACTIVATIONS and state in ("conv", "fc", "bn"))):
            cur += [" +", *lay.parts]
            state = "act" if lay.kind in ACTIVATIONS else "bn"
            continue
        if cur:
            out.append((cur, head))  # type: ignore[arg-type]
        cur, head = list(lay.parts), lay
        state = lay.kind if lay.kind in CHAIN_HEADS else "other"
    if cur:
        out.append((cur, head))  # type: ignore[arg-type]
    return out


def _multiline(s: Stmt) -> bool:
    return any(isinstance(t, (Body, Branches)) or
               (isinstance(t, Instance) and any(_multiline(b) for b in t.body)) for t in s)


def _children(t: object) -> list[Stmt]:
    if isinstance(t, Stage):
        return t.calls
    if isinstance(t, (Body, Inline, Group)):
        return t.stmts
    if isinstance(t, Branches):
        return [s for b in t.branches for s in b]
    return []


def template(body: list[Stmt]) -> tuple[tuple, list[int], list[str]]:
    """The statements with holes blanked (a hashable key), the holes' values and kinds."""
    key: list = []
    values: list[int] = []
    kinds: list[str] = []

    def walk(tokens: Stmt) -> None:
        for t in tokens:
            if isinstance(t, str):
                key.append(t)
            elif isinstance(t, Hole):
                key.append("#" + t.kind)
                values.append(t.value)
                kinds.append(t.kind)
            elif isinstance(t, Instance):
                key.append(("call", t.key))
                values.extend(t.values)
                kinds.extend(t.kinds)
            else:
                key.append(type(t).__name__)
                if isinstance(t, Branches):
                    key.append(tuple(len(b) for b in t.branches))
                for c in _children(t):
                    walk(c)
            key.append("|")
        key.append(";")

    for s in body:
        walk(s)
    return tuple(key), values, kinds


def _layers(item: Item) -> list[Lyr]:
    from .structure import layers_of

    return layers_of([item])


def _ident(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)) and name.lower() not in RESERVED


RESERVED = {"input", "from", "block", "param", "network", "default", "include", "activation",
            "cite", "init", "on", "off", "x"}


def _base(name: str, items: list[Item]) -> str:
    """The block name an instance suggests: its scope without the index, or what it holds."""
    base = re.sub(r"[0-9].*$", "", name).strip("_.")
    res = len(items) == 1 and isinstance(items[0], Residual)
    if _inverted(_flatten(items[0].body if res else items)):  # MobileNetV2's, whatever its
        return "inverted_res" if res else "inverted"  # scope is called
    if base and _ident(base) and ops.lookup(base)[0] is None:
        return base
    res = [i for i in items if isinstance(i, Residual)]
    if res:  # name it by its body's convolutions, as the ResNet paper does
        convs = sum(1 for lay in _flatten(res[0].body) if lay.kind == "conv")
        return "bottleneck" if convs >= 3 else "basic" if convs == 2 else "res_block"
    if any(isinstance(i, Concat) for i in items):
        return "mixed"
    return "unit"


def _inverted(lays: list[Lyr]) -> bool:
    """A depthwise convolution followed by a linear 1×1 projection: an inverted residual."""
    convs = [lay for lay in lays if lay.kind == "conv"]
    if len(convs) < 2 or not convs[-1].text().startswith("conv1-") or \
            lays[-1].kind not in ("bn", "conv"):  # linear: no activation (BN folded or not)
        return False
    dw = convs[-2]
    groups = [p.value for k, p in enumerate(dw.parts) if isinstance(p, Hole)
              and k and dw.parts[k - 1] == " groups="]
    return bool(groups) and groups[0] == dw.tensors[0].shape[0] > 1


def _flatten(items: list[Item]) -> list[Lyr]:
    from .structure import layers_of

    return layers_of(items)
