"""The graph IR: a networkx DiGraph of Layer nodes, wrapped so only this module touches it.

Operand order lives in ``Layer.inputs`` (a DiGraph cannot hold ``add(x, x)``); edges serve
topology only. Names are hierarchical (``layer3.2.conv2``) and double as PyTorch
state_dict prefixes and ONNX node names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import networkx as nx

from .errors import SourceLoc
from .shape import Shape

__all__ = ["INPUT", "Attrs", "Layer", "NetGraph", "Shape"]

INPUT = "input"  # the name the builder gives the graph's input node (and `from input` reads)


class Attrs(Protocol):
    """An op's settings: an instance of its frozen ``OpDef.Attrs`` dataclass."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Layer:
    """One node: an op applied to named inputs, with its typed attrs and inferred shape.

    The network's input is a node too (op ``input``, no inputs, its shape in its attrs).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Attrs
    loc: SourceLoc | None
    out: Shape
    aux: bool = False  # belongs to an auxiliary (training-only) head


class NetGraph:
    """A typed wrapper over ``networkx.DiGraph`` with insertion (= topological) order."""

    def __init__(self) -> None:
        self.g: nx.DiGraph = nx.DiGraph()
        self.input = INPUT  # the input node (op ``input``)
        self.outputs: list[str] = []  # main output first, then auxiliary outputs

    def add(self, layer: Layer) -> None:
        """Add a node; its inputs must be nodes already (so every node has a known shape)."""
        assert layer.name not in self.g, layer.name
        assert all(i in self.g for i in layer.inputs), (layer.name, layer.inputs)
        self.g.add_node(layer.name, layer=layer)
        for src in layer.inputs:
            self.g.add_edge(src, layer.name)

    def __getitem__(self, name: str) -> Layer:
        return self.g.nodes[name]["layer"]

    def __contains__(self, name: str) -> bool:
        return name in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def layers(self) -> Iterator[Layer]:
        """All layers, inputs before their users (insertion order is topological)."""
        for n in self.g.nodes:
            yield self.g.nodes[n]["layer"]

    def consumers(self, name: str) -> list[str]:
        return list(self.g.successors(name))

    def producers(self, name: str) -> list[str]:
        return list(self[name].inputs)

    def rewire(self, old: str, new: str, users: list[str]) -> None:
        """Make ``users`` read ``new`` wherever they read ``old``."""
        for u in users:
            lay = self[u]
            ins = tuple(new if i == old else i for i in lay.inputs)
            self.g.nodes[u]["layer"] = Layer(lay.name, lay.op, ins, lay.attrs, lay.loc,
                                              lay.out, lay.aux)
            self.g.remove_edge(old, u)
            self.g.add_edge(new, u)

    def remove_passthrough(self, name: str) -> None:
        """Remove a one-input node, connecting its users (and outputs) to its input."""
        src = self[name].inputs[0]
        self.rewire(name, src, self.consumers(name))
        self.g.remove_node(name)
        self.outputs = [src if o == name else o for o in self.outputs]
