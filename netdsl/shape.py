"""Tensor shapes: a layout and the sizes of one example (the batch axis is implicit).

Every value in a network has one of six layouts. Ops declare the layouts they accept
(``OpDef.accepts``) and build the shape they produce with the constructors below::

    vector  D          FC outputs, logits             Shape.vector(4096)
    tokens  L×D        a transformer's sequence       Shape.tokens(197, 768)
    grid    H×W×D      tokens on a 2-D grid (Swin)    Shape.grid(56, 56, 96)
    map1    C×L        audio, 1-D signals             Shape.map(1, 16000)
    map2    C×H×W      images                         Shape.map(3, 224, 224)
    map3    C×D×H×W    video clips, volumes           Shape.map(3, 16, 112, 112)

``str(shape)`` is the one rendering of a shape in messages and tables ("3×224×224",
"197×768 tokens"); ``describe`` adds the article and kind for errors ("a 197×768 token
sequence").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Layout(Enum):
    """What the axes of a tensor mean. The value is (kind for messages, axes, rank)."""

    VECTOR = ("vector", "D", 1)
    TOKENS = ("token sequence", "L×D", 2)
    # Swin's channels-last maps: one D-feature token per position, (N, H, W, D) in the backends
    GRID = ("token grid", "H×W×D", 3)
    MAP1 = ("1-D map", "C×L", 2)
    MAP2 = ("2-D map", "C×H×W", 3)
    MAP3 = ("3-D map", "C×D×H×W", 4)

    @property
    def kind(self) -> str:
        return self.value[0]

    @property
    def axes(self) -> str:
        return self.value[1]

    @property
    def rank(self) -> int:
        """Number of sizes per example (the batch axis not counted)."""
        return self.value[2]

    @property
    def is_map(self) -> bool:
        return self in MAPS

    @property
    def is_tokens(self) -> bool:
        """Tokens of D features on the last axis (a sequence or a grid): per-token ops (FC,
        LayerNorm) apply to that axis."""
        return self in (Layout.TOKENS, Layout.GRID)


MAPS = frozenset({Layout.MAP1, Layout.MAP2, Layout.MAP3})
ANY = frozenset(Layout)
_MAP_OF_RANK = {1: Layout.MAP1, 2: Layout.MAP2, 3: Layout.MAP3}
# the spatial axes' names, as the size rule's messages say them
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


@dataclass(frozen=True, slots=True)
class Shape:
    """The layout and sizes of one example; ``dims`` follow ``layout.axes``."""

    layout: Layout
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        assert len(self.dims) == self.layout.rank, (self.layout, self.dims)

    # ---- constructors ----------------------------------------------------------------------
    @staticmethod
    def vector(features: int) -> Shape:
        return Shape(Layout.VECTOR, (features,))

    @staticmethod
    def tokens(length: int, features: int) -> Shape:
        return Shape(Layout.TOKENS, (length, features))

    @staticmethod
    def grid(height: int, width: int, features: int) -> Shape:
        """An H×W grid of D-feature tokens (channels last, as Swin's maps)."""
        return Shape(Layout.GRID, (height, width, features))

    @staticmethod
    def map(channels: int, *spatial: int) -> Shape:
        """A map with 1, 2 or 3 spatial axes: ``Shape.map(3, 224, 224)``."""
        return Shape(_MAP_OF_RANK[len(spatial)], (channels, *spatial))

    # ---- reading ---------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """C of a map, D of a vector: the axis after the batch (axis 1 in PyTorch and ONNX)."""
        assert not self.layout.is_tokens, "tokens have features, not channels"
        return self.dims[0]

    @property
    def features(self) -> int:
        """D of a vector or of each token."""
        assert self.layout is Layout.VECTOR or self.layout.is_tokens, self.layout
        return self.dims[-1]

    @property
    def spatial(self) -> tuple[int, ...]:
        """The spatial sizes of a map (L; H, W; or D, H, W); () for vectors and tokens."""
        return self.dims[1:] if self.layout.is_map else ()

    @property
    def positions(self) -> tuple[int, ...]:
        """The (H, W) of a token grid; () otherwise."""
        return self.dims[:-1] if self.layout is Layout.GRID else ()

    @property
    def numel(self) -> int:
        """Elements per example."""
        return math.prod(self.dims)

    def with_channels(self, c: int) -> Shape:
        return Shape(self.layout, (c, *self.dims[1:]))

    def with_spatial(self, spatial: tuple[int, ...]) -> Shape:
        assert len(spatial) == len(self.spatial), (self, spatial)
        return Shape(self.layout, (self.dims[0], *spatial))

    def batched(self, batch: int | str = "N") -> tuple[int | str, ...]:
        """The full tensor shape with its batch axis first: ``("N", 3, 224, 224)``."""
        return (batch, *self.dims)

    # ---- text ------------------------------------------------------------------------------
    def __str__(self) -> str:
        text = "×".join(map(str, self.dims))
        return f"{text} tokens" if self.layout is Layout.TOKENS else \
            f"{text} grid" if self.layout is Layout.GRID else text

    def describe(self) -> str:
        """The shape with its kind, for messages: "a 197×768 token sequence"."""
        if self.layout is Layout.VECTOR:
            return f"a vector of {self.dims[0]} features"
        dims = "×".join(map(str, self.dims))
        kind = "map" if self.layout.is_map else self.layout.kind
        return f"a {dims} {kind}"


def describe_layouts(layouts: frozenset[Layout]) -> str:
    """What a set of layouts accepts, for messages: "a map or a vector", "a 2-D map (C×H×W)"."""
    words = ["a map"] if MAPS <= layouts else [
        f"a {lay.kind} ({lay.axes})" for lay in (Layout.MAP1, Layout.MAP2, Layout.MAP3)
        if lay in layouts]
    words += [f"a {lay.kind}" for lay in (Layout.VECTOR, Layout.TOKENS) if lay in layouts]
    words += [f"a {Layout.GRID.kind} ({Layout.GRID.axes})"] if Layout.GRID in layouts else []
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def input_shape(dims: tuple[int, ...], tokens: bool = False, grid: bool = False
                ) -> Shape | None:
    """The shape an ``input`` line declares, or None when the sizes fit no layout.

    ``input 4096`` is a vector, ``input 197x768 tokens`` a token sequence, ``input 56x56x96
    grid`` a token grid; otherwise the first
    size is the channels and the rest the spatial sizes: ``1x16000`` (C×L), ``3x224x224``
    (C×H×W), ``3x16x112x112`` (C×D×H×W).
    """
    if tokens:
        return Shape.tokens(*dims) if len(dims) == 2 else None
    if grid:
        return Shape.grid(*dims) if len(dims) == 3 else None
    if len(dims) == 1:
        return Shape.vector(dims[0])
    if 2 <= len(dims) <= 4:
        return Shape.map(*dims)
    return None
