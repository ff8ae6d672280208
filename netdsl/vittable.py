"""Transformers in the ViT paper's Table 1 layout: Model | Layers | Hidden size D | MLP size |
Heads | Params, one row per network.

Everything is read from the graph, not from names: the encoder blocks are the attention layers
(layers whose attributes carry ``heads``), D is the width of their token sequences, and the MLP
size is the widest fully connected layer inside a block (the scope where the attention layers'
names differ: ``encoder.layers.encoder_layer_3``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import escape, ops
from .ir import Layer
from .network import Network
from .shape import Shape

COLUMNS = ("Model", "Layers", "Hidden size D", "MLP size", "Heads", "Params")
# Params: without the classifier head, as the paper counts them (see head_params).


@dataclass(frozen=True, slots=True)
class VitRow:
    model: str
    layers: int
    hidden: str
    mlp: str
    heads: str
    params: int

    def cells(self) -> tuple[str, ...]:
        return (self.model, str(self.layers), self.hidden, self.mlp, self.heads,
                f"{self.params / 1e6:.0f}M")


def _width(shape: Shape) -> int:
    """The last axis: a token's (or a vector's) features."""
    return shape.dims[-1]


def head_params(net: Network, att: list[Layer]) -> int:
    """Parameters after the encoder: from the first layer past the last attention layer whose
    output is no longer a token sequence (the class token taken, the classifier). The paper's
    Table 1 counts models without their head (ViT-Base: 86M)."""
    layers = [x for x in net.graph.layers() if not x.aux]
    start = layers.index(att[-1])
    past = next((i for i in range(start, len(layers))
                 if not layers[i].out.layout.is_tokens), len(layers))
    return sum(ops.OPS[x.op].params(x.attrs, net.in_shapes(x)) for x in layers[past:])


def attention_layers(net: Network) -> list[Layer]:
    return [x for x in net.graph.layers()
            if not x.aux and isinstance(getattr(x.attrs, "heads", None), int)]


def is_transformer(net: Network) -> bool:
    return bool(attention_layers(net))


def _block_scope(names: list[str]) -> int:
    """How many name parts make an encoder block's scope: up to the first part where the
    attention layers' names differ (all of the scope when there is one block)."""
    parts = [n.split(".") for n in names]
    for i, first in enumerate(parts[0][:-1]):
        if any(len(p) <= i or p[i] != first for p in parts[1:]):
            return i + 1
    return len(parts[0]) - 1


def vit_row(net: Network, label: str | None = None) -> VitRow:
    """One row; where stages differ (Swin's), D, MLP size and heads list each stage's value."""
    att = attention_layers(net)
    k = _block_scope([a.name for a in att])
    hidden, mlp, heads = [], [], []
    for a in att:
        prefix = ".".join(a.name.split(".")[:k]) + "."
        d = _width(a.out)
        widths = [_width(x.out) for x in net.graph.layers() if x.name.startswith(prefix)
                  and ops.OPS[x.op].counts_in_depth and ops.OPS[x.op].kernel_field is None
                  and not isinstance(getattr(x.attrs, "heads", None), int)]
        hidden.append(d)
        mlp.append(max(widths, default=d))
        heads.append(a.attrs.heads)
    # a stage: a run of blocks alike in D, MLP size and heads (Swin-T's 2, 2, 6, 2 blocks)
    stages = [t for i, t in enumerate(zip(hidden, mlp, heads, strict=True))
              if i == 0 or t != (hidden[i - 1], mlp[i - 1], heads[i - 1])]
    return VitRow(label or net.header.title or net.name, len(att),
                  *(_per_stage([s[c] for s in stages]) for c in range(3)),
                  net.params - head_params(net, att))


def _per_stage(values: list[int]) -> str:
    """``768`` when every stage agrees, else each stage's value in order (``96, 192, 384,
    768``; heads ``3, 6, 3`` keep the stage that returns to 3)."""
    return str(values[0]) if len(set(values)) == 1 else ", ".join(map(str, values))


def build_vit_table(nets: Sequence[Network], labels: Sequence[str] | None = None
                    ) -> list[VitRow]:
    labels = list(labels) if labels else [None] * len(nets)
    return [vit_row(n, lab) for n, lab in zip(nets, labels, strict=True)]


def to_markdown(rows: list[VitRow]) -> str:
    e = escape.markdown
    out = ["| " + " | ".join(COLUMNS) + " |", "|:---|" + "---:|" * (len(COLUMNS) - 1)]
    out += ["| " + " | ".join(e(c) for c in r.cells()) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_latex(rows: list[VitRow]) -> str:
    """A booktabs tabular (``\\usepackage{booktabs}``)."""
    out = [r"\begin{tabular}{l" + "r" * (len(COLUMNS) - 1) + "}", r"\toprule",
           " & ".join(COLUMNS) + r" \\", r"\midrule"]
    out += [" & ".join(escape.latex(c) for c in r.cells()) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_html(rows: list[VitRow]) -> str:
    e = escape.html
    out = ['<table class="netdsl-vit">',
           "<tr>" + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r.cells()) + "</tr>" for r in rows]
    out.append("</table>")
    return "\n".join(out) + "\n"


FORMATS: dict[str, Callable[[list[VitRow]], str]] = {
    "markdown": to_markdown, "latex": to_latex, "html": to_html}
