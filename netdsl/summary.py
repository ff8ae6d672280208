"""Per-layer summary tables (text, Markdown, LaTeX, HTML, JSON) like the notes' VGG16 table."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from . import escape
from .network import LayerInfo, Network


def _shape(s: tuple[Any, ...]) -> str:
    return "×".join(str(d) for d in s[1:])


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
        "input": list(net.input_shape[1:]),
        "output": list(net.output_shape[1:]),
        "params": net.params,
        "params_with_aux": net.params_training,
        "macs": net.macs,
        "activations": net.activations,
        "weight_layers": net.weight_layers,
        "layers": [
            {"name": r.name, "op": r.op, "shape": list(r.shape[1:]), "params": r.params,
             "macs": r.macs, "activations": r.activations, "aux": r.aux, "line": r.line}
            for r in net.layers(training)
        ],
    }


def to_json(net: Network, training: bool = False) -> str:
    return json.dumps(as_dict(net, training), indent=2)


_COLUMNS = ("layer", "op", "output", "params", "MACs", "activations")


def _cells(r: LayerInfo) -> tuple[str, ...]:
    return (r.name + (" (aux)" if r.aux else ""), r.op, _shape(r.shape), f"{r.params:,}",
            f"{r.macs:,}", f"{r.activations:,}")


def _total_cells(net: Network) -> tuple[str, ...]:
    return ("total", "", _shape(net.output_shape), f"{net.params:,}", f"{net.macs:,}",
            f"{net.activations:,}")


def _paper_rows(net: Network, training: bool) -> list[tuple[str, ...]]:
    """Rows for documents (Markdown, LaTeX, HTML), as the notes' VGG16 memory table has them:
    the input first, and no rows for in-place layers (activations, dropout), which cost
    nothing in any column; the totals are unchanged."""
    elements = math.prod(int(d) for d in net.input_shape[1:])
    head = ("input", "", _shape(net.input_shape), "0", "0", f"{elements:,}")
    return [head, *(_cells(r) for r in net.layers(training)
                    if r.params or r.macs or r.activations)]


def to_table(net: Network, training: bool = False) -> str:
    """Fixed-width text table; the deterministic form the golden tests compare."""
    rows = [_COLUMNS, *(_cells(r) for r in net.layers(training)), _total_cells(net)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = net.header.title or net.name
    head = [f"{title}: input {_shape(net.input_shape)}, {net.weight_layers} weight layers"]
    out = [*head, line(rows[0]), rule, *(line(r) for r in rows[1:-1]), rule, line(rows[-1])]
    out.append(f"params {net.params:,} ({_si(net.params)}); multiply-adds {net.macs:,} "
               f"({_si(net.macs)}); activations {net.activations:,} per image "
               f"({net.activations * 4 / 2**20:.1f} MiB as float32)")
    if net.params_training != net.params:
        out.append(f"with auxiliary heads (training): params {net.params_training:,}")
    return "\n".join(out) + "\n"


def caption(net: Network) -> str:
    """The one-line description above a document table (plain text; each format escapes it)."""
    title = net.header.title or net.name
    return (f"{title}: input {_shape(net.input_shape)}, {net.weight_layers} weight layers, "
            f"{_si(net.params)} params, {_si(net.macs)} multiply-adds")


def to_markdown(net: Network, training: bool = False) -> str:
    """A pipe table after a ``Table:`` caption line (Pandoc's caption syntax)."""
    rows = _paper_rows(net, training)
    out = [f"Table: {escape.markdown(caption(net))}", "",
           "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * 3]
    e = escape.markdown
    out += ["| " + " | ".join(e(c) for c in r) + " |" for r in rows]
    out.append("| " + " | ".join(f"**{e(c)}**" if c else "" for c in _total_cells(net)) + " |")
    return "\n".join(out) + "\n"


def to_latex(net: Network, training: bool = False) -> str:
    """A booktabs table of the layers in a ``table`` float with a caption."""
    esc = escape.latex
    label = re.sub(r"[^A-Za-z0-9:.-]", "-", net.name)
    out = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{esc(caption(net))}}}",
           rf"\label{{tab:{label}}}",
           r"\begin{tabular}{lllrrr}", r"\toprule",
           " & ".join(esc(c) for c in _COLUMNS) + r" \\", r"\midrule"]
    out += [" & ".join(esc(c) for c in r) + r" \\" for r in _paper_rows(net, training)]
    out += [r"\midrule", " & ".join(esc(c) for c in _total_cells(net)) + r" \\",
            r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_html(net: Network, training: bool = False) -> str:
    """An HTML table with a caption (what Jupyter shows for a Network)."""
    e = escape.html
    cap = e(caption(net))

    def row(cells: tuple[str, ...], tag: str = "td") -> str:
        return "<tr>" + "".join(
            f'<{tag} style="text-align:{"left" if i < 3 else "right"}">{e(c)}</{tag}>'
            for i, c in enumerate(cells)) + "</tr>"

    out = ['<table class="netdsl-summary">', f"<caption>{cap}</caption>",
           row(_COLUMNS, "th"), *(row(c) for c in _paper_rows(net, training)),
           row(_total_cells(net), "th"), "</table>"]
    return "\n".join(out) + "\n"


FORMATS = {"table": to_table, "json": to_json, "markdown": to_markdown, "latex": to_latex,
           "html": to_html}
