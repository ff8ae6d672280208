"""`activation relu` follows hidden weight layers only: drop the ones that feed an output.

Expansion inserts the header's activation after every weight layer that ends a chain, without
knowing which layer will be the last; the classifier's ``FC-1000`` must stay linear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import ops
from ..ir import NetGraph

if TYPE_CHECKING:
    from . import PassContext


def drop_head_activations(graph: NetGraph, ctx: PassContext) -> NetGraph:
    """Remove an inserted activation found walking back from an output through transparent
    layers (dropout, flatten, …)."""
    outputs, graph.outputs = graph.outputs, []  # rewritten once, not per removal
    moved: dict[str, str] = {}
    for o in outputs:
        n = o
        while True:
            lay = graph[n]
            if n in ctx.implicit:
                moved[n] = lay.inputs[0]
                graph.remove_passthrough(n)
                break
            if not ops.OPS[lay.op].transparent:  # the input is not: the walk stops there
                break
            n = lay.inputs[0]
    graph.outputs = [moved.get(o, o) for o in outputs]
    return graph
