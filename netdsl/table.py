"""Configuration tables: several networks side by side, rows aligned by stage (VGG's Table 1).

Each network becomes a column of the layers a paper prints (weight layers, pooling,
normalization, the classifier; not the in-place activations and dropout the prose mentions).
Columns are split into *stages* at pooling layers (parameter-free layers that shrink H×W), and
stage i of every column shares a row. Where all columns agree, each layer gets its own row
spanning the table (``maxpool``, ``FC-4096``); elsewhere a cell stacks the stage's layers and
prints in bold those a column adds relative to its left neighbour, as the paper does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import escape, ops
from .network import LayerInfo, Network
from .shape import Layout


@dataclass(frozen=True, slots=True)
class Stage:
    """The layers between two pooling layers, and the pooling layer that ends them (if any)."""

    layers: tuple[str, ...]
    pool: str | None


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: a single spanning text, or one cell per column (each a list of items)."""

    span: str | None = None
    cells: tuple[tuple[tuple[str, bool], ...], ...] = ()  # per column: (text, is_new) items
    pool: bool = False  # a row of pooling layers (stage boundary)


@dataclass(frozen=True, slots=True)
class ConfigTable:
    """The aligned table, independent of the output format."""

    labels: tuple[str, ...]
    weight_layers: tuple[int, ...]  # the depth: weight layers on the longest path
    input: Row
    rows: tuple[Row, ...]
    params: tuple[int, ...]
    title: str = "ConvNet Configuration"


def _is_pool(net: Network, r: LayerInfo) -> bool:
    ins = net.in_shapes(net.graph[r.name])
    return (r.params == 0 and len(ins) == 1 and ins[0].layout.is_map
            and r.out.layout is ins[0].layout and r.out.spatial != ins[0].spatial)


def _shown(r: LayerInfo) -> bool:
    """Papers' tables omit elementwise in-place layers (activations, dropout)."""
    return r.activations > 0


def stages(net: Network) -> list[Stage]:
    """The network's top-level layers split at pooling layers.

    A named top-level scope (``layer1 = bottleneck(64) ×3``) is one entry describing its
    blocks the way ResNet's Table 1 does: ``layer1: [conv1-64, conv3-64, conv1-256] ×3``.
    """
    out: list[Stage] = []
    cur: list[str] = []
    members: dict[str, list[LayerInfo]] = {}  # top-level scope -> its layers, in one pass
    for r in net.layers():
        top, dot, _ = r.name.partition(".")
        if dot:
            members.setdefault(top, []).append(r)
    seen_scopes: set[str] = set()
    for r in net.layers():
        if not _shown(r):
            continue
        top, dot, _ = r.name.partition(".")
        if dot:
            if top not in seen_scopes:
                seen_scopes.add(top)
                cur.append(describe_scope(net, top, members[top]))
            continue
        if _is_pool(net, r):
            out.append(Stage(tuple(cur), r.op))
            cur = []
        else:
            cur.append(r.op)
    if cur or not out:
        out.append(Stage(tuple(cur), None))
    return out


_STRIDE = re.compile(r"/[0-9]+(x[0-9]+)?")
_MAX_ITEMS = 4  # a scope described by more distinct parts is summarized by a count


def describe_scope(net: Network, scope: str, layers: Sequence[LayerInfo] | None = None) -> str:
    """``layer2: [conv1-128, conv3-128, conv1-512] ×4``: the weight layers of each block of
    a scope, repeats counted. Strides are left out, as in ResNet's Table 1 (the first block
    of a stage downsamples). Falls back to ``layer2 (13 weight layers)``.

    Args:
        net: the network.
        scope: a top-level scope name.
        layers: the scope's layers, when the caller has them (else found by name).
    """
    prefix = scope + "."
    if layers is None:
        layers = [r for r in net.layers() if r.name.startswith(prefix)]
    parts: dict[str, list[str]] = {}  # block (or "" for the scope's own layers) -> notations
    order: list[str] = []
    deep: set[str] = set()  # blocks with weight layers in sub-scopes
    for r in layers:
        if not ops.OPS[net.graph[r.name].op].counts_in_depth:
            continue
        rest = r.name[len(prefix):].split(".")
        if len(rest) > 2:  # inside a block's own sub-scope (a projection shortcut, SE gate)
            deep.add(rest[0])
            continue
        key = rest[0] if len(rest) == 2 else f"#{r.name}"
        if key not in parts:
            parts[key] = []
            order.append(key)
        parts[key].append(_STRIDE.sub("", r.op))
    items: list[tuple[str, int]] = []
    for key in order:
        text = parts[key][0] if key.startswith("#") else "[" + ", ".join(parts[key]) + "]"
        if items and items[-1][0] == text:
            items[-1] = (text, items[-1][1] + 1)
        else:
            items.append((text, 1))
    # a block whose weight layers all sit in sub-scopes (torchvision's features.1.conv.0.0)
    # would be missing from the list: count instead
    if not items or len(items) > _MAX_ITEMS or deep - set(parts):
        weights = net.depth_of(r.name for r in layers)
        return f"{scope} ({weights} weight layer{'s' if weights != 1 else ''})"
    return f"{scope}: " + " ".join(t + (f" ×{k}" if k > 1 else "") for t, k in items)


def weight_depth(net: Network) -> int:
    """The papers' depth, ``Network.weight_layers`` (the rule is ``network.depth``'s)."""
    return net.weight_layers


def _added(left: Sequence[str], right: Sequence[str]) -> list[bool]:
    """For each item of ``right``: True when it is not matched in ``left`` (a longest common
    subsequence alignment, earliest matches first)."""
    n, m = len(left), len(right)
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            lcs[i][j] = (lcs[i + 1][j + 1] + 1 if left[i] == right[j]
                         else max(lcs[i + 1][j], lcs[i][j + 1]))
    new = [True] * m
    i = j = 0
    while i < n and j < m:
        if left[i] == right[j]:
            new[j] = False
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            i += 1
        else:
            j += 1
    return new


def _input_text(net: Network) -> str:
    x = net.input
    if x.layout is Layout.MAP2:
        kind = {3: " RGB image", 1: " grayscale image"}.get(x.channels, f"×{x.channels}")
        return f"input ({x.spatial[0]} × {x.spatial[1]}{kind})"
    if x.layout.is_map:
        what = "-sample signal" if x.layout is Layout.MAP1 else " volume"
        channels = f"{x.channels} channel{'s' if x.channels != 1 else ''}"
        return f"input ({' × '.join(map(str, x.spatial))}{what}, {channels})"
    if x.layout is Layout.TOKENS:
        return f"input ({x.dims[0]} tokens of {x.dims[1]} features)"
    if x.layout is Layout.GRID:
        return f"input ({x.dims[0]} × {x.dims[1]} tokens of {x.dims[2]} features)"
    return f"input ({x.channels} features)"


def build_table(nets: Sequence[Network], labels: Sequence[str] | None = None,
                title: str = "ConvNet Configuration") -> ConfigTable:
    """Align the networks' stages into rows; see the module docstring."""
    labels = tuple(labels) if labels else tuple(n.name for n in nets)
    cols = [stages(n) for n in nets]
    depth = max(len(c) for c in cols)
    rows: list[Row] = []
    for i in range(depth):
        per = [c[i] if i < len(c) else Stage((), None) for c in cols]
        if all(s.layers == per[0].layers for s in per):
            rows += [Row(span=t) for t in per[0].layers]
        else:
            cells = []
            for k, s in enumerate(per):
                new = _added(per[k - 1].layers, s.layers) if k else [False] * len(s.layers)
                cells.append(tuple(zip(s.layers, new, strict=True)))
            rows.append(Row(cells=tuple(cells)))
        pools = [s.pool for s in per]
        if all(p == pools[0] for p in pools):
            if pools[0] is not None:
                rows.append(Row(span=pools[0], pool=True))
        else:
            rows.append(Row(cells=tuple(((p, False),) if p else () for p in pools), pool=True))
    inputs = [_input_text(n) for n in nets]
    inp = (Row(span=inputs[0]) if len(set(inputs)) == 1
           else Row(cells=tuple(((t, False),) for t in inputs)))
    return ConfigTable(labels, tuple(weight_depth(n) for n in nets), inp, tuple(rows),
                       tuple(n.params for n in nets), title)


def _millions(n: int) -> str:
    return f"{n / 1e6:.0f}M" if n >= 1e7 else f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n:,}"


# ---- renderers ------------------------------------------------------------------------------
def to_markdown(t: ConfigTable) -> str:
    """A pipe table; spanning rows repeat their text in every column (Markdown cannot span)."""
    n = len(t.labels)

    e = escape.markdown

    def cell(items: tuple[tuple[str, bool], ...]) -> str:
        return "<br>".join(f"**{e(s)}**" if new else e(s) for s, new in items)

    def row(r: Row) -> str:
        texts = [e(r.span)] * n if r.span is not None else [cell(c) for c in r.cells]
        return "| " + " | ".join(texts) + " |"

    out = ["| " + " | ".join(e(x) for x in t.labels) + " |", "|" + ":---:|" * n,
           "| " + " | ".join(f"{w} weight layers" for w in t.weight_layers) + " |",
           row(t.input), *(row(r) for r in t.rows),
           "| " + " | ".join(f"*{_millions(p)} params*" for p in t.params) + " |"]
    return "\n".join(out) + "\n"


def to_latex(t: ConfigTable) -> str:
    """A booktabs table (``\\usepackage{booktabs}``); stacked cells are nested tabulars."""
    n = len(t.labels)

    def cell(items: tuple[tuple[str, bool], ...]) -> str:
        parts = [rf"\textbf{{{escape.latex(s)}}}" if new else escape.latex(s)
                 for s, new in items]
        if len(parts) <= 1:
            return "".join(parts)
        return r"\begin{tabular}[t]{@{}c@{}}" + r" \\ ".join(parts) + r"\end{tabular}"

    def row(r: Row) -> str:
        if r.span is not None:
            return rf"\multicolumn{{{n}}}{{c}}{{{escape.latex(r.span)}}} \\"
        return " & ".join(cell(c) for c in r.cells) + r" \\"

    out = [rf"\begin{{tabular}}{{{'c' * n}}}", r"\toprule",
           rf"\multicolumn{{{n}}}{{c}}{{{escape.latex(t.title)}}} \\", r"\midrule",
           " & ".join(escape.latex(x) for x in t.labels) + r" \\",
           " & ".join(f"{w} weight layers" for w in t.weight_layers) + r" \\", r"\midrule",
           row(t.input), r"\midrule"]
    for r in t.rows:  # rules around stage rows and pooling rows, as in the paper
        ruled = r.span is None or r.pool
        if ruled and out[-1] != r"\midrule":
            out.append(r"\midrule")
        out.append(row(r))
        if ruled:
            out.append(r"\midrule")
    if out[-1] != r"\midrule":
        out.append(r"\midrule")
    out += [" & ".join(f"{_millions(p)} params" for p in t.params) + r" \\",
            r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_html(t: ConfigTable) -> str:
    """An HTML table with spanning rows (``colspan``) and ``<br>``-stacked cells."""
    n = len(t.labels)
    e = escape.html

    def cell(items: tuple[tuple[str, bool], ...]) -> str:
        return "<br>".join(f"<b>{e(s)}</b>" if new else e(s) for s, new in items)

    def row(r: Row) -> str:
        if r.span is not None:
            return f'<tr><td colspan="{n}" align="center">{e(r.span)}</td></tr>'
        return "<tr>" + "".join(f'<td align="center">{cell(c)}</td>' for c in r.cells) + "</tr>"

    out = ['<table class="netdsl-config">',
           f'<tr><th colspan="{n}">{e(t.title)}</th></tr>',
           "<tr>" + "".join(f"<th>{e(x)}</th>" for x in t.labels) + "</tr>",
           "<tr>" + "".join(f"<td align=\"center\">{w} weight layers</td>"
                            for w in t.weight_layers) + "</tr>",
           row(t.input), *(row(r) for r in t.rows),
           "<tr>" + "".join(f"<td align=\"center\"><i>{_millions(p)} params</i></td>"
                            for p in t.params) + "</tr>",
           "</table>"]
    return "\n".join(out) + "\n"


FORMATS: dict[str, Callable[[ConfigTable], str]] = {
    "markdown": to_markdown, "latex": to_latex, "html": to_html}


LAYOUTS = ("auto", "config", "stages", "vit")


def config_table(nets: Sequence[Network], fmt: str = "markdown",
                 labels: Sequence[str] | None = None,
                 title: str = "ConvNet Configuration", layout: str = "auto") -> str:
    """Render networks side by side (``markdown``, ``latex``, ``html``).

    Args:
        nets: the networks, one column each, left to right.
        fmt: the output format.
        labels: column headings; default the networks' names (``18-layer`` for stages).
        title: the heading spanning the columns (LaTeX and HTML, config layout).
        layout: ``config`` (VGG's Table 1: rows aligned by stage), ``stages`` (ResNet's
            Table 1: rows by resolution, bracketed blocks), ``vit`` (ViT's Table 1: layers,
            hidden size, MLP size, heads, params), or ``auto``: vit when every network has
            attention layers, stages when every network is a run of numbered blocks in named
            scopes, else config.
    """
    from . import stagetable, vittable

    if layout not in LAYOUTS:
        raise ValueError(f"unknown table layout {layout!r}")
    if layout == "vit" or (layout == "auto" and all(map(vittable.is_transformer, nets))):
        return vittable.FORMATS[fmt](vittable.build_vit_table(nets, labels))
    if layout == "stages" or (layout == "auto" and all(map(stagetable.is_staged, nets))):
        return stagetable.FORMATS[fmt](stagetable.build_stage_table(nets, labels))
    return FORMATS[fmt](build_table(nets, labels, title))
