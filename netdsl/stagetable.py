"""Residual networks side by side in the ResNet paper's Table 1 layout.

Rows are resolution stages: consecutive top-level entries (a layer, or a named scope of
blocks like ``layer2``) with the same output size share a row, named after its scopes
(``layer2``) or its first layer (``conv1``), with the output size beside it. A layer is written
the paper's way (``7×7, 64, stride 2``, ``3×3 max pool, stride 2``, ``1000-d fc``); a scope of
blocks is a bracket of each block's weight layers (``[3×3, 64; 3×3, 64] ×2``), equal blocks
counted once, the stage's stride after it and projection shortcuts left out, as the paper
does. An entry equal in every column spans the row. Below: multiply-adds (the paper's
"FLOPs") and parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import escape, ops
from .ir import Layer
from .network import Network
from .shape import Layout


@dataclass(frozen=True, slots=True)
class Bracket:
    """Blocks of a stage: one block's weight layers, how many such blocks, the stride."""

    lines: tuple[str, ...]
    times: int = 1
    stride: int = 1

    def text(self, sep: str = "; ") -> str:
        out = "[" + sep.join(self.lines) + "]"
        out += f" ×{self.times}" if self.times > 1 else ""
        return out + (f", stride {self.stride}" if self.stride > 1 else "")


Item = str | Bracket


@dataclass(frozen=True, slots=True)
class StageRow:
    """One resolution stage: its name, output size, and sub-rows of items (a spanning item,
    or one item per column; None where a column has nothing)."""

    name: str
    size: str
    lines: tuple[Item | tuple[Item | None, ...], ...]


@dataclass(frozen=True, slots=True)
class StageTable:
    labels: tuple[str, ...]
    rows: tuple[StageRow, ...]
    macs: tuple[int, ...]
    params: tuple[int, ...]


def _k(size: tuple[int, ...], n: int = 2) -> str:
    """A kernel as the paper writes it: ``3×3`` (a single size repeats over the n axes)."""
    return "×".join(map(str, size * n if len(size) == 1 else size))


def paper_text(net: Network, lay: Layer) -> str:
    """A layer as the ResNet paper's table writes it."""
    op = ops.OPS[lay.op]
    a = lay.attrs
    ins = net.in_shapes(lay)
    n = max(len(ins[0].spatial), 1) if ins else 2
    stride = getattr(a, "step", None) or (getattr(a, op.stride_field, None)
                                          if op.stride_field else None)
    tail = f", stride {stride[0]}" if stride and stride[0] > 1 else ""
    if op.kernel_field is not None:
        k = getattr(a, op.kernel_field)
        if op.counts_in_depth:
            groups = getattr(a, "groups", 1)
            return f"{_k(k, n)}, {a.out}" + (f", groups {groups}" if groups > 1 else "") + tail
        return f"{_k(k, n)} {op.name.removesuffix('pool')} pool{tail}"
    if op.counts_in_depth and lay.out.layout is Layout.VECTOR:
        return f"{a.out}-d fc"
    text = op.notation(a, ins)
    return {"global avgpool": "average pool", "soft-max": "softmax"}.get(text, text)


def _elementwise(net: Network, lay: Layer) -> bool:
    """BN, activations, dropout: one input, same shape, no window, not a weight layer of the
    depth. The paper's table leaves them out."""
    op = ops.OPS[lay.op]
    return (op.arity == 1 and op.kernel_field is None and not op.counts_in_depth
            and net.in_shapes(lay)[0] == lay.out)


def _size(lay: Layer) -> str:
    return "×".join(map(str, lay.out.spatial)) if lay.out.spatial else "1×1"


def _bracket(net: Network, scope: str, layers: list[Layer]) -> list[Bracket] | None:
    """A named scope of numbered blocks as brackets; None when it is not one."""
    blocks: dict[str, list[Layer]] = {}
    for lay in layers:
        parts = lay.name[len(scope) + 1:].split(".")
        if len(parts) < 2 or not parts[0].isdigit():
            return None
        if len(parts) == 2 and ops.OPS[lay.op].counts_in_depth:  # not a block's sub-scope
            blocks.setdefault(parts[0], []).append(lay)
    out: list[Bracket] = []
    for block in blocks.values():
        strides = [(getattr(x.attrs, "stride", None) or (1,))[0] for x in block]
        lines = tuple(paper_text(net, x).split(", stride")[0] for x in block)
        if out and out[-1].lines == lines and max(strides) == 1:
            out[-1] = Bracket(lines, out[-1].times + 1, out[-1].stride)
        else:
            out.append(Bracket(lines, 1, max(strides)))
    return out or None


def stages(net: Network) -> list[tuple[str, str, list[Item]]]:
    """(name, output size, items) per resolution stage of one network."""
    entries: list[tuple[str, Layer, list[Item]]] = []  # (name, last layer, items)
    scopes: dict[str, list[Layer]] = {}
    for lay in net.graph.layers():
        if ops.OPS[lay.op].arity == 0 or lay.aux:
            continue
        top, dot, _ = lay.name.partition(".")
        if dot:
            if top not in scopes:
                scopes[top] = []
                entries.append((top, lay, []))
            scopes[top].append(lay)
        elif _elementwise(net, lay):
            continue
        else:  # a stage without scopes is named after its weight layer (conv1, fc)
            name = lay.name if ops.OPS[lay.op].counts_in_depth else ""
            entries.append((name, lay, [paper_text(net, lay)]))
    out: list[tuple[str, str, list[Item]]] = []
    last_size = None
    for name, lay, items in entries:
        if name in scopes:
            members = scopes[name]
            lay = members[-1]
            items = list(_bracket(net, name, members) or
                         [paper_text(net, x) for x in members
                          if not _elementwise(net, x)])
        size = _size(lay)
        if out and size == last_size:
            prev_name, _, prev_items = out[-1]
            if name in scopes:
                label = f"{prev_name}, {name}" if prev_name in scopes else name
            else:
                label = prev_name if prev_name in scopes else prev_name or name
            out[-1] = (label, size, prev_items + items)
        else:
            out.append((name, size, items))
        last_size = size
    return out


def is_staged(net: Network) -> bool:
    """Residual-style: some top-level scope is a run of numbered blocks (``layer1.0``), and
    every numbered block has weight layers of its own to bracket (torchvision's MobileNet
    nests them deeper: ``features.1.conv.0.0``)."""
    tops = {x.name.split(".")[0] for x in net.graph.layers() if x.name.count(".") >= 2}
    if not any(x.name.split(".")[1].isdigit() for x in net.graph.layers()
               if x.name.split(".")[0] in tops and x.name.count(".") >= 2):
        return False
    own: dict[str, bool] = {}  # numbered block -> has a weight layer directly inside
    for x in net.graph.layers():
        parts = x.name.split(".")
        if len(parts) >= 3 and parts[1].isdigit() and ops.OPS[x.op].counts_in_depth:
            key = f"{parts[0]}.{parts[1]}"
            own[key] = own.get(key, False) or len(parts) == 3
    return all(own.values())


def build_stage_table(nets: Sequence[Network], labels: Sequence[str] | None = None
                      ) -> StageTable:
    labels = tuple(labels) if labels else tuple(f"{n.weight_layers}-layer" for n in nets)
    cols = [stages(n) for n in nets]
    rows: list[StageRow] = []
    for i in range(max(len(c) for c in cols)):
        per = [c[i] if i < len(c) else ("", "", []) for c in cols]
        names = [p[0] for p in per if p[0]]
        sizes = [p[1] for p in per if p[1]]
        lines: list[Item | tuple[Item | None, ...]] = []
        for j in range(max(len(p[2]) for p in per)):
            cells = tuple(p[2][j] if j < len(p[2]) else None for p in per)
            lines.append(cells[0] if all(c == cells[0] for c in cells) and cells[0] is not None
                         else cells)
        rows.append(StageRow(names[0] if len(set(names)) == 1 else " / ".join(dict.fromkeys(
            names)), sizes[0] if len(set(sizes)) == 1 else " / ".join(dict.fromkeys(sizes)),
            tuple(lines)))
    return StageTable(labels, tuple(rows), tuple(n.macs for n in nets),
                      tuple(n.params for n in nets))


def _giga(n: int) -> str:
    return f"{n / 1e9:.2f}"


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M"


# ---- renderers ------------------------------------------------------------------------------
def _columns(r: StageRow, line: Item | tuple[Item | None, ...], n: int
             ) -> tuple[bool, tuple[Item | None, ...]]:
    if isinstance(line, tuple):
        return False, line
    return True, (line,) * n


def to_markdown(t: StageTable) -> str:
    e = escape.markdown
    n = len(t.labels)

    def item(x: Item | None) -> str:
        if x is None:
            return ""
        return e(x) if isinstance(x, str) else e(x.text("<br>")).replace("&lt;br&gt;", "<br>")

    out = ["| layer name | output size | " + " | ".join(e(x) for x in t.labels) + " |",
           "|:---|:---:|" + ":---:|" * n]
    for r in t.rows:
        for k, line in enumerate(r.lines):
            _, cells = _columns(r, line, n)
            head = f"| {e(r.name)} | {e(r.size)} |" if k == 0 else "| | |"
            out.append(head + " " + " | ".join(item(c) for c in cells) + " |")
    out.append("| multiply-adds (FLOPs) | | " + " | ".join(f"{_giga(m)}×10⁹" for m in t.macs)
               + " |")
    out.append("| params | | " + " | ".join(_millions(p) for p in t.params) + " |")
    return "\n".join(out) + "\n"


def _latex_item(x: Item | None) -> str:
    if x is None:
        return ""
    if isinstance(x, str):
        return escape.latex(x)
    body = r" \\ ".join(rf"\mbox{{{escape.latex(s)}}}" for s in x.lines)
    tail = rf"\times{x.times}" if x.times > 1 else ""
    stride = f", stride {x.stride}" if x.stride > 1 else ""
    return rf"$\left[\begin{{array}}{{@{{}}c@{{}}}}{body}\end{{array}}\right]{tail}${stride}"


def to_latex(t: StageTable) -> str:
    """A booktabs tabular (``\\usepackage{booktabs}``); blocks are bracketed arrays."""
    n = len(t.labels)
    out = [rf"\begin{{tabular}}{{cc{'c' * n}}}", r"\toprule",
           "layer name & output size & " + " & ".join(escape.latex(x) for x in t.labels)
           + r" \\", r"\midrule"]
    for r in t.rows:
        for k, line in enumerate(r.lines):
            span, cells = _columns(r, line, n)
            head = f"{escape.latex(r.name)} & {escape.latex(r.size)}" if k == 0 else " & "
            body = (rf"\multicolumn{{{n}}}{{c}}{{{_latex_item(cells[0])}}}" if span
                    else " & ".join(_latex_item(c) for c in cells))
            out.append(f"{head} & {body} \\\\")
        out.append(r"\midrule")
    out += [r"\multicolumn{2}{c}{multiply-adds (FLOPs)} & "
            + " & ".join(rf"${_giga(m)}\times10^9$" for m in t.macs) + r" \\",
            r"\multicolumn{2}{c}{params} & " + " & ".join(_millions(p) for p in t.params)
            + r" \\", r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_html(t: StageTable) -> str:
    e = escape.html
    n = len(t.labels)

    def item(x: Item | None) -> str:
        if x is None:
            return ""
        return e(x) if isinstance(x, str) else "<br>".join(
            e(s) for s in x.text("\n").split("\n"))

    out = ['<table class="netdsl-stages">',
           "<tr><th>layer name</th><th>output size</th>"
           + "".join(f"<th>{e(x)}</th>" for x in t.labels) + "</tr>"]
    for r in t.rows:
        for k, line in enumerate(r.lines):
            span, cells = _columns(r, line, n)
            head = (f'<td rowspan="{len(r.lines)}">{e(r.name)}</td>'
                    f'<td rowspan="{len(r.lines)}" align="center">{e(r.size)}</td>'
                    if k == 0 else "")
            body = (f'<td colspan="{n}" align="center">{item(cells[0])}</td>' if span
                    else "".join(f'<td align="center">{item(c)}</td>' for c in cells))
            out.append(f"<tr>{head}{body}</tr>")
    out.append('<tr><td colspan="2">multiply-adds (FLOPs)</td>'
               + "".join(f'<td align="center">{_giga(m)}×10<sup>9</sup></td>' for m in t.macs)
               + "</tr>")
    out.append('<tr><td colspan="2">params</td>'
               + "".join(f'<td align="center">{_millions(p)}</td>' for p in t.params) + "</tr>")
    out.append("</table>")
    return "\n".join(out) + "\n"


FORMATS: dict[str, Callable[[StageTable], str]] = {
    "markdown": to_markdown, "latex": to_latex, "html": to_html}
