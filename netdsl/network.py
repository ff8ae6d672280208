"""The public result of loading a spec: the graph plus the facts the summary reports."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import ast as A
from . import ops
from .build import MAX_INCLUDE_DEPTH, Builder, Header
from .errors import NetdslError, NetdslWarning
from .ir import INPUT, Layer, NetGraph, Shape
from .parser import MAX_SPEC_CHARS, parse_text

MAX_SPEC_BYTES = MAX_SPEC_CHARS  # a spec is text a person wrote or a search loop generated


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One row of the summary."""

    name: str
    op: str  # the papers' notation: conv3-64, maxpool, FC-4096
    shape: Shape
    params: int
    macs: int
    activations: int  # output elements per image (0 for in-place ops)
    aux: bool
    line: int | None


class Network:
    """A checked network: its graph IR, header facts and per-layer costs."""

    def __init__(self, graph: NetGraph, header: Header, warnings: list[NetdslWarning],
                 source: str, path: str) -> None:
        self.graph = graph
        self.header = header
        self.warnings = warnings
        self.source = source
        self.path = path

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def input_shape(self) -> Shape:
        return self.graph[INPUT].out

    @property
    def output_shape(self) -> Shape:
        return self.graph[self.graph.outputs[0]].out

    def in_shapes(self, layer: Layer) -> tuple[Shape, ...]:
        return tuple(self.graph[i].out for i in layer.inputs)

    @cached_property
    def rows(self) -> list[LayerInfo]:
        """Every layer, auxiliary heads included (flagged), in topological order."""
        rows = []
        for lay in self.graph.layers():
            if lay.op == "input":
                continue
            op = ops.OPS[lay.op]
            ins = self.in_shapes(lay)
            acts = 0 if op.inplace else math.prod(int(d) for d in lay.out[1:])
            rows.append(LayerInfo(lay.name, op.notation(lay.attrs, ins), lay.out,
                                  op.params(lay.attrs, ins), op.macs(lay.attrs, ins, lay.out),
                                  acts, lay.aux, lay.loc.line if lay.loc else None))
        return rows

    def layers(self, training: bool = False) -> list[LayerInfo]:
        """Summary rows: the inference network, or with auxiliary heads when ``training``."""
        return [r for r in self.rows if training or not r.aux]

    @property
    def params(self) -> int:
        """Parameters of the inference network (auxiliary heads excluded)."""
        return sum(r.params for r in self.layers())

    @property
    def params_training(self) -> int:
        """Parameters including auxiliary heads."""
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers())

    @property
    def activations(self) -> int:
        """Activation elements per image: the input plus every materialized layer output."""
        return math.prod(int(d) for d in self.input_shape[1:]) + \
            sum(r.activations for r in self.layers())

    @property
    def weight_layers(self) -> int:
        return sum(1 for r in self.layers() if ops.OPS[self.graph[r.name].op].weight_layer)

    def _repr_svg_(self) -> str | None:
        """Jupyter: the drawing, blocks collapsed two scopes deep; None without Graphviz."""
        from .draw import render

        try:
            return render(self, "svg", depth=2).decode("utf-8")
        except NetdslError:
            return None

    def _repr_html_(self) -> str:
        """Jupyter: the drawing (when Graphviz is installed) above the per-layer summary."""
        from .summary import to_html

        svg = self._repr_svg_()
        if svg:  # inline: drop the XML prolog and DOCTYPE before <svg
            svg = svg[svg.find("<svg"):]
        figure = f'<div style="max-height:40em;overflow:auto">{svg}</div>' if svg else ""
        return figure + to_html(self)

    def __repr__(self) -> str:
        return (f"<Network {self.name}: {len(self.layers())} layers, {self.params:,} params, "
                f"{self.macs / 1e9:.2f} GMACs>")


def read_spec(path: str | Path) -> str:
    """A spec file's text; unreadable, binary or huge files become NetdslError."""
    p = Path(path)
    name = str(path)
    try:
        if not p.exists():
            raise NetdslError("no such file", path=name, hint="check the path")
        if p.is_dir():
            raise NetdslError("is a directory, not a spec file", path=name,
                              hint=f"to check every spec in it: netdsl check {name}/*.net")
        if not p.is_file():  # a FIFO or a device would block or never end
            raise NetdslError("is not a regular file", path=name, hint="give a .net spec file")
        with open(p, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise NetdslError(f"cannot read: {e.strerror}", path=name) from None
    if len(data) > MAX_SPEC_BYTES:
        raise NetdslError(f"file is larger than {MAX_SPEC_BYTES >> 10} KiB", path=name,
                          hint="is this really a spec?")
    if b"\0" in data:
        raise NetdslError("is a binary file, not a spec", path=name,
                          hint="specs are UTF-8 text files")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise NetdslError(f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}, "
                          f"line {line})", path=name,
                          hint="save the spec as UTF-8") from None


def _load_files(root: A.SpecFile) -> list[A.SpecFile]:
    """The root and every file it includes (transitively), includes first."""
    order: list[A.SpecFile] = []
    seen: dict[Path, A.SpecFile] = {}

    def visit(spec: A.SpecFile, stack: list[Path]) -> None:
        for inc in spec.includes:
            base = Path(spec.src.path).parent
            target = (base / inc.path).resolve()
            if target in stack:
                cycle = " -> ".join(p.name for p in [*stack[stack.index(target):], target])
                raise NetdslError(f"include cycle: {cycle}", inc.loc,
                                  hint="a block library cannot include the file using it")
            if len(stack) >= MAX_INCLUDE_DEPTH:
                raise NetdslError("includes are nested too deeply", inc.loc)
            if target in seen:
                continue
            try:
                text = read_spec(target)
            except NetdslError as e:
                raise NetdslError(f"cannot include \"{inc.path}\": {e.message}", inc.loc,
                                  hint=e.hint or f"paths are relative to {base or '.'}") from None
            try:
                lib = parse_text(text, str(Path(spec.src.path).parent / inc.path))
                if lib.body or lib.settings:
                    what = lib.body[0].loc if lib.body else lib.settings[0].loc
                    raise NetdslError("an included file may only define blocks, defaults and "
                                      "includes", what)
                seen[target] = lib
                visit(lib, [*stack, target])
            except NetdslError as e:
                e.notes.append(f"included from {inc.loc}")
                raise
            order.append(lib)

    visit(root, [Path(root.src.path).resolve()])
    return [*order, root]


def loads(text: str, path: str = "<string>", params: dict[str, Any] | None = None,
          line_offset: int = 0) -> Network:
    """Parse, expand and shape-check spec text. Raises NetdslError."""
    root = parse_text(text, path, line_offset)
    files = _load_files(root)
    builder = Builder(root, files, params or {})
    graph = builder.run()
    warnings = [w for f in files for w in f.warnings] + builder.warnings
    return Network(graph, builder.header, warnings, text, path)


def load(path: str | Path, params: dict[str, Any] | None = None) -> Network:
    """Load and check a ``.net`` spec file. Raises NetdslError (located where possible).

    Args:
        path: the spec file, or a spec embedded in a Markdown/LaTeX document: ``paper.md#2``
            (the second; ``paper.md`` alone when it holds one).
        params: overrides for the spec's ``param`` values, e.g. ``{"classes": 10}``.
    """
    from . import embedded  # small; imported here because it imports this module

    if embedded.is_document_ref(str(path)):
        return embedded.load_embedded(str(path), params)
    return loads(read_spec(path), str(path), params)


