"""TikZ figures: layout.Drawing -> a ``tikzpicture`` that pdflatex compiles, no Graphviz.

Layers run left to right, one column per rank (the longest path from the input), as in
PlotNeuralNet's figures. ``blocks`` draws each layer as a box whose height follows the
feature map's side and whose width follows the channel count (log scales, so 3×224×224 and
2048×7×7 both fit on a page); ``flat`` draws equal boxes with the notation turned upright.
Labels are the paper's notation, edges carry the tensor shape, a branch point spreads its
successors over lanes, an edge that skips ranks (a residual shortcut) arcs over the boxes,
and every name scope is a labelled frame. Folded blocks (``--depth``) are stacked ×n.

Positions are computed here, so the picture needs only TikZ and its ``fit`` and
``backgrounds`` libraries: the standalone file compiles as is, the fragment can be
``\\input`` into any document that loads tikz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from . import escape, layout, ops
from .errors import NetdslError
from .layout import Drawing, Node, contents, notation, shape
from .network import Network

STYLES = ("blocks", "flat")
MAX_WIDTH_CM = 500.0  # TeX's dimensions end at 575 cm; beyond this refuse with a depth

_RGB = {"weight": (214, 230, 245), "pool": (251, 227, 198), "join": (236, 236, 236),
        "block": (220, 239, 210), "input": (255, 255, 255), "other": (244, 244, 244)}
_GAP = 1.9  # cm between columns: room for the shape on the edge


# The standalone page is cropped to the picture by pdfTeX's page size (LuaTeX's \pagewidth),
# so it needs only what texlive-latex-base and texlive-pictures ship (not the standalone class).
_PREAMBLE = (r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{tikz}",
             r"\pagestyle{empty}", r"\newsavebox{\netdslfig}")
_SHIP = (r"\ifdefined\pdfpagewidth\else\let\pdfpagewidth\pagewidth"
         r"\let\pdfpageheight\pageheight\fi",
         r"\pdfpagewidth=\dimexpr\wd\netdslfig+12pt\relax",
         r"\pdfpageheight=\dimexpr\ht\netdslfig+\dp\netdslfig+12pt\relax",
         r"\hoffset=\dimexpr6pt-1in\relax \voffset=\dimexpr6pt-1in\relax",
         r"\shipout\vbox{\box\netdslfig}")


@dataclass
class _Box:
    x: float = 0.0  # centre of the front face
    y: float = 0.0
    w: float = 0.5
    h: float = 1.0
    d: float = 0.0  # depth of the 3-D offset (blocks style)
    rank: int = 0


def _size(net: Network, node: Node, style: str) -> tuple[float, float, float]:
    """Width, height and 3-D depth in cm of a node's box."""
    out = node.members[-1].out
    kind = layout.kind(net, node)
    if kind == "join":
        return 0.55, 0.55, 0.0
    if style == "flat":
        lines = _lines(net, node)
        return 0.35 * len(lines) + 0.3, max(2.6, 0.16 * max(map(len, lines)) + 0.4), 0.0
    # a map: channels and its largest side; a token sequence: features and its length
    channels = out.dims[0] if out.layout.is_map else out.dims[-1]
    side = max(out.spatial) if out.layout.is_map else out.dims[0] if len(out.dims) > 1 else 1
    w = 0.15 + 0.1 * math.log2(max(channels, 1))
    h = 0.5 + 0.42 * math.log2(max(side, 1))
    return w, h, h * 0.35


def _lines(net: Network, node: Node) -> list[str]:
    """The node's text, plain (escaped later): notation first, folded layers after."""
    head = node.members[0]
    if node.block is not None:
        return [node.title, *contents(net, node)]
    if ops.OPS[head.op].arity == 0:
        return ["input"]
    return [notation(net, head), *(f"+{notation(net, m)}" for m in node.members[1:])]


def _ranks(drawing: Drawing) -> dict[str, int]:
    g = nx.DiGraph((e.src, e.dst) for e in drawing.edges)
    g.add_nodes_from(drawing.nodes)
    rank: dict[str, int] = {}
    for n in nx.topological_sort(g):
        rank[n] = max((rank[p] + 1 for p in g.predecessors(n)), default=0)
    return rank


def _place(net: Network, drawing: Drawing, style: str) -> dict[str, _Box]:
    """Columns by rank; a node continues its predecessor's lane, a branch point spreads the
    successors in the next column over lanes (spec order top to bottom), a join sits at the
    mean of its inputs."""
    rank = _ranks(drawing)
    boxes = {nid: _Box(*(0.0, 0.0), *_size(net, n, style), rank=rank[nid])
             for nid, n in drawing.nodes.items()}
    lane = max(b.h + b.d for b in boxes.values()) + 1.4  # room for the label under a box
    preds: dict[str, list[str]] = {n: [] for n in drawing.nodes}
    succs: dict[str, list[str]] = {n: [] for n in drawing.nodes}
    for e in drawing.edges:
        preds[e.dst].append(e.src)
        succs[e.src].append(e.dst)
    placed: set[str] = set()
    for nid in drawing.nodes:  # insertion order is topological
        if nid not in placed:
            ys = [boxes[p].y for p in preds[nid]]
            boxes[nid].y = sum(ys) / len(ys) if ys else 0.0
            placed.add(nid)
        nxt = [s for s in succs[nid] if rank[s] == rank[nid] + 1 and len(preds[s]) == 1]
        for i, s in enumerate(nxt):
            boxes[s].y = boxes[nid].y + ((len(nxt) - 1) / 2 - i) * lane
            placed.add(s)
    widths: dict[int, float] = {}
    for nid, b in boxes.items():  # a column is as wide as its widest box or label
        text = _lines(net, drawing.nodes[nid]) if style == "blocks" else [""]
        label = 0.15 * max(len(t) for t in text) + 0.4 - _GAP / 2
        widths[b.rank] = max(widths.get(b.rank, 0.0), b.w + b.d, label)
    x, left = 0.0, {}
    for r in sorted(widths):
        left[r] = x
        x += widths[r] + _GAP
    if x > MAX_WIDTH_CM:
        raise NetdslError(f"the TikZ figure would be {x / 100:.1f} m wide ({len(widths)} "
                          "columns), beyond what TeX can typeset", path=net.path,
                          hint="draw blocks as single nodes with --depth 1 or --depth 2")
    for b in boxes.values():
        b.x = left[b.rank] + widths[b.rank] / 2
    return boxes


def _rgb(kind: str) -> str:
    r, g, b = _RGB[kind]
    return f"{{rgb,255:red,{r};green,{g};blue,{b}}}"


def _node(net: Network, i: int, node: Node, b: _Box, style: str) -> list[str]:
    """TikZ lines drawing one node named n<i> (its label l<i>)."""
    kind = layout.kind(net, node)
    dashed = ",dashed" if any(m.aux for m in node.members) else ""
    fill = _rgb(kind)
    lines = [escape.latex(t) for t in _lines(net, node)]
    at = f"({b.x:.3f},{b.y:.3f})"
    if kind == "join":
        return [rf"\node[circle,draw,fill={fill},inner sep=0pt,minimum size={b.w}cm,"
                rf"font=\scriptsize{dashed}] (n{i}) at {at} {{{lines[0]}}};",
                rf"\node[font=\tiny,below=1pt] (l{i}) at (n{i}.south) {{}};"]
    if style == "flat":
        text = r"\\ ".join([rf"\textbf{{{lines[0]}}}", *lines[1:]])
        return [rf"\node[draw,rounded corners=2pt,fill={fill},rotate=90,align=center,"
                rf"minimum width={b.h:.3f}cm,minimum height={b.w:.3f}cm,inner sep=2pt,"
                rf"font=\footnotesize{dashed}] (n{i}) at {at} {{{text}}};",
                rf"\node[font=\tiny,below=1pt,text=black!60] (l{i}) at (n{i}.west) "
                rf"{{{escape.latex(shape(node.members[-1]))}}};"]
    out = []
    stack = min(node.repeat, 3) if node.repeat > 1 and not node.parallel else 1
    for k in range(stack - 1, -1, -1):  # folded repeats: cards behind the front box
        dx = dy = 0.12 * k
        out += _box(f"n{i}" if k == 0 else None, b, dx, dy, fill, dashed)
    text = r"\\ ".join([rf"\textbf{{{lines[0]}}}", *lines[1:],
                        rf"\textcolor{{black!60}}{{{escape.latex(shape(node.members[-1]))}}}"])
    out.append(rf"\node[below=2pt,align=center,font=\scriptsize,inner sep=1pt] (l{i}) at "
               rf"(n{i}.south) {{{text}}};")
    return out


def _box(name: str | None, b: _Box, dx: float, dy: float, fill: str, dashed: str) -> list[str]:
    """A box with a 3-D top and side (PlotNeuralNet's look); the front face is ``name``."""
    x, y = b.x + dx, b.y + dy
    dxd, dyd = b.d * 0.87, b.d * 0.5
    w, h = b.w / 2, b.h / 2
    style = f"draw,fill={fill},line width=0.4pt{dashed}"
    faces = [rf"\draw[{style},fill opacity=0.8] ({x - w:.3f},{y + h:.3f}) -- ++({dxd:.3f},"
             rf"{dyd:.3f}) -- ++({b.w:.3f},0) -- ({x + w:.3f},{y + h:.3f}) -- cycle;",
             rf"\draw[{style},fill opacity=0.6] ({x + w:.3f},{y - h:.3f}) -- ++({dxd:.3f},"
             rf"{dyd:.3f}) -- ++(0,{b.h:.3f}) -- ({x + w:.3f},{y + h:.3f}) -- cycle;"]
    if name is None:
        return [*faces, rf"\draw[{style}] ({x - w:.3f},{y - h:.3f}) rectangle "
                        rf"({x + w:.3f},{y + h:.3f});"]
    return [*faces, rf"\node[{style},inner sep=0pt,minimum width={b.w:.3f}cm,"
                    rf"minimum height={b.h:.3f}cm] ({name}) at ({x:.3f},{y:.3f}) {{}};"]


def _edges(net: Network, drawing: Drawing, boxes: dict[str, _Box], ids: dict[str, int]
           ) -> list[str]:
    out = []
    tops = sorted(boxes.values(), key=lambda b: b.x)
    for e in drawing.edges:
        a, b = boxes[e.src], boxes[e.dst]
        ib = ids[e.dst]
        style = "->,>=stealth,draw=black!70" + (",dashed" if e.aux else "")
        label = escape.latex(shape(drawing.nodes[e.src].members[-1]))
        tag = rf"node[midway,above,font=\tiny,text=black!70] {{{label}}}"
        src = f"({a.x + a.w / 2 + 0.87 * a.d:.3f},{a.y + 0.25 * a.d:.3f})"  # the side face
        dst = f"({b.x - b.w / 2:.3f},{b.y:.3f})"
        if b.rank - a.rank > 1 and abs(a.y - b.y) < 1e-6:  # a skip: over the boxes between
            top = max(t.y + t.h / 2 + t.d * 0.5 for t in tops if a.x <= t.x <= b.x
                      and abs(t.y - a.y) < 1e-6) + 0.35
            out.append(rf"\draw[{style}] ({a.x + 0.43 * a.d:.3f},{a.y + a.h / 2 + a.d / 2:.3f})"
                       rf" |- ({(a.x + b.x) / 2:.3f},{top:.3f}) {tag} -| (n{ib}.north);")
        elif abs(a.y - b.y) < 1e-6:
            out.append(rf"\draw[{style}] {src} -- {tag} {dst};")
        else:  # to or from another lane: across at the source's height, then up or down
            mid = b.x - b.w / 2 - 0.3
            out.append(rf"\draw[{style}] {src} -- ({mid:.3f},{a.y + 0.25 * a.d:.3f}) {tag} "
                       rf"|- {dst};")
    return out


def _frames(drawing: Drawing, ids: dict[str, int]) -> list[str]:
    """A labelled frame per name scope, fitted around its nodes, labels and inner frames."""
    scopes: dict[tuple[str, ...], list[str]] = {}
    for nid, node in drawing.nodes.items():
        for k in range(1, len(node.scope) + 1):
            scopes.setdefault(node.scope[:k], []).append(f"(n{ids[nid]}) (l{ids[nid]})")
    out = [r"\begin{scope}[on background layer]"]
    names: dict[tuple[str, ...], str] = {}
    for sc in sorted(scopes, key=len, reverse=True):  # inner frames first: parents fit them
        names[sc] = f"f{len(names)}"
        inner = " ".join(f"({names[c]})" for c in names if len(c) == len(sc) + 1
                         and c[:len(sc)] == sc)
        dashed = ",dashed" if any(s.startswith("aux") for s in sc) else ""
        out.append(rf"\node[draw=black!40,rounded corners=3pt,inner sep=5pt,fit={{"
                   rf"{' '.join(scopes[sc])} {inner}}},label={{[font=\scriptsize,"
                   rf"anchor=south west,inner sep=1pt]north west:{escape.latex(sc[-1])}}}"
                   rf"{dashed}] ({names[sc]}) {{}};")
    out.append(r"\end{scope}")
    return out if names else []


def to_tikz(net: Network, depth: int | None = None, *, aux: bool = True,
            style: str = "blocks", standalone: bool = True) -> str:
    """The network as TikZ source.

    Args:
        net: a loaded network.
        depth: scopes this deep are drawn as one box each (None: every layer).
        aux: draw the auxiliary heads (dashed).
        style: ``blocks`` (boxes sized by the tensor) or ``flat`` (equal boxes).
        standalone: a document pdflatex compiles to the figure alone; else a
            ``tikzpicture`` to ``\\input`` (the document loads tikz).
    """
    if style not in STYLES:
        raise NetdslError(f"unknown TikZ style {style!r}", hint="blocks or flat")
    drawing = layout.build(net, depth, aux)
    layout.guard(net, drawing, depth, aux)
    layout.titles(drawing)
    boxes = _place(net, drawing, style)
    ids = {nid: i for i, nid in enumerate(drawing.nodes)}
    body = [rf"% {escape.latex(net.header.title or net.name)}: drawn by netdsl from "
            rf"{escape.latex(net.path)}",
            r"\begin{tikzpicture}[x=1cm,y=1cm]"]
    for nid, node in drawing.nodes.items():
        body += _node(net, ids[nid], node, boxes[nid], style)
    body += _edges(net, drawing, boxes, ids)
    body += _frames(drawing, ids)
    body.append(r"\end{tikzpicture}")
    libs = r"\usetikzlibrary{fit,backgrounds}"
    if standalone:  # a page the size of the picture, without the standalone class
        return "\n".join([*_PREAMBLE, libs, r"\begin{document}", r"\savebox{\netdslfig}{%",
                          *body, "}", *_SHIP, r"\end{document}"]) + "\n"
    return "\n".join([r"% \input this file in a document that loads tikz", libs, *body]) + "\n"

