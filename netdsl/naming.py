"""Layer and scope names: ``layer3.2.conv2``, unique in the graph and stable across edits.

Names double as PyTorch state_dict keys and ONNX node names, so they follow nn.Module's
conventions: a named statement or group opens a scope (``stem.``), an unnamed block call gets
one after the block (``bottleneck1.``, or ``0.``, ``1.`` inside a named group, like
nn.Sequential), and unnamed layers are numbered per type in their scope (``conv1``, ``conv2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Scope:
    """A naming scope (``layer3.2.``) with its auto-name counters and bound names."""

    prefix: str
    counters: dict[str, int] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)  # `name = …` -> output node
    # A named group numbers its unnamed block calls 0, 1, … like nn.Sequential, so that
    # `layer2 = (bottleneck(128, 2); bottleneck(128) ×3)` names layer2.0 … layer2.3.
    sequential: bool = False
    # A sequence `[ … ]` numbers every layer, block call and construct 0, 1, … (nn.Sequential's
    # modules, activations and pools included): `classifier = [dropout 0.2; FC-1000]` holds
    # classifier.1.weight.
    numbered: bool = False

    def child(self, name: str) -> Scope:
        return Scope(f"{self.prefix}{name}.")


class Names:
    """Hands out every layer name of one expansion (graph nodes and the layers of statements
    that failed alike); names are never freed.

    Each kind remembers the last number it gave per prefix, so a name repeated thousands of
    times (``relu ×1000`` in a loop of blocks) resumes there instead of rescanning from 1.
    """

    def __init__(self) -> None:
        self.taken: set[str] = set()  # every layer name handed out
        # every scope that holds a layer ("layer1.", "layer1.0."): a layer cannot be one too,
        # its name is a PyTorch submodule that cannot hold others
        self.holders: set[str] = set()
        self.scopes: set[str] = set()  # scope prefixes handed out by `child`
        self._layer: dict[str, int] = {}  # prefix+base -> last number given by `layer`
        self._given: dict[str, int] = {}  # prefix+name -> last suffix given by `given`
        self._child: dict[str, int] = {}  # prefix+base -> last number given by `child`

    def layer(self, scope: Scope, base: str) -> str:
        """An unnamed layer: ``base`` numbered on in its scope (``conv1``, ``conv2``, …), or
        the next position in a sequence."""
        if scope.numbered:
            full = f"{scope.prefix}{self.index(scope)}"
            self.take(full)
            return full
        key = f"{scope.prefix}{base}"  # another Scope with this prefix may have numbered it on
        while True:
            k = scope.counters.get(base, 0) + 1
            if f"{scope.prefix}{base}{k}" in self.taken and k <= self._layer.get(key, 0):
                k = self._layer[key] + 1
            scope.counters[base] = k
            full = f"{scope.prefix}{base}{k}"
            if not self.used(full):
                self._layer[key] = max(k, self._layer.get(key, 0))
                self.take(full)
                return full

    def given(self, scope: Scope, name: str) -> str:
        """A layer the spec names: ``name``, or ``name2``, … when that is taken."""
        key = full = f"{scope.prefix}{name}"
        k = self._given.get(key, 1) if self.used(full) else 1
        while self.used(full):
            k += 1
            full = f"{scope.prefix}{name}{k}"
        self._given[key] = k
        self.take(full)
        return full

    def used(self, full: str) -> bool:
        """Whether ``full`` names a layer or a scope already."""
        return full in self.taken or f"{full}." in self.holders or f"{full}." in self.scopes

    def take(self, full: str) -> None:
        self.taken.add(full)
        parts = full.split(".")
        self.holders.update(".".join(parts[:i]) + "." for i in range(1, len(parts)))

    def clash(self, full: str) -> str | None:
        """A layer named ``full`` would hold layers, or sit inside one: the name in both
        roles (a layer cannot be a scope of layers; the spec named a layer like a scope)."""
        if f"{full}." in self.holders:
            return full
        parts = full.split(".")
        return next((p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
                     if p in self.taken), None)

    def child(self, scope: Scope, base: str, numbered: bool = False) -> Scope:
        """A child scope named ``base`` (``base2``, … when taken; ``base1``, … if numbered)."""
        k = 1
        name = f"{base}1" if numbered else base
        key = f"{scope.prefix}{base}"
        if self.used(f"{scope.prefix}{name}"):  # resume after the last one handed out
            k = self._child.get(key, 1)
        while self.used(f"{scope.prefix}{name}"):
            k += 1
            name = f"{base}{k}"
        self._child[key] = k
        self.scopes.add(f"{scope.prefix}{name}.")
        return scope.child(name)

    def index(self, scope: Scope) -> str:
        """The next position of a sequence (or of the block calls of a named group) that no
        layer or scope has taken (`0 = …` names one itself)."""
        k = scope.counters.get("", 0)  # "": the sequential index
        while self.used(f"{scope.prefix}{k}"):
            k += 1
        scope.counters[""] = k + 1
        return str(k)

    def call(self, scope: Scope, block: str) -> str:
        """The scope of an unnamed call: ``block1``, ``block2``, … (``0``, ``1``, … in order)."""
        if scope.sequential or scope.numbered:
            name = self.index(scope)
            self.scopes.add(f"{scope.prefix}{name}.")
            return name
        k = scope.counters.get(block, 0) + 1
        while self.used(f"{scope.prefix}{block}{k}"):  # `b1 = conv3-8` named a layer b1
            k += 1
        scope.counters[block] = k
        return f"{block}{k}"
