"""Graphviz drawings: layout.Drawing -> pydot.Dot -> .dot text, or .svg/.png/.pdf via dot.

What is drawn (nodes, folds, clusters, the size guard) is layout.py's; this module styles it.
Name scopes (``layer1.0.``) become nested clusters: ResNet-152 at depth 1 is its stem, four
stage nodes and the classifier; at depth 2 each stage is a cluster of its blocks.

pydot is imported lazily (FX's ``HAS_PYDOT``): loading and checking specs never pays for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import escape, layout, ops, units
from .errors import NetdslError
from .fsutil import atomic_write
from .layout import Node, contents, notation, shape
from .network import Network

if TYPE_CHECKING:
    import pydot

FORMATS = ("svg", "png", "pdf", "dot", "tex")
RANKDIRS = ("TB", "LR", "BT", "RL")

# Fill colours by trait (never by op name): weight layers, pooling, joins, collapsed blocks.
_FILL = {"weight": "#d6e6f5", "pool": "#fbe3c6", "join": "#ececec", "block": "#dcefd2",
         "input": "#ffffff", "other": "#f4f4f4"}
_CLUSTER_FILL = ("#fbfbfb", "#f2f5fa", "#eaf0f7", "#e3eaf3")
_FONT = "Helvetica"


def _label(net: Network, node: Node) -> str:
    """An HTML-like Graphviz label: notation in bold, then the output shape in grey."""
    e = escape.dot_html
    last = node.members[-1]
    small = f'<font point-size="9" color="#555555">{e(shape(last))}</font>'
    if node.block is not None:
        lines = contents(net, node)
        params = sum(ops.OPS[m.op].params(m.attrs, net.in_shapes(m)) for m in node.members)
        return (f"<<b>{e(node.title)}</b><br/>"
                f'<font point-size="10">{"<br/>".join(e(x) for x in lines)}</font><br/>'
                f'<font point-size="9" color="#555555">{e(_si(params))} params · '
                f"{e(shape(last))}</font>>")
    head = node.members[0]
    if ops.OPS[head.op].arity == 0:
        return f"<<b>input</b><br/>{small}>"
    text = f"<b>{e(notation(net, head))}</b>"
    text += "".join(f" +{e(notation(net, m))}" for m in node.members[1:])
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


def to_dot(net: Network, depth: int | None = None, rankdir: str = "TB", *, aux: bool = True,
           title: bool = True, dpi: int | None = None) -> pydot.Dot:
    """The network as a ``pydot.Dot`` graph.

    Args:
        net: a loaded network (auxiliary heads are drawn dashed).
        depth: scopes this many levels deep (``layer1`` is 1, ``layer1.0`` 2) are drawn as
            one node each, shallower ones as clusters. None draws every layer.
        rankdir: ``TB`` (top to bottom) or ``LR`` (left to right).
        aux: draw the auxiliary (training-only) heads.
        title: the heading with the name, parameters and multiply-adds.
        dpi: resolution of PNG output (Graphviz's default is 96).

    Raises:
        NetdslError: a bad argument, or a drawing too large to lay out in seconds.
    """
    if rankdir.upper() not in RANKDIRS:
        raise NetdslError(f"unknown rankdir {rankdir!r}", hint="one of " + ", ".join(RANKDIRS))
    if dpi is not None and not 10 <= dpi <= 2400:
        raise NetdslError(f"dpi must be between 10 and 2400, got {dpi}")
    drawing = layout.build(net, depth, aux)
    layout.guard(net, drawing, depth, aux)
    layout.titles(drawing)
    pydot = _pydot()
    vertical = rankdir.upper() in ("TB", "BT")
    heading = net.header.title or net.name
    params = net.params_training if aux else net.params
    attrs = dict(rankdir=rankdir.upper(), fontname=_FONT, fontsize="14", nodesep="0.2",
                 ranksep="0.28", ordering="in" if vertical else "out")
    if title:
        attrs.update(labelloc="t", label=f"<<b>{escape.dot_html(heading)}</b>  "
                     f'<font point-size="10">{params:,} params · '
                     f"{units.macs(net.macs)}</font>>")
    if dpi is not None:
        attrs["dpi"] = str(dpi)
    g = pydot.Dot(escape.dot_string(net.name), graph_type="digraph", **attrs)
    g.set_node_defaults(shape="box", style="rounded,filled", fontname=_FONT, fontsize="11",
                        margin="0.12,0.04", height="0.3", penwidth="0.8")
    g.set_edge_defaults(arrowsize="0.6", penwidth="0.8", color="#555555")
    clusters: dict[tuple[str, ...], Any] = {(): g}
    pending: list[tuple[Any, Any]] = []  # (parent, cluster), attached after the nodes

    def cluster(path: tuple[str, ...]) -> Any:
        if path not in clusters:
            parent = cluster(path[:-1])
            dashed = any(c.startswith("aux") for c in path)
            c = pydot.Cluster(str(len(clusters)), label=f"<{escape.dot_html(path[-1])}>",
                              style="rounded,filled,dashed" if dashed else "rounded,filled",
                              fillcolor=_CLUSTER_FILL[min(len(path) - 1, 3)], color="#9aa5b1",
                              fontname=_FONT, fontsize="10", labeljust="l", penwidth="0.8")
            pending.append((parent, c))
            clusters[path] = c
        return clusters[path]

    for nid, node in drawing.nodes.items():
        kind = layout.kind(net, node)
        na: dict[str, str] = {"label": _label(net, node), "fillcolor": _FILL[kind]}
        if kind == "join":
            na.update(shape="ellipse", style="filled", fontsize="9", height="0.25")
        if any(m.aux for m in node.members):
            na["style"] = na.get("style", "rounded,filled") + ",dashed"
        cluster(node.scope).add_node(pydot.Node(escape.dot_string(nid), **na))
    # Sibling clusters (inception branches) in spec order, left to right or top to bottom: dot
    # keeps them so with ordering=out and clusters attached in order (LR), or ordering=in and
    # each cluster's children attached first, then the rest last to second (TB). Found by
    # experiment on Graphviz 2.43; tests/test_draw.py checks every GoogLeNet module.
    for parent, c in _attach_order(pending, vertical):
        parent.add_subgraph(c)
    for e in drawing.edges:
        g.add_edge(pydot.Edge(escape.dot_string(e.src), escape.dot_string(e.dst),
                              style="dashed" if e.aux else "solid"))
    return g


def render(net: Network, fmt: str, depth: int | None = None, rankdir: str = "TB",
           **options: Any) -> bytes:
    """The drawing as bytes of ``fmt``: svg, png, pdf (need Graphviz), dot, or tex (TikZ;
    see tikz.py for its options). Other keywords go to ``to_dot`` or ``tikz.to_tikz``."""
    if fmt not in FORMATS:
        raise NetdslError(f"cannot draw to .{fmt}", hint="use .svg, .png, .pdf, .dot or .tex")
    if fmt == "tex":
        from .tikz import to_tikz

        return to_tikz(net, depth, **options).encode("utf-8")
    options.pop("style", None)
    options.pop("standalone", None)
    g = to_dot(net, depth, rankdir, **options)
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


def draw(net: Network, path: str | Path, depth: int | None = None, rankdir: str = "TB",
         fmt: str | None = None, **options: Any) -> None:
    """Write a drawing of ``net``, atomically.

    Args:
        net: the network.
        path: ``*.svg``, ``*.png``, ``*.pdf`` (need Graphviz's ``dot``), ``*.dot`` or
            ``*.tex`` (a TikZ figure).
        depth: scopes this deep become single nodes (None: draw every layer).
        rankdir: ``TB`` or ``LR``.
        fmt: the format when the file's suffix does not tell it (``tikz`` is ``tex``).
        options: ``aux``, ``title``, ``dpi`` (Graphviz); ``aux``, ``style``, ``standalone``
            (TikZ).
    """
    fmt = {"tikz": "tex"}.get(fmt or "", fmt) or Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise NetdslError(f"cannot tell the drawing format from {Path(path).name!r}",
                          path=str(path), hint="name the output *.svg, *.png, *.pdf, *.dot or "
                          "*.tex, or give --format")
    data = render(net, fmt, depth, rankdir, **options)

    def write(f: BinaryIO) -> None:
        f.write(data)

    atomic_write(path, write)


def _attach_order(pending: list[tuple[Any, Any]], vertical: bool) -> list[tuple[Any, Any]]:
    """(parent, cluster) pairs in the order that keeps siblings in spec order (see above)."""
    if not vertical:
        return pending
    kids: dict[int, list[tuple[Any, Any]]] = {}
    for parent, c in pending:
        kids.setdefault(id(parent), []).append((parent, c))
    out: list[tuple[Any, Any]] = []
    for group in kids.values():
        out += group[:1] + group[:0:-1]
    return out
