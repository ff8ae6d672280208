"""Per-layer summary tables (text, Markdown, LaTeX, HTML, JSON) like the notes' VGG16 table."""

from __future__ import annotations

import html
import json
from typing import Any

from .network import LayerInfo, Network


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


def to_json(net: Network, training: bool = False) -> str:
    return json.dumps(as_dict(net, training), indent=2)


_COLUMNS = ("layer", "op", "output", "params", "MACs", "activations")


def _cells(r: LayerInfo) -> tuple[str, ...]:
    return (r.name + (" (aux)" if r.aux else ""), r.op, str(r.out), f"{r.params:,}",
            f"{r.macs:,}", f"{r.activations:,}")


def _total_cells(net: Network) -> tuple[str, ...]:
    return ("total", "", str(net.output), f"{net.params:,}", f"{net.macs:,}",
            f"{net.activations:,}")


def _paper_rows(net: Network, training: bool) -> list[tuple[str, ...]]:
    """Rows for documents (Markdown, LaTeX, HTML), as the notes' VGG16 memory table has them:
    the input first, and no rows for in-place layers (activations, dropout), which cost
    nothing in any column; the totals are unchanged."""
    head = ("input", "", str(net.input), "0", "0", f"{net.input.numel:,}")
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
    head = [f"{title}: input {net.input}, {net.weight_layers} weight layers"]
    out = [*head, line(rows[0]), rule, *(line(r) for r in rows[1:-1]), rule, line(rows[-1])]
    out.append(f"params {net.params:,} ({_si(net.params)}); multiply-adds {net.macs:,} "
               f"({_si(net.macs)}); activations {net.activations:,} per image "
               f"({net.activations * 4 / 2**20:.1f} MiB as float32)")
    if net.params_training != net.params:
        out.append(f"with auxiliary heads (training): params {net.params_training:,}")
    return "\n".join(out) + "\n"


def to_markdown(net: Network, training: bool = False) -> str:
    rows = _paper_rows(net, training)
    out = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * 3]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    out.append("| " + " | ".join(f"**{c}**" if c else "" for c in _total_cells(net)) + " |")
    return "\n".join(out) + "\n"


def to_latex(net: Network, training: bool = False) -> str:
    """A booktabs table of the layers."""

    def esc(s: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"),
                     ("#", r"\#"), ("×", r"$\times$")):
            s = s.replace(a, b)
        return s

    out = [r"\begin{tabular}{lllrrr}", r"\toprule",
           " & ".join(esc(c) for c in _COLUMNS) + r" \\", r"\midrule"]
    out += [" & ".join(esc(c) for c in r) + r" \\" for r in _paper_rows(net, training)]
    out += [r"\midrule", " & ".join(esc(c) for c in _total_cells(net)) + r" \\",
            r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_html(net: Network, training: bool = False) -> str:
    """An HTML table with a caption (what Jupyter shows for a Network)."""
    e = html.escape
    title = net.header.title or net.name
    cap = (f"{e(title)}: input {e(str(net.input))}, {net.weight_layers} weight layers, "
           f"{_si(net.params)} params, {_si(net.macs)} multiply-adds")

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
