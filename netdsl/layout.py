"""What a drawing shows, independent of its format (Graphviz in draw.py, TikZ in tikz.py).

Each node is a layer in the papers' notation with its output shape. Elementwise layers that
follow a single-user producer (``+bn +relu``, ``+dropout 0.5``) fold into its node the way a
spec writes them as a chain. Name scopes (``layer1.0.``) become nested clusters. With
``depth=N`` the scopes N levels deep collapse into one node each, listing their layers; a run
of identical collapsed blocks becomes one node ``×k`` (ResNet-152's 35 bottlenecks of
layer3), and so do identical parallel blocks between the same nodes (ResNeXt's paths).

Size: a layered layout costs about one unit per node plus one per rank an edge crosses. A
dense block's join ``concat(x, u1, …, uk)`` extends the join before it, so it is drawn fed by
that join and ``uk`` (linear, not quadratic, in k); drawings still above ``MAX_COST`` are
refused with the depth that fits, before Graphviz or TeX is handed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from . import ops
from .errors import NetdslError
from .ir import Layer
from .network import Network
from .units import plural

# Graphviz's dot lays out ~1,000 cost units a second: ResNet-1202 drawn in full (1,806 nodes,
# cost 5,409) takes 4.5 s, DenseNet-121 (cost 725) 0.4 s, while a 64-unit dense block drawn
# with all its 2,208 edges ran over 100 s (Graphviz 2.43 on one core).
MAX_COST = 6000
LIST_MAX = 4  # a collapsed scope lists up to this many layers, else counts them


@dataclass
class Node:
    """One drawn node: a layer with the layers folded into it, or a collapsed scope."""

    id: str
    members: list[Layer] = field(default_factory=list)
    scope: tuple[str, ...] = ()  # the cluster it is drawn in
    block: str | None = None  # the collapsed scope's full name
    repeat: int = 1  # identical blocks merged into this node (in a row or side by side)
    last: str | None = None  # the last merged block's name
    parallel: bool = False  # the repeats are side by side (branches), not in a row
    title: str = ""  # a collapsed block's heading

    @property
    def one(self) -> list[Layer]:
        """The members of one repeat."""
        return self.members[:len(self.members) // self.repeat]


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    aux: bool  # into an auxiliary head: drawn dashed


@dataclass
class Drawing:
    nodes: dict[str, Node]
    edges: list[Edge]
    where: dict[str, str]  # layer name -> node id

    @property
    def cost(self) -> int:
        """Nodes plus the ranks every edge spans: the work of a layered layout."""
        g = nx.DiGraph((e.src, e.dst) for e in self.edges)
        g.add_nodes_from(self.nodes)
        rank: dict[str, int] = {}
        for n in nx.topological_sort(g):
            rank[n] = max((rank[p] + 1 for p in g.predecessors(n)), default=0)
        return len(self.nodes) + sum(max(rank[e.dst] - rank[e.src], 1) for e in self.edges)


def scope(name: str) -> tuple[str, ...]:
    return tuple(name.split(".")[:-1])


def shape(lay: Layer) -> str:
    return str(lay.out)


def notation(net: Network, lay: Layer) -> str:
    return ops.OPS[lay.op].notation(lay.attrs, net.in_shapes(lay))


def _foldable(net: Network, lay: Layer, users: dict[str, int]) -> bool:
    """An elementwise one-input layer (activation, BN, dropout, LRN, soft-max) whose producer
    feeds only it: drawn inside the producer's node, as ``conv3-64 +relu``."""
    if len(lay.inputs) != 1:
        return False
    op, src = ops.OPS[lay.op], net.graph[lay.inputs[0]]
    return (op.arity == 1 and op.kernel_field is None and lay.out == src.out
            and users.get(src.name, 0) == 1 and ops.OPS[src.op].arity != 0
            and scope(src.name) == scope(lay.name) and src.name not in net.graph.outputs
            and op.macs(lay.attrs, (src.out,), lay.out) == 0)


def build(net: Network, depth: int | None = None, aux: bool = True) -> Drawing:
    """The drawing of ``net``: nodes, edges, folds. Raises NetdslError on a bad depth."""
    if depth is not None and depth < 1:
        raise NetdslError(f"depth must be ≥ 1, got {depth}",
                          hint="depth 1 draws each top-level block as one node")
    layers = [x for x in net.graph.layers() if aux or not x.aux]
    users: dict[str, int] = {}
    for lay in layers:
        for i in lay.inputs:
            users[i] = users.get(i, 0) + 1
    nodes: dict[str, Node] = {}
    where: dict[str, str] = {}
    for lay in layers:
        sc = scope(lay.name)
        if depth is not None and len(sc) >= depth:
            block = ".".join(sc[:depth])
            nid = "block:" + block
            node = nodes.setdefault(nid, Node(nid, scope=sc[:depth - 1], block=block))
        elif _foldable(net, lay, users):
            nid = where[lay.inputs[0]]
            node = nodes[nid]
        else:
            nid = lay.name
            node = nodes.setdefault(nid, Node(nid, scope=sc))
        node.members.append(lay)
        where[lay.name] = nid
    _merge_repeats(net, nodes, where)
    edges = _edges(net, layers, where)
    nodes, edges = _merge_parallel(net, nodes, edges, where)
    return Drawing(nodes, edges, where)


def _signature(node: Node) -> tuple[Any, ...]:
    return tuple((m.op, m.attrs, m.out) for m in node.one)


def _merge_repeats(net: Network, nodes: dict[str, Node], where: dict[str, str]) -> None:
    """Fold a run of identical collapsed blocks, each fed only by the one before, into one
    node ``×k`` (ResNet-152's 35 equal bottlenecks of layer3)."""
    prev: Node | None = None
    for nid in list(nodes):
        node = nodes[nid]
        if prev is not None and node.block is not None and prev.block is not None \
                and node.scope == prev.scope and _signature(node) == _signature(prev):
            sources = {where[i] for m in node.members for i in m.inputs} - {nid}
            if sources == {prev.id}:
                prev.members += node.members
                prev.repeat += 1
                prev.last = node.block
                for m in node.members:
                    where[m.name] = prev.id
                del nodes[nid]
                continue
        prev = node


def _edges(net: Network, layers: list[Layer], where: dict[str, str]) -> list[Edge]:
    """One edge per pair of connected nodes. A join that extends an earlier join of the same
    op (a dense block's ``concat(x, u1, …, uk)`` after ``concat(x, u1, …, uk-1)``) is drawn
    fed by that join: joins are associative, and this keeps the edges linear."""
    joins: dict[tuple[str, str], list[Layer]] = {}  # (op, first input) -> joins, in order
    seen: set[tuple[str, str]] = set()
    out: list[Edge] = []
    for lay in layers:
        ins: tuple[str, ...] = lay.inputs
        if ops.OPS[lay.op].arity is None:
            earlier = joins.setdefault((lay.op, ins[0]), [])
            for j in reversed(earlier[-4:]):  # a dense block extends the latest one
                if len(j.inputs) < len(ins) and ins[:len(j.inputs)] == j.inputs:
                    ins = (j.name, *ins[len(j.inputs):])
                    break
            earlier.append(lay)
        for src in ins:
            a, b = where[src], where[lay.name]
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                out.append(Edge(a, b, lay.aux and not net.graph[src].aux))
    return out


def _merge_parallel(net: Network, nodes: dict[str, Node], edges: list[Edge],
                    where: dict[str, str]) -> tuple[dict[str, Node], list[Edge]]:
    """Fold identical collapsed blocks side by side, with the same sources and users, into
    one node ``×k`` (a concat of 10,000 equal branches is three nodes at depth 1)."""
    ins: dict[str, set[str]] = {}
    outs: dict[str, set[str]] = {}
    for e in edges:
        outs.setdefault(e.src, set()).add(e.dst)
        ins.setdefault(e.dst, set()).add(e.src)
    groups: dict[Any, Node] = {}
    gone: dict[str, str] = {}
    for nid, node in nodes.items():
        if node.block is None or node.repeat > 1:
            continue
        key = (node.scope, _signature(node), frozenset(ins.get(nid, ())),
               frozenset(outs.get(nid, ())))
        first = groups.setdefault(key, node)
        if first is not node:
            first.members += node.members
            first.repeat += 1
            first.parallel = True
            first.last = node.block
            gone[nid] = first.id
            for m in node.members:
                where[m.name] = first.id
    if not gone:
        return nodes, edges
    kept = {nid: n for nid, n in nodes.items() if nid not in gone}
    merged: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    for e in edges:
        a, b = gone.get(e.src, e.src), gone.get(e.dst, e.dst)
        if (a, b) not in seen:
            seen.add((a, b))
            merged.append(Edge(a, b, e.aux))
    return kept, merged


def guard(net: Network, drawing: Drawing, depth: int | None, aux: bool = True) -> None:
    """Refuse a drawing too large to lay out in seconds, naming a depth that fits."""
    cost = drawing.cost
    if cost <= MAX_COST:
        return
    deepest = max((len(scope(x.name)) for x in net.graph.layers()), default=0)
    start = depth - 1 if depth is not None else deepest
    fits = next((d for d in range(start, 0, -1)
                 if build(net, d, aux).cost <= MAX_COST), None)
    hint = (f"draw scopes {fits} level{'s' if fits > 1 else ''} deep as single nodes: "
            f"--depth {fits}" if fits else
            "no depth makes it small enough: draw a part of the network (a spec of one "
            "block)")
    if fits and not aux:
        hint += " --no-aux"
    raise NetdslError(f"the drawing is too large to lay out: {len(drawing.nodes):,} nodes "
                      f"and {len(drawing.edges):,} edges (layout cost {cost:,}, limit "
                      f"{MAX_COST:,})", path=net.path, hint=hint)


def kind(net: Network, node: Node) -> str:
    """The trait a node is coloured by (never its op name)."""
    if node.block is not None:
        return "block"
    head = node.members[0]
    op = ops.OPS[head.op]
    if op.arity == 0:
        return "input"
    if op.counts_in_depth:
        return "weight"
    if op.arity != 1:
        return "join"
    if op.kernel_field is not None or net.graph[head.inputs[0]].out.spatial != head.out.spatial:
        return "pool"
    return "other"


def contents(net: Network, node: Node) -> list[str]:
    """A collapsed scope's windowed layers (conv, FC, pooling) in order, when there are few;
    those in a nested scope (a projection shortcut) are prefixed with its name."""
    assert node.block is not None
    one = node.one
    shown = [m for m in one
             if ops.OPS[m.op].counts_in_depth or ops.OPS[m.op].kernel_field is not None]
    depth = node.block.count(".") + 1
    if len(shown) > LIST_MAX:
        k = net.depth_of(m.name for m in one)  # the papers' depth of the block
        count = plural(k, "weight layer") if k else plural(len(one), "layer")
        blocks = {scope(m.name)[depth:depth + 1] for m in one} - {()}
        return [f"{_blocks(blocks)}, {count}"] if len(blocks) > 1 else [count]
    subs = [scope(m.name)[depth:depth + 1] for m in shown]
    if len(set(subs)) == 1:  # all in one nested scope (an aux head's): no prefix needed
        subs = [()] * len(shown)
    out = [(f"{sub[0]}: " if sub else "") + notation(net, m)
           for m, sub in zip(shown, subs, strict=True)]
    return out or [plural(len(one), "layer")]


def _blocks(scopes: set[tuple[str, ...]]) -> str:
    """``4 branches`` for branch1…branch4, ``3 blocks`` for 0, 1, 2."""
    bases = {sc[0].rstrip("0123456789") for sc in scopes}
    word = bases.pop() if len(bases) == 1 and "" not in bases else "block"
    return plural(len(scopes), word)


def titles(drawing: Drawing) -> None:
    """Set each collapsed block's heading and lift clusters around a single node (noise)."""
    per_cluster: dict[tuple[str, ...], int] = {}  # nodes inside each cluster, nested included
    for node in drawing.nodes.values():
        for k in range(1, len(node.scope) + 1):
            per_cluster[node.scope[:k]] = per_cluster.get(node.scope[:k], 0) + 1
    siblings: dict[tuple[str, ...], int] = {}  # clusters inside each cluster
    for sc in per_cluster:
        siblings[sc[:-1]] = siblings.get(sc[:-1], 0) + 1

    def noise(sc: tuple[str, ...]) -> bool:  # one node and no sibling: but every branch of a
        return per_cluster[sc] == 1 and siblings[sc[:-1]] == 1  # construct is boxed alike

    for node in drawing.nodes.values():
        lifted = False
        while node.scope and noise(node.scope):
            node.scope = node.scope[:-1]
            lifted = True
        if node.block is None:
            continue
        title = node.block.rsplit(".", 1)[-1]
        if title.isdigit() or lifted:
            title = node.block
        if node.last is not None:
            last = node.last.rsplit(".", 1)[-1]
            title += " … " + (node.last if last.isdigit() else last)
        node.title = title + (f" ×{node.repeat}" if node.repeat > 1 else "")
