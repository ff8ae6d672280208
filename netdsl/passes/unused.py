"""Find layers whose outputs reach no network output: an unused layer or a dead DAG branch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NetdslWarning
from ..ir import NetGraph

if TYPE_CHECKING:
    from . import PassContext


def warn_unused_outputs(graph: NetGraph, ctx: PassContext) -> NetGraph:
    ctx.warnings.extend(unused_outputs(graph))
    return graph


def unused_outputs(graph: NetGraph) -> list[NetdslWarning]:
    """One warning per dead end: a layer that nothing reads and that is not an output.

    A dead end with dead producers (``b = conv3-32 from input; relu`` never used again) is one
    dead branch, reported once at its last layer with the number of layers it holds.
    """
    live: set[str] = set()
    todo = list(graph.outputs)
    while todo:
        n = todo.pop()
        if n not in live:
            live.add(n)
            todo.extend(graph.producers(n))
    out = []
    for lay in graph.layers():
        if lay.name in live or lay.name == graph.input or graph.consumers(lay.name):
            continue
        region, todo = set(), [lay.name]
        while todo:
            n = todo.pop()
            if n not in region and n not in live and n != graph.input:
                region.add(n)
                todo.extend(graph.producers(n))
        if len(region) == 1:
            msg = f"the output of '{lay.name}' is never used"
        else:
            msg = f"dead branch: {len(region)} layers ending at '{lay.name}' are never used"
        out.append(NetdslWarning(msg, lay.loc, hint="feed it on (name it, then 'from NAME') "
                                 "or delete it"))
    return out
