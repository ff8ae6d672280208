"""The layer DAG → nested statements: sequences, residual, concat, scale and dense blocks.

Every join (add, concat, mul) is matched with its fork, the join's immediate dominator, and
each of its inputs is walked back to that fork. A region whose edges are not all accounted for
that way is not series-parallel: that region alone (from the fork to the join, when nothing
inside it is read from outside; else the next enclosing one) becomes a ``Flat`` item, written
with ``from`` (the DAG escape), and the rest of the network is still nested and folded.
Linear in the number of layers for nested networks (networkx's dominators, then one walk per
edge); each flat region costs one more walk over its layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .layers import origin_ops
from .recognize import Lyr, Net


@dataclass
class L:
    lay: Lyr


@dataclass
class Residual:
    body: list
    shortcut: list | None  # None: the identity
    join: Lyr
    auto: str = ""  # the shortcut is netdsl's own: "B" projection, "A" zero-padding


@dataclass
class Concat:
    branches: list[list]
    join: Lyr


@dataclass
class Scale:
    gate: list
    join: Lyr


@dataclass
class Dense:
    units: list[list]
    join: Lyr
    concats: list[Lyr] = field(default_factory=list)


@dataclass
class Flat:
    """A region that is not nested blocks: its layers in order, reading ``entry`` (the fork)."""

    layers: list[Lyr]
    entry: int
    join: Lyr
    uses: int  # edges from the entry into the region


Item = L | Residual | Concat | Scale | Dense | Flat


class NotSeriesParallel(Exception):
    def __init__(self, join: Lyr) -> None:
        super().__init__(join.origin)
        self.join = join


class Structurer:
    def __init__(self, net: Net) -> None:
        self.net = net
        self.lay = net.layers
        g = nx.DiGraph()
        g.add_nodes_from(self.lay)
        for lay in self.lay.values():
            for i in lay.inputs:
                g.add_edge(i, lay.id)
        live = nx.ancestors(g, net.output) | {net.output}
        self.users = {k: [u for u in g.successors(k) if u in live] for k in live}
        self.idom = nx.immediate_dominators(g.subgraph(live), 0)
        self.seen: set[int] = set()  # every layer must land in exactly one place
        self.log: list[int] = []  # the order they landed in, to undo a failed split
        self.warnings: list[str] = []

    def visit(self, lay: Lyr) -> None:
        if lay.id in self.seen:
            raise NotSeriesParallel(lay)  # needed in two places: not nested blocks
        self.seen.add(lay.id)
        self.log.append(lay.id)

    def run(self) -> list[Item]:
        return self.branch(0, self.net.output)

    def branch(self, start: int, end: int) -> list[Item]:
        """The items computing ``end`` from ``start``, walking backwards."""
        items: list[Item] = []
        cur = end
        while cur != start:
            lay = self.lay[cur]
            if cur == 0:
                raise NotSeriesParallel(self.lay[end])
            if len(lay.inputs) == 1:
                if len(self.users[lay.inputs[0]]) != 1 and lay.inputs[0] != start:
                    raise NotSeriesParallel(lay)  # read elsewhere too: not a plain sequence
                self.visit(lay)
                items.append(L(lay))
                cur = lay.inputs[0]
                continue
            fork = self.idom[cur]
            mark = len(self.log)
            self.visit(lay)
            try:
                items.append(self.split(fork, lay))
            except NotSeriesParallel as e:
                items.append(self.flat(fork, lay, mark, e))
            cur = fork
        items.reverse()
        return items

    def split(self, fork: int, j: Lyr) -> Item:
        if j.kind == "concat":
            dense = self.dense(fork, j)
            if dense is not None:
                return dense
            self.regroup(fork, j)
            branches = [self.branch(fork, i) if i != fork else [] for i in j.inputs]
            item: Item = Concat(branches, j)
        elif j.kind == "add" and len(j.inputs) == 2:
            a, b = (self.branch(fork, i) if i != fork else [] for i in j.inputs)
            body, sc = (a, b) if _size(a) >= _size(b) else (b, a)
            item = Residual(body, sc if sc else None, j, "")
            self._auto_shortcut(item, fork)
        elif j.kind == "mul" and j.inputs[0] == fork and j.inputs[1] != fork:
            item = Scale(self.branch(fork, j.inputs[1]), j)
        else:
            raise NotSeriesParallel(j)
        # every edge out of the fork must start one of the branches
        direct = sum(1 for i in j.inputs if i == fork)
        if len(self.users[fork]) != _starts(item) + (1 if direct else 0):
            raise NotSeriesParallel(j)
        return item

    def flat(self, fork: int, j: Lyr, mark: int, error: NotSeriesParallel) -> Flat:
        """The region from ``fork`` to ``j`` as one flat item, if nothing outside reads it."""
        for k in self.log[mark:]:  # undo what the failed split placed
            self.seen.discard(k)
        del self.log[mark:]
        region: dict[int, Lyr] = {}
        todo = [j.id]
        while todo:
            k = todo.pop()
            if k in region or k == fork:
                continue
            if k == 0 or k in self.seen:
                raise error
            region[k] = self.lay[k]
            todo += self.lay[k].inputs
        for k in region:
            if k != j.id and any(u not in region for u in self.users[k]):
                raise error  # read from outside: the enclosing region is the flat one
        for k in sorted(region):
            self.visit(region[k])
        uses = sum(1 for k in region for i in self.lay[k].inputs if i == fork)
        lays = [region[k] for k in sorted(region)]
        self.warnings.append(
            f"the layers from ONNX node '{lays[0].origin}' to '{j.origin}' ({origin_ops(lays)}) "
            "are not nested residual/concat/scale blocks: that region is written with 'from' "
            f"(the DAG escape), {len(lays)} statements")
        return Flat(lays, fork, j, uses)

    def regroup(self, fork: int, j: Lyr) -> None:
        """Consecutive inputs of a concat that fork again below ``fork`` become their own
        concat: torch's exporter flattens cat([a, cat([b, c])]) into one Concat (Inception-v3's
        InceptionE), which is the same channels in the same order, nested."""
        def head(i: int) -> int:
            while i != fork and self.idom.get(i, fork) != fork:
                i = self.idom[i]
            return i

        heads = [head(i) for i in j.inputs]
        ins: list[int] = []
        k = 0
        while k < len(heads):
            e = k
            while e + 1 < len(heads) and heads[e + 1] == heads[k] and heads[k] != fork:
                e += 1
            group = j.inputs[k:e + 1]
            if len(group) == 1 or len(group) == len(j.inputs):
                ins += group
            else:
                ins.append(self._concat(group, j))
            k = e + 1
        j.inputs = ins

    def _concat(self, group: list[int], j: Lyr) -> int:
        """A concat layer of ``group`` inside ``j`` (no ONNX node of its own)."""
        lid = max(self.lay) + 1
        shapes = [self.lay[i].shape for i in group]
        shape = (sum(s[0] for s in shapes), *shapes[0][1:]) if all(shapes) else None
        lay = Lyr(lid, "concat", ["concat"], list(group), j.path, [], j.origin, shape,
                  origin_op="Concat")
        self.lay[lid] = lay
        for i in group:
            self.users[i] = [lid if u == j.id else u for u in self.users[i]]
        self.users[lid] = [j.id]
        anc, d = [group[0]], group[0]  # the group's fork: its inputs' lowest common dominator
        while d != 0:
            d = self.idom[d]
            anc.append(d)
        low = 0
        for i in group[1:]:
            c = i
            while c not in anc:
                c = self.idom[c]
            low = max(low, anc.index(c))
        self.idom[lid] = anc[low]
        return lid

    def _auto_shortcut(self, r: Residual, fork: int) -> None:
        """A 1×1 conv + BN (or a zero-pad) shortcut where the shape changes: netdsl's own."""
        sc = r.shortcut
        xs, ys = self.lay[fork].shape, r.join.shape
        if not sc or xs is None or ys is None or xs == ys or len(xs) != 3:
            return
        kinds = [i.lay.kind if isinstance(i, L) else "" for i in sc]
        stride = max(1, -(-xs[1] // ys[1]))
        if kinds == ["conv", "bn"]:
            conv, bn = sc[0].lay, sc[1].lay
            if conv.text() == f"conv1-{ys[0]}" + (f"/{stride}" if stride > 1 else "") + \
                    " bias off" and bn.text() == "bn":
                r.auto = "B"
        elif kinds == ["padshortcut"] and sc[0].lay.text() == \
                f"padshortcut-{ys[0]}" + (f"/{stride}" if stride > 1 else ""):
            r.auto = "A"

    def dense(self, fork: int, j: Lyr) -> Dense | None:
        """concat(x, y1 … yn) where unit k reads concat(x, y1 … y(k-1)): a dense block."""
        ins = j.inputs
        if len(ins) < 3 or ins[0] != fork:
            return None
        units, concats = [], []
        for k in range(1, len(ins)):
            start = ins[k]
            while len(self.lay[start].inputs) == 1 and start != fork:
                start = self.lay[start].inputs[0]
            if k > 1:
                c = self.lay[start]
                if c.kind != "concat" or c.inputs != ins[:k]:
                    return None
                concats.append(c)
                self.visit(c)
            elif start != fork:
                return None
            units.append(self.branch(start, ins[k]))
        n = len(units)
        if len(self.users[fork]) != n + 1 or any(
                len(self.users[ins[k]]) != n - k + 1 for k in range(1, n + 1)):
            return None
        return Dense(units, j, concats)


def _size(items: list[Item]) -> int:
    return sum(1 if isinstance(i, L) else 2 for i in items)


def _uses(branch: list[Item]) -> int:
    """Edges from the fork that a branch takes: one, or a flat region's own count."""
    return branch[0].uses if isinstance(branch[0], Flat) else 1


def _starts(item: Item) -> int:
    """Edges from the fork that the item's branches take."""
    if isinstance(item, Concat):
        return sum(_uses(b) for b in item.branches if b)
    if isinstance(item, Residual):
        return sum(_uses(b) for b in (item.body, item.shortcut) if b)
    if isinstance(item, Scale):
        return _uses(item.gate)
    return 0


def structure(net: Net) -> tuple[list[Item], list[str]]:
    """The nested statements of ``net`` and the warnings for its flat regions; raises
    NotSeriesParallel when the network as a whole is not one (then it is written flat)."""
    s = Structurer(net)
    return s.run(), s.warnings


def layers_of(items: list[Item]) -> list[Lyr]:
    """Every layer of ``items`` in netdsl's build order (body before its join, shortcut last)."""
    out: list[Lyr] = []
    for it in items:
        if isinstance(it, L):
            out.append(it.lay)
        elif isinstance(it, Residual):
            out += layers_of(it.body) + layers_of(it.shortcut or []) + [it.join]
        elif isinstance(it, Concat):
            for b in it.branches:
                out += layers_of(b)
            out.append(it.join)
        elif isinstance(it, Scale):
            out += layers_of(it.gate) + [it.join]
        elif isinstance(it, Flat):
            out += it.layers
        else:
            for k, u in enumerate(it.units):
                if k:
                    out.append(it.concats[k - 1])
                out += layers_of(u)
            out.append(it.join)
    return out


def walk(items: list[Item]) -> list[Item]:
    """Every item, nested ones included."""
    out: list[Item] = []
    for it in items:
        out.append(it)
        if isinstance(it, Residual):
            out += walk(it.body) + walk(it.shortcut or [])
        elif isinstance(it, Concat):
            for b in it.branches:
                out += walk(b)
        elif isinstance(it, Scale):
            out += walk(it.gate)
        elif isinstance(it, Dense):
            for u in it.units:
                out += walk(u)
    return out
