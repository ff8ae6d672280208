"""Assemble the spec: header, block definitions, body; or the flat DAG escape."""

from __future__ import annotations

import re
from pathlib import Path

from .blocks import Blocks, Writer, fold_runs
from .fold import Renderer
from .read import Graph
from .recognize import Lyr, Net
from .structure import Item, layers_of


def network_name(path: str) -> str:
    stem = Path(path).name if "/" in path or path.endswith(".onnx") else path
    stem = stem[:-5] if stem.endswith(".onnx") else stem
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "imported"
    return name if re.match(r"[A-Za-z_]", name) else "net_" + name


def header(g: Graph, net: Net, defaults: list[str]) -> list[str]:
    shape = "x".join(str(d) for d in g.input_shape)
    src = Path(g.path).name
    by = f", exported by {g.producer}" if g.producer else ""
    lines = [f"# Imported by netdsl import from {src}{by}: {len(g.nodes)} ONNX nodes, "
             f"{len(net.layers) - 1} layers.",
             f"network {network_name(g.name or g.path)}" +
             (f' "{g.title}"' if g.title and g.title != g.name and '"' not in g.title
              and "\n" not in g.title else ""),
             f"input {shape}"]
    return lines + [f"default {d}" for d in defaults]


def defaults(lays: list[Lyr]) -> tuple[list[str], set[str]]:
    """`default` lines and the option words they make implicit: the convolutions' usual bias
    (``bias on`` is netdsl's own default) and the batch norms' common eps."""
    convs = [lay for lay in lays if lay.kind == "conv"]
    with_bias = sum(1 for lay in convs if " bias on" in lay.parts)
    lines, implicit = [], {" bias on"}
    if with_bias * 2 < len(convs):
        lines, implicit = ["conv bias=off"], {" bias off"}
    eps = {lay.parts[1] if len(lay.parts) > 1 else "" for lay in lays if lay.kind == "bn"}
    if len(eps) == 1 and "" not in eps:
        word = eps.pop()
        lines.append("bn" + word.replace(" ", " ", 1))
        implicit.add(word)
    return lines, implicit


def residual_default(items: list[Item]) -> bool:
    """Whether every shortcut netdsl makes itself is option A (zero-padding): say it once."""
    from .structure import Residual, walk

    autos = {it.auto for it in walk(items) if isinstance(it, Residual) and it.auto}
    return autos == {"A"}


def write_structured(g: Graph, net: Net, items: list[Item]) -> tuple[str, list[Lyr]]:
    """The spec text and its layers in netdsl's build order (the weights' order)."""
    order = layers_of(items)
    lines, implicit = defaults(order)
    shortcut_a = residual_default(items)
    if shortcut_a:
        lines.append("residual shortcut=A")
    r = Renderer(shortcut_a)
    stmts = r.seq(items, 0, top=True)
    blocks = Blocks(r.instances)
    w = Writer(implicit)
    lines = header(g, net, lines) + [""]
    for blk in blocks.blocks:
        lines += w.block_def(blk) + [""]
    lines += fold_runs([w.text(s) for s in stmts])
    return "\n".join(lines) + "\n", order


def write_flat(g: Graph, net: Net) -> tuple[str, list[Lyr]]:
    """Every layer its own statement, wired with ``from``: the DAG escape."""
    live = _live(net)
    order = [net.layers[k] for k in sorted(live) if k]
    lines, implicit = defaults(order)
    w = Writer(implicit)
    lines = header(g, net, lines) + [""]
    for lay in order:
        refs = ", ".join("input" if i == 0 else f"n{i}" for i in lay.inputs)
        lines.append(f"n{lay.id} = {w.text(list(lay.parts))} from {refs}")
    return "\n".join(lines) + "\n", order


def _live(net: Net) -> set[int]:
    seen, todo = set(), [net.output]
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        todo += net.layers[k].inputs
    return seen
