"""The public result of loading a spec: the graph plus the facts the summary reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import ast as A
from . import ops
from .errors import NetdslError, NetdslWarning
from .expand import Expander
from .fsutil import open_regular
from .header import Header
from .ir import Layer, NetGraph
from .limits import MAX_INCLUDE_DEPTH, MAX_SPEC_CHARS
from .parser import parse_text
from .passes import PassContext, run_passes
from .shape import Shape
from .shipped import find_include, find_spec, library_names, names, specs_dir

MAX_SPEC_BYTES = 4 * MAX_SPEC_CHARS  # a file: a spec, or a paper (LaTeX, Markdown) around specs


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One row of the summary."""

    name: str
    op: str  # the papers' notation: conv3-64, maxpool, FC-4096
    shape: tuple[int | str, ...]  # the output with its batch axis: ("N", 64, 112, 112)
    params: int
    macs: int
    activations: int  # output elements per image (0 for in-place ops)
    aux: bool
    line: int | None
    out: Shape  # the output's layout and sizes


class Network:
    """A checked network: its graph IR, header facts and per-layer costs."""

    def __init__(self, graph: NetGraph, header: Header, warnings: list[NetdslWarning],
                 source: str, path: str, files: tuple[str, ...] = ()) -> None:
        self.graph = graph
        self.header = header
        self.warnings = warnings
        self.source = source
        self.path = path
        self.files = files  # the spec and every file it includes: what an output may not be

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def input(self) -> Shape:
        return self.graph[self.graph.input].out

    @property
    def output(self) -> Shape:
        """The main output's shape."""
        return self.graph[self.graph.outputs[0]].out

    @property
    def input_shape(self) -> tuple[int | str, ...]:
        """The input with its batch axis, as ONNX declares it: ``("N", 3, 224, 224)``."""
        return self.input.batched()

    @property
    def output_shape(self) -> tuple[int | str, ...]:
        return self.output.batched()

    def in_shapes(self, layer: Layer) -> tuple[Shape, ...]:
        return tuple(self.graph[i].out for i in layer.inputs)

    @cached_property
    def rows(self) -> list[LayerInfo]:
        """Every layer but the input, auxiliary heads included (flagged), in topological order."""
        rows = []
        for lay in self.graph.layers():
            op = ops.OPS[lay.op]
            if op.arity == 0:
                continue
            ins = self.in_shapes(lay)
            acts = 0 if op.inplace else lay.out.numel
            rows.append(LayerInfo(lay.name, op.notation(lay.attrs, ins), lay.out.batched(),
                                  op.params(lay.attrs, ins), op.macs(lay.attrs, ins, lay.out),
                                  acts, lay.aux, lay.loc.line if lay.loc else None, lay.out))
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
        return self.input.numel + sum(r.activations for r in self.layers())

    @property
    def weight_layers(self) -> int:
        """The depth papers name networks by (VGG-16, ResNet-50, GoogLeNet's 22): see ``depth``."""
        return depth(self.graph, self.graph.outputs[0])

    def depth_of(self, names: Iterable[str]) -> int:
        """The depth of a part of the network (a block): its longest path, as ``depth``."""
        return depth(self.graph, members=set(names))

    def summary(self, format: str = "table", training: bool = False) -> str:
        """The per-layer table ``netdsl summary`` prints.

        Args:
            format: ``table`` (fixed-width text), ``json``, ``markdown``, ``latex`` or ``html``.
            training: include the auxiliary heads.

        >>> rows = loads("input 1x28x28\\nFC-10").summary().splitlines()
        >>> rows[4].split()
        ['fc1', 'FC-10', '10', '7,850', '7,840', '10']
        """
        from .summary import FORMATS

        if format not in FORMATS:
            raise NetdslError(f"unknown summary format '{format}'",
                              hint=f"use one of: {', '.join(FORMATS)}")
        text = FORMATS[format](self, training)
        return text + "\n" if format == "json" else text

    def draw(self, path: str | Path, depth: int | None = None, rankdir: str = "TB") -> None:
        """Write the drawing ``netdsl draw`` makes; the format is the suffix: ``.svg``,
        ``.png``, ``.pdf`` (need Graphviz's ``dot``) or ``.dot``.

        Args:
            path: the output file, written atomically.
            depth: scopes this deep become single nodes (None: every layer).
            rankdir: ``TB`` (top to bottom) or ``LR``.
        """
        from .draw import draw

        draw(self, path, depth, rankdir)

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
        from .units import macs, plural

        return (f"<Network {self.name}: {plural(len(self.layers()), 'layer')}, "
                f"{self.params:,} params, {macs(self.macs)}>")


def depth(graph: NetGraph, end: str | None = None, members: set[str] | None = None) -> int:
    """The papers' depth: the most weight layers on one path the signal takes to ``end``.

    A weight layer is an op that ``counts_in_depth`` (conv, FC). The rule is the one ResNet,
    VGG, GoogLeNet, DenseNet and SENet name their networks by: count along the longest path
    from the input, so parallel branches count once (an inception module is 2 deep, a
    projection shortcut beside a residual body adds nothing) and a gate that only scales the
    signal (``mul``'s second input, SENet's excitation FCs) is not on any path. Auxiliary heads
    are not on a path to the main output. With ``members``, the longest path inside that part.
    """
    longest: dict[str, int] = {}
    for lay in graph.layers():
        if (members is not None and lay.name not in members) or (members is None and lay.aux):
            continue
        op = ops.OPS[lay.op]
        signal = (i for k, i in enumerate(lay.inputs) if k not in op.gates)
        longest[lay.name] = int(op.counts_in_depth) + max(
            (longest.get(i, 0) for i in signal), default=0)
    if end is not None:
        return longest[end]
    return max(longest.values(), default=0)


def read_spec(path: str | Path) -> str:
    """A spec file's text; unreadable, binary or huge files become NetdslError."""
    p = Path(path)
    name = str(path)
    try:
        if not name:
            raise NetdslError("empty file name", path="''", hint="give a .net spec file")
        if not p.exists():
            raise NetdslError("no such file", path=name, hint="check the path")
        if p.is_dir():
            raise NetdslError("is a directory, not a spec file", path=name,
                              hint=f"to check every spec in it: netdsl check {name}/*.net")
        if not p.is_file():  # a FIFO or a device would block or never end
            raise NetdslError("is not a regular file", path=name, hint="give a .net spec file")
        with open_regular(p) as f:  # checked again on the descriptor: nothing can block
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise NetdslError(f"cannot read: {e.strerror or e}", path=name) from None
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


SPEC_SUFFIX = ".net"


def library_dirs() -> list[Path]:
    """The block libraries and reference specs netdsl ships: an include may always read these."""
    return [d for d in (specs_dir() / "lib", specs_dir()) if d.is_dir()]


class IncludePolicy:
    """Where ``include`` may read: the root spec's directory tree, netdsl's block libraries
    and the directories the user names (``--include-path``). Nothing else is opened, so a spec
    from elsewhere cannot make netdsl read (and echo in errors) ``/etc/passwd``."""

    def __init__(self, root: A.SpecFile, include_path: Sequence[str | Path] = ()) -> None:
        self.extra = [Path(d) for d in include_path]
        self.roots = [_real(Path(root.src.path).parent, None),
                      *(_real(d, None) for d in [*library_dirs(), *self.extra])]

    def resolve(self, inc: A.Include, base: Path) -> Path:
        """The real path of an include, or a NetdslError that does not read the file."""
        try:  # a local file first, then the shipped libraries (``include "resnet"``)
            target = find_include(base, inc.path)
        except (OSError, RuntimeError, ValueError):
            target = _real(base / inc.path, inc)  # raises the located error
        if not any(target.is_relative_to(r) for r in self.roots):
            raise NetdslError(f'cannot include "{inc.path}": it is outside the spec\'s '
                              "directory and netdsl's block libraries", inc.loc,
                              hint="copy the library next to the spec, or allow its directory "
                                   "with --include-path DIR")
        if target.suffix != SPEC_SUFFIX:
            raise NetdslError(f'cannot include "{inc.path}": only {SPEC_SUFFIX} block libraries '
                              "can be included", inc.loc, hint="include a .net file")
        return target


def _real(p: Path, inc: A.Include | None) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a NUL in the name
        why = "a symlink loop" if isinstance(e, RuntimeError) else str(e)
        if inc is None:
            raise NetdslError(f"cannot resolve {p}: {why}") from None
        raise NetdslError(f'cannot include "{inc.path}": {why}', inc.loc) from None


def _load_files(root: A.SpecFile, include_path: Sequence[str | Path] = ()) -> list[A.SpecFile]:
    """The root and every file it includes (transitively), includes first."""
    order: list[A.SpecFile] = []
    seen: dict[Path, A.SpecFile] = {}
    policy = IncludePolicy(root, include_path)

    def visit(spec: A.SpecFile, stack: list[Path]) -> None:
        for inc in spec.includes:
            base = Path(spec.src.path).parent
            target = policy.resolve(inc, base)
            if target in stack:
                cycle = " -> ".join(p.name for p in [*stack[stack.index(target):], target])
                raise NetdslError(f"include cycle: {cycle}", inc.loc,
                                  hint="a block library cannot include the file using it")
            if len(stack) >= MAX_INCLUDE_DEPTH:
                raise NetdslError("includes are nested too deeply", inc.loc)
            if target in seen:
                continue
            try:
                if target.is_dir():
                    raise NetdslError("is a directory", hint="include a block library file (.net)")
                if not target.exists():
                    libs = ", ".join(f'"{n}"' for n in library_names())
                    raise NetdslError("no such file", hint=f"paths are relative to {base or '.'}; "
                                      f"netdsl's own library has {libs}")
                text = read_spec(target)
            except NetdslError as e:
                where = f"paths are relative to {base or '.'}, then netdsl's shipped library"
                raise NetdslError(f"cannot include \"{inc.path}\": {e.message}", inc.loc,
                                  hint=e.hint or where) from None
            try:
                lib = parse_text(text, _display(target, base / inc.path))
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

    visit(root, [_real(Path(root.src.path), None)])
    return [*order, root]


def loads(text: str, path: str = "<string>", params: dict[str, Any] | None = None,
          line_offset: int = 0, include_path: Sequence[str | Path] = ()) -> Network:
    """Parse, expand and shape-check spec text. Raises NetdslError.

    ``include_path``: directories that ``include`` may read besides the spec's own directory
    tree and netdsl's block libraries.
    """
    root = parse_text(text, path, line_offset)
    files = _load_files(root, include_path)
    expander = Expander(root, files, params or {})
    graph = expander.run()
    ctx = PassContext(frozenset(expander.auto_acts),
                      [w for f in files for w in f.warnings] + expander.warnings)
    graph = run_passes(graph, ctx)
    return Network(graph, expander.header, ctx.warnings, text, path,
                   tuple(f.src.path for f in files))


def load(path: str | Path, params: dict[str, Any] | None = None,
         include_path: Sequence[str | Path] = ()) -> Network:
    """Load and check a ``.net`` spec file. Raises NetdslError (located where possible).

    Args:
        path: the spec file, or a spec embedded in a Markdown/LaTeX document: ``paper.md#2``
            (the second; ``paper.md`` alone when it holds one). When no such file exists,
            ``NAME.net``, then a spec netdsl ships: ``load("resnet50")``.
        params: overrides for the spec's ``param`` values, e.g. ``{"classes": 10}``.
        include_path: further directories ``include`` may read (see ``loads``).
    """
    from . import embedded  # small; imported here because it imports this module

    if embedded.is_document_ref(str(path)):
        return embedded.load_embedded(str(path), params, include_path)
    if str(path) and not Path(path).exists():
        found = find_spec(str(path))
        if found is None and "/" not in str(path):
            raise NetdslError("no such file, nor a spec netdsl ships", path=str(path),
                              hint=f"netdsl ships: {', '.join(names())}")
        path = found or path
    return loads(read_spec(path), str(path), params, include_path=include_path)


def _display(target: Path, written: Path) -> str:
    """The path an included file is reported by: as written when it is that file."""
    for cand in (written, Path(f"{written}.net")):
        if cand.resolve() == target:
            return str(cand)
    return str(target)


