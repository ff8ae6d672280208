"""Drawings of a network: NetGraph -> pydot.Dot -> .dot text, or .svg/.png/.pdf via Graphviz.

Each node is a layer in the papers' notation with its output shape. Elementwise layers that
follow a single-user producer (``+bn +relu``, ``+dropout 0.5``) fold into its node the way a
spec writes them as a chain. Name scopes (``layer1.0.``) become nested clusters. With
``depth=N`` the scopes N levels deep collapse into one node each, listing their layers, and a
run of identical collapsed blocks becomes one node ``×k``: ResNet-152 at depth 1 is its stem,
four stage nodes and the classifier; at depth 2 each stage is a cluster of its blocks.

pydot is imported lazily (FX's ``HAS_PYDOT``): loading and checking specs never pays for it.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import ops
from .errors import NetdslError
from .fsutil import atomic_write
from .ir import Layer
from .network import Network

if TYPE_CHECKING:
    import pydot

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR", "BT", "RL")
_LIST_MAX = 4  # a collapsed scope lists up to this many layers, else counts them

# Fill colours by trait (never by op name): weight layers, pooling, joins, collapsed blocks.
_FILL = {"weight": "#d6e6f5", "pool": "#fbe3c6", "join": "#ececec", "block": "#dcefd2",
         "input": "#ffffff", "other": "#f4f4f4"}
_CLUSTER_FILL = ("#fbfbfb", "#f2f5fa", "#eaf0f7", "#e3eaf3")
_FONT = "Helvetica"


@dataclass
class _Node:
    """One drawn node: a layer with the layers folded into it, or a collapsed scope."""

    id: str
    members: list[Layer] = field(default_factory=list)
    scope: tuple[str, ...] = ()  # the cluster it is drawn in
    block: str | None = None  # the collapsed scope's full name
    repeat: int = 1  # identical consecutive blocks merged into this node
    last: str | None = None  # the last merged block's name


def _scope(name: str) -> tuple[str, ...]:
    return tuple(name.split(".")[:-1])


def _shape(lay: Layer) -> str:
    return str(lay.out)


def _foldable(net: Network, lay: Layer, users: dict[str, int]) -> bool:
    """An elementwise one-input layer (activation, BN, dropout, LRN, soft-max) whose producer
    feeds only it: drawn inside the producer's node, as ``conv3-64 +relu``."""
    if len(lay.inputs) != 1:
        return False
    op, src = ops.OPS[lay.op], net.graph[lay.inputs[0]]
    return (op.arity == 1 and op.kernel_field is None and lay.out == src.out
            and users.get(src.name, 0) == 1 and ops.OPS[src.op].arity != 0
            and _scope(src.name) == _scope(lay.name) and src.name not in net.graph.outputs
            and op.macs(lay.attrs, (src.out,), lay.out) == 0)


def _nodes(net: Network, depth: int | None) -> tuple[dict[str, _Node], dict[str, str]]:
    """The drawn nodes by id, and the node id of every layer."""
    users: dict[str, int] = {}
    for lay in net.graph.layers():
        for i in lay.inputs:
            users[i] = users.get(i, 0) + 1
    nodes: dict[str, _Node] = {}
    where: dict[str, str] = {}
    for lay in net.graph.layers():
        sc = _scope(lay.name)
        if depth is not None and len(sc) >= depth:
            block = ".".join(sc[:depth])
            nid = "block:" + block
            node = nodes.setdefault(nid, _Node(nid, scope=sc[:depth - 1], block=block))
        elif _foldable(net, lay, users):
            nid = where[lay.inputs[0]]
            node = nodes[nid]
        else:
            nid = lay.name
            node = nodes.setdefault(nid, _Node(nid, scope=sc))
        node.members.append(lay)
        where[lay.name] = nid
    return _merge_repeats(net, nodes, where)


def _merge_repeats(net: Network, nodes: dict[str, _Node], where: dict[str, str]
                   ) -> tuple[dict[str, _Node], dict[str, str]]:
    """Fold a run of identical collapsed blocks, each fed only by the one before, into one
    node ``×k`` (ResNet-152's 35 equal bottlenecks of layer3)."""
    out: dict[str, _Node] = {}
    prev: _Node | None = None
    for nid, node in nodes.items():
        if prev is not None and node.block is not None and prev.block is not None \
                and node.scope == prev.scope and _signature(net, node) == _signature(net, prev):
            sources = {where[i] for m in node.members for i in m.inputs} - {nid}
            if sources == {prev.id}:
                prev.members += node.members
                prev.repeat += 1
                prev.last = node.block
                for m in node.members:
                    where[m.name] = prev.id
                continue
        out[nid] = node
        prev = node
    return out, where


def _signature(net: Network, node: _Node) -> tuple[Any, ...]:
    k = len(node.members) // node.repeat
    first = node.members[-k:]
    return (tuple((m.op, m.attrs, m.out) for m in first),)


def _kind(net: Network, node: _Node) -> str:
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


def _notation(net: Network, lay: Layer) -> str:
    return ops.OPS[lay.op].notation(lay.attrs, net.in_shapes(lay))


def _contents(net: Network, node: _Node) -> list[str]:
    """A collapsed scope's windowed layers (conv, FC, pooling) in order, when there are few;
    those in a nested scope (a projection shortcut) are prefixed with its name."""
    assert node.block is not None
    one = node.members[:len(node.members) // node.repeat]
    shown = [m for m in one
             if ops.OPS[m.op].counts_in_depth or ops.OPS[m.op].kernel_field is not None]
    depth = node.block.count(".") + 1
    if len(shown) > _LIST_MAX:
        k = net.depth_of(m.name for m in one)  # the papers' depth of the block
        count = f"{k} weight layers" if k else f"{len(one)} layers"
        blocks = {_scope(m.name)[depth:depth + 1] for m in one} - {()}
        return [f"{_plural(blocks)}, {count}"] if len(blocks) > 1 else [count]
    subs = [_scope(m.name)[depth:depth + 1] for m in shown]
    if len(set(subs)) == 1:  # all in one nested scope (an aux head's): no prefix needed
        subs = [()] * len(shown)
    out = [(f"{sub[0]}: " if sub else "") + _notation(net, m)
           for m, sub in zip(shown, subs, strict=True)]
    return out or [f"{len(one)} layers"]


def _plural(scopes: set[tuple[str, ...]]) -> str:
    """``4 branches`` for branch1…branch4, ``3 blocks`` for 0, 1, 2."""
    bases = {sc[0].rstrip("0123456789") for sc in scopes}
    word = bases.pop() if len(bases) == 1 and "" not in bases else "block"
    return f"{len(scopes)} {word}{'es' if word.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def _label(net: Network, node: _Node, title: str) -> str:
    """An HTML-like Graphviz label: notation in bold, then the output shape in grey."""
    e = html.escape
    last = node.members[-1]
    small = f'<font point-size="9" color="#555555">{e(_shape(last))}</font>'
    if node.block is not None:
        lines = _contents(net, node)
        params = sum(ops.OPS[m.op].params(m.attrs, net.in_shapes(m)) for m in node.members)
        if node.repeat > 1:
            title += f" ×{node.repeat}"
        return (f"<<b>{e(title)}</b><br/>"
                f'<font point-size="10">{"<br/>".join(e(x) for x in lines)}</font><br/>'
                f'<font point-size="9" color="#555555">{e(_si(params))} params · '
                f"{e(_shape(last))}</font>>")
    head = node.members[0]
    if ops.OPS[head.op].arity == 0:
        return f"<<b>input</b><br/>{small}>"
    text = f"<b>{e(_notation(net, head))}</b>"
    text += "".join(f" +{e(_notation(net, m))}" for m in node.members[1:])
    return f"<{text}<br/>{small}>"


def _si(n: int) -> str:
    for unit, div in (("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _pydot() -> Any:
    try:
        import pydot
    except ImportError:  # pragma: no cover - pydot is a dependency
        raise NetdslError("drawing needs pydot", hint="pip install pydot") from None
    return pydot


def to_dot(net: Network, depth: int | None = None, rankdir: str = "TB") -> pydot.Dot:
    """The network as a ``pydot.Dot`` graph.

    Args:
        net: a loaded network (auxiliary heads are drawn dashed).
        depth: scopes this many levels deep (``layer1`` is 1, ``layer1.0`` 2) are drawn as
            one node each, shallower ones as clusters. None draws every layer.
        rankdir: ``TB`` (top to bottom) or ``LR`` (left to right).
    """
    if depth is not None and depth < 1:
        raise NetdslError(f"depth must be ≥ 1, got {depth}",
                          hint="depth 1 draws each top-level block as one node")
    if rankdir.upper() not in RANKDIRS:
        raise NetdslError(f"unknown rankdir {rankdir!r}", hint="one of " + ", ".join(RANKDIRS))
    pydot = _pydot()
    vertical = rankdir.upper() in ("TB", "BT")
    title = net.header.title or net.name
    g = pydot.Dot(net.name, graph_type="digraph", rankdir=rankdir.upper(), fontname=_FONT,
                  labelloc="t", fontsize="14", nodesep="0.2", ranksep="0.28",
                  ordering="in" if vertical else "out",
                  label=f"<<b>{html.escape(title)}</b>  "
                        f'<font point-size="10">{net.params:,} params · '
                        f"{net.macs / 1e9:.2f} GMACs</font>>")
    g.set_node_defaults(shape="box", style="rounded,filled", fontname=_FONT, fontsize="11",
                        margin="0.12,0.04", height="0.3", penwidth="0.8")
    g.set_edge_defaults(arrowsize="0.6", penwidth="0.8", color="#555555")
    nodes, where = _nodes(net, depth)
    clusters: dict[tuple[str, ...], Any] = {(): g}
    pending: list[tuple[Any, Any]] = []  # (parent, cluster), attached after the nodes

    def cluster(path: tuple[str, ...]) -> Any:
        if path not in clusters:
            parent = cluster(path[:-1])
            aux = any(c.startswith("aux") for c in path)
            c = pydot.Cluster(".".join(path).replace(".", "_"), label=path[-1],
                              style="rounded,filled,dashed" if aux else "rounded,filled",
                              fillcolor=_CLUSTER_FILL[min(len(path) - 1, 3)], color="#9aa5b1",
                              fontname=_FONT, fontsize="10", labeljust="l", penwidth="0.8")
            pending.append((parent, c))
            clusters[path] = c
        return clusters[path]

    per_cluster: dict[tuple[str, ...], int] = {}  # nodes inside each cluster, nested included
    for node in nodes.values():
        for k in range(1, len(node.scope) + 1):
            per_cluster[node.scope[:k]] = per_cluster.get(node.scope[:k], 0) + 1
    lifted: set[str] = set()
    for nid, node in nodes.items():  # a cluster around a single node is noise: drop it
        while node.scope and per_cluster[node.scope] == 1:
            node.scope = node.scope[:-1]
            lifted.add(nid)
    for nid, node in nodes.items():
        kind = _kind(net, node)
        title = ""
        if node.block is not None:
            title = node.block.rsplit(".", 1)[-1]
            if title.isdigit() or nid in lifted:
                title = node.block
            if node.last is not None:
                last = node.last.rsplit(".", 1)[-1]
                title += " … " + (node.last if last.isdigit() else last)
        attrs: dict[str, str] = {"label": _label(net, node, title), "fillcolor": _FILL[kind]}
        if kind == "join":
            attrs.update(shape="ellipse", style="filled", fontsize="9", height="0.25")
        if any(m.aux for m in node.members):
            attrs["style"] = attrs.get("style", "rounded,filled") + ",dashed"
        cluster(node.scope).add_node(pydot.Node(_quote(nid), **attrs))
    # Sibling clusters (inception branches) in spec order, left to right or top to bottom: dot
    # keeps them so with ordering=in and clusters attached last-first (TB), or ordering=out and
    # first-first (LR). Found by experiment on Graphviz 2.43; tests/test_draw.py checks it.
    for parent, c in (reversed(pending) if vertical else pending):
        parent.add_subgraph(c)
    seen: set[tuple[str, str]] = set()
    for lay in net.graph.layers():
        for src in lay.inputs:
            a, b = where[src], where[lay.name]
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                style = "dashed" if lay.aux and not net.graph[src].aux else "solid"
                g.add_edge(pydot.Edge(_quote(a), _quote(b), style=style))
    return g


def _quote(nid: str) -> str:
    return '"' + nid.replace('"', "'") + '"'


def render(net: Network, fmt: str, depth: int | None = None, rankdir: str = "TB") -> bytes:
    """The drawing as bytes of ``fmt`` (svg, png, pdf, dot); all but dot need Graphviz."""
    if fmt not in FORMATS:
        raise NetdslError(f"cannot draw to .{fmt}", hint="use .svg, .png, .pdf or .dot")
    g = to_dot(net, depth, rankdir)
    if fmt == "dot":
        return g.to_string().encode("utf-8")
    if shutil.which("dot") is None:
        raise NetdslError(f"drawing .{fmt} needs Graphviz's 'dot' program, which is not on PATH",
                          hint="install Graphviz (apt-get install graphviz, brew install "
                               "graphviz, conda install graphviz), or write .dot instead")
    try:
        data = g.create(prog="dot", format=fmt)
    except Exception as e:  # pydot raises plain exceptions carrying dot's stderr
        last = (str(e).strip().splitlines() or ["unknown error"])[-1]
        raise NetdslError(f"Graphviz failed: {last}") from None
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


def draw(net: Network, path: str | Path, depth: int | None = None, rankdir: str = "TB") -> None:
    """Write a drawing of ``net``; the format is the file's suffix. Written atomically.

    Args:
        net: the network.
        path: ``*.svg``, ``*.png``, ``*.pdf`` (need Graphviz's ``dot``) or ``*.dot``.
        depth: scopes this deep become single nodes (None: draw every layer).
        rankdir: ``TB`` or ``LR``.
    """
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise NetdslError(f"cannot tell the drawing format from {Path(path).name!r}",
                          path=str(path), hint="name the output *.svg, *.png, *.pdf or *.dot")
    data = render(net, fmt, depth, rankdir)

    def write(f: BinaryIO) -> None:
        f.write(data)

    atomic_write(path, write)
