"""Graph -> graph passes, run in order by one driver after expansion.

A pass is a function ``(graph, context) -> graph``: it may rewrite the graph (it owns it) and
report warnings through the context. Expansion builds what the spec says; a rule about the
finished graph (which layers feed an output, which are never read) is a pass here, one per
module, listed in ``PIPELINE``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import NetdslWarning
from ..ir import NetGraph
from .head_activation import drop_head_activations
from .unused import warn_unused_outputs


@dataclass
class PassContext:
    """What passes read besides the graph, and where they report."""

    implicit: frozenset[str] = frozenset()  # layers the header's `activation` inserted
    warnings: list[NetdslWarning] = field(default_factory=list)


Pass = Callable[[NetGraph, PassContext], NetGraph]

PIPELINE: tuple[Pass, ...] = (
    drop_head_activations,  # before the warnings: a dropped layer is not "unused"
    warn_unused_outputs,
)


def run_passes(graph: NetGraph, ctx: PassContext, pipeline: tuple[Pass, ...] = PIPELINE
               ) -> NetGraph:
    """Run every pass of ``pipeline`` in order."""
    for p in pipeline:
        graph = p(graph, ctx)
    return graph
