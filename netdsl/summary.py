"""Per-layer summary tables (text, Markdown, LaTeX, HTML, JSON) like the notes' VGG16 table."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from . import escape, units
from .network import LayerInfo, Network
from .units import plural


def _si(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def as_dict(net: Network, training: bool = False) -> dict[str, Any]:
    """The summary as plain data: the contract of ``netdsl summary --format json``."""
    return {
        "name": net.name,
        "title": net.header.title,
        "input": list(net.input.dims),
        "input_layout": net.input.layout.name.lower(),
        "output": list(net.output.dims),
        "output_layout": net.output.layout.name.lower(),
        "params": net.params,
        "params_with_aux": net.params_training,
        "non_trainable": buffers(net, training),
        "macs": net.macs,
        "activations": net.activations,
        "weight_layers": net.weight_layers,
        "layers": [
            {"name": r.name, "op": r.op, "shape": list(r.out.dims),
             "layout": r.out.layout.name.lower(), "params": r.params, "macs": r.macs,
             "activations": r.activations, "aux": r.aux, "line": r.line}
            for r in net.layers(training)
        ],
    }


def to_json(net: Network, training: bool = False, depth: int | None = None) -> str:
    """Every layer (``depth`` folds only the tables: JSON is data, not a document)."""
    return json.dumps(as_dict(net, training), indent=2)


_COLUMNS = ("layer", "op", "output", "params", "MACs", "activations")
MB = 1e6  # sizes in MB of float32 values, as torchinfo reports them


def buffers(net: Network, training: bool = False) -> int:
    """Non-trainable values: BN running statistics (state_dict buffers, not parameters)."""
    from . import ops

    total = 0
    for r in net.layers(training):
        lay = net.graph[r.name]
        specs = ops.OPS[lay.op].tensors(lay.attrs, net.in_shapes(lay))
        total += sum(math.prod(t.shape) for t in specs if not t.trainable)
    return total


def rows(net: Network, training: bool = False, depth: int | None = None) -> list[tuple[str, ...]]:
    """The summary's rows, the same in every table format: the input, then every layer that
    costs something or stores an output (in-place activations and dropout, zero in every
    column, are left out as papers do), each scope ``depth`` levels deep folded into one row
    with its totals. The totals row is separate (``total_cells``)."""
    out = [("input", "", str(net.input), "0", "0", f"{net.input.numel:,}")]
    folded: dict[str, list[LayerInfo]] = {}
    order: list[str | LayerInfo] = []
    for r in net.layers(training):
        parts = r.name.split(".")
        if depth is not None and len(parts) > depth:
            key = ".".join(parts[:depth])
            if key not in folded:
                folded[key] = []
                order.append(key)
            folded[key].append(r)
        elif r.params or r.macs or r.activations:
            order.append(r)
    for item in order:
        if isinstance(item, LayerInfo):
            out.append(_cells(item))
            continue
        members = folded[item]
        subs = {m.name.split(".")[depth] for m in members if m.name.count(".") > depth}
        bases = {x.rstrip("0123456789") or "block" for x in subs}  # layer2.0…: blocks
        what = (plural(len(subs), bases.pop()) if len(bases) == 1  # branch1…4: 4 branches
                else plural(sum(1 for m in members if m.params or m.macs or m.activations),
                            "layer"))
        aux = " (aux)" if all(m.aux for m in members) else ""
        out.append((item + aux, what, str(members[-1].out),
                    f"{sum(m.params for m in members):,}", f"{sum(m.macs for m in members):,}",
                    f"{sum(m.activations for m in members):,}"))
    return out


def _cells(r: LayerInfo) -> tuple[str, ...]:
    return (r.name + (" (aux)" if r.aux else ""), r.op, str(r.out), f"{r.params:,}",
            f"{r.macs:,}", f"{r.activations:,}")


def total_cells(net: Network, training: bool = False) -> tuple[str, ...]:
    params = net.params_training if training else net.params
    macs = sum(r.macs for r in net.layers(training))
    acts = net.input.numel + sum(r.activations for r in net.layers(training))
    return ("total", "", str(net.output), f"{params:,}", f"{macs:,}", f"{acts:,}")


def footer(net: Network, training: bool = False) -> list[str]:
    """The totals in words: trainable and non-trainable values, sizes in MB."""
    params = net.params_training if training else net.params
    acts = int(total_cells(net, training)[5].replace(",", ""))
    buf = buffers(net, training)
    what = " (BN running statistics)" if buf else ""
    out = [f"params {params:,} trainable ({_si(params)}), {buf:,} non-trainable{what}; "
           f"multiply-adds {net.macs:,} ({units.macs(net.macs)})",
           f"sizes as float32: params {(params + buf) * 4 / MB:.2f} MB, activations "
           f"{acts * 4 / MB:.2f} MB per image (the input and every stored layer output)"]
    if net.params_training != net.params and not training:
        out.append(f"with auxiliary heads (training, --training): params "
                   f"{net.params_training:,}")
    return out


def to_table(net: Network, training: bool = False, depth: int | None = None) -> str:
    """Fixed-width text table; the deterministic form the golden tests compare."""
    body = rows(net, training, depth)
    all_rows = [_COLUMNS, *body, total_cells(net, training)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(_COLUMNS))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [escape.visible(caption(net)), line(_COLUMNS), rule, *(line(r) for r in body), rule,
           line(all_rows[-1]), *footer(net, training)]
    return "\n".join(out) + "\n"


def caption(net: Network) -> str:
    """The one-line description above a document table (plain text; each format escapes it)."""
    title = net.header.title or net.name
    return (f"{title}: input {net.input}, "
            f"{plural(net.weight_layers, 'weight layer')}, {_si(net.params)} params, "
            f"{units.macs(net.macs)}")


def to_markdown(net: Network, training: bool = False, depth: int | None = None) -> str:
    """A pipe table after a ``Table:`` caption line (Pandoc's caption syntax)."""
    body = rows(net, training, depth)
    out = [f"Table: {escape.markdown(caption(net))}", "",
           "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * 3]
    e = escape.markdown
    out += ["| " + " | ".join(e(c) for c in r) + " |" for r in body]
    out.append("| " + " | ".join(f"**{e(c)}**" if c else ""
                                 for c in total_cells(net, training)) + " |")
    return "\n".join(out) + "\n"


def to_latex(net: Network, training: bool = False, depth: int | None = None) -> str:
    """A booktabs table of the layers in a ``table`` float with a caption."""
    esc = escape.latex
    label = re.sub(r"[^A-Za-z0-9:.-]", "-", net.name)
    out = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{esc(caption(net))}}}",
           rf"\label{{tab:{label}}}",
           r"\begin{tabular}{lllrrr}", r"\toprule",
           " & ".join(esc(c) for c in _COLUMNS) + r" \\", r"\midrule"]
    out += [" & ".join(esc(c) for c in r) + r" \\" for r in rows(net, training, depth)]
    out += [r"\midrule", " & ".join(esc(c) for c in total_cells(net, training)) + r" \\",
            r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_html(net: Network, training: bool = False, depth: int | None = None) -> str:
    """An HTML table with a caption (what Jupyter shows for a Network)."""
    e = escape.html
    cap = e(caption(net))

    def row(cells: tuple[str, ...], tag: str = "td") -> str:
        return "<tr>" + "".join(
            f'<{tag} style="text-align:{"left" if i < 3 else "right"}">{e(c)}</{tag}>'
            for i, c in enumerate(cells)) + "</tr>"

    out = ['<table class="netdsl-summary">', f"<caption>{cap}</caption>",
           row(_COLUMNS, "th"), *(row(c) for c in rows(net, training, depth)),
           row(total_cells(net, training), "th"), "</table>"]
    return "\n".join(out) + "\n"


FORMATS = {"table": to_table, "json": to_json, "markdown": to_markdown, "latex": to_latex,
           "html": to_html}
