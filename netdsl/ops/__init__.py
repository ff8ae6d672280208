"""The op registry: one ``OpDef`` per layer type, and nothing else names ops.

A layer in a spec is a keyword plus the papers' compact suffix and optional words::

    conv3-64/2 pad 0 groups 2 bias off      maxpool3/2 ceil      dropout 0.5      FC-4096

The keyword's trailing digits are the kernel (``conv3``, ``conv1x7``, ``conv3x3x3``), ``-C`` the
channels/features, ``/S`` the stride. Each op declares these as fields of its frozen ``Attrs``
dataclass (``opt(...)`` metadata); ``OpDef.build`` turns the parsed values into validated
Attrs, so the grammar stays generic and adding a layer type is one class in this package.

Shapes. Every input and output is a ``Shape`` (netdsl/shape.py): a ``Layout`` (vector, tokens,
or a map with 1, 2 or 3 spatial axes) and the sizes of one example, without the batch axis.
An op declares the layouts it accepts in ``accepts`` (``MAPS``, ``MAPS | {Layout.VECTOR}``,
``ANY``, …); the builder checks every input against it before calling ``infer`` and reports
"bn expects a map or a vector, got a 197×768 token sequence" at the layer, so ``infer`` and
the other methods may assume their inputs fit. They read the input through the Shape's
helpers, never by position in a tuple::

    def infer(self, a, ins, loc):
        x = ins[0]                      # Shape
        k = sizes(a.kernel, x, "kernel", self.name, loc)   # one size per spatial axis
        ...
        return x.with_channels(a.out).with_spatial(out)   # or Shape.vector(a.out), …

``produces`` names the layouts ``infer`` may return (None: the input's); the builder asserts
it. Sizes per spatial axis (kernels, strides, padding) are ``opt(kind="size")`` fields: one
number means that size on every axis (``conv3`` is 3, 3×3 or 3×3×3 by the input), several
give one per axis (``conv1x7``), and ``sizes`` fits them to the input at ``infer`` time.

Traits (class attributes) say what drivers may do with an op; drivers never compare op names:
``carries_weights`` (it has learned tensors of its own), ``takes_activation`` (the header's
``activation`` follows it), ``counts_in_depth`` (a weight layer of the papers' depth), ``gates``
(inputs that modulate the signal instead of carrying it: not on a depth path), ``transparent``,
``inplace``, ``is_activation``; an op with ``arity == 0`` is the network's input.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import NetdslError, NetdslWarning, SourceLoc, did_you_mean
from ..limits import MAX_DIM
from ..shape import ANY, AXIS_NAMES, MAPS, Layout, Shape, describe_layouts

__all__ = ["ANY", "MAPS", "Layout", "Shape"]  # what op modules import from here, with OpDef

if TYPE_CHECKING:  # the ONNX builder imports onnx; ops only call its methods
    from ..codegen.onnx import OnnxBuilder

REGISTRY: dict[str, OpDef] = {}  # keyword (and aliases), lower case -> op
OPS: dict[str, OpDef] = {}  # canonical op name -> op



def register(name: str, *aliases: str, keyword: bool = True
             ) -> Callable[[type[OpDef]], type[OpDef]]:
    """Class decorator: make an OpDef available under ``name`` (the keyword) and aliases.

    ``keyword=False`` registers an op specs cannot write as a layer (the network's input).
    """

    def deco(cls: type[OpDef]) -> type[OpDef]:
        op = cls()
        op.name = name
        OPS[name] = op
        for key in (name, *aliases) if keyword else ():
            REGISTRY[key.lower()] = op
        return cls

    return deco


def opt(default: Any = dataclasses.MISSING, *, kind: str = "int", lo: float | None = None,
        hi: float | None = None, choices: tuple[str, ...] = (), doc: str = "") -> Any:
    """Declare an Attrs field settable from a spec.

    Args:
        default: value when the spec does not say; MISSING makes it required.
        kind: "int", "float", "bool", "size" (one or more sizes per spatial axis: ``3``,
            ``1x7``, ``3x3x3``; see ``sizes``), or "choice".
        lo: smallest allowed value (inclusive); hi: largest (exclusive) for floats.
        choices: allowed words for kind "choice".
        doc: one line for error hints and documentation.
    """
    meta = {"kind": kind, "lo": lo, "hi": hi, "choices": choices, "doc": doc}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class NoAttrs:
    """Attrs of ops that take no arguments."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One weight or buffer of a layer, named ``<layer>.<name>`` in state_dicts and ONNX.

    ``init`` is "fan" (the spec's He/Glorot scheme over ``fans`` = (fan_in, fan_out)),
    "zeros", "ones" or "const" (every element ``value``). ``trainable`` is False for running
    statistics (buffers). An empty ``name`` makes the tensor the layer itself (``<layer>``).
    """

    name: str
    shape: tuple[int, ...]
    init: str = "fan"
    fans: tuple[int, int] = (1, 1)
    trainable: bool = True
    value: float = 0.0

    def key(self, layer: str) -> str:
        """The tensor's state_dict key in layer ``layer``."""
        return f"{layer}.{self.name}" if self.name else layer


@dataclass(frozen=True, slots=True)
class TorchCode:
    """An op's PyTorch lowering: a submodule constructor (or None) and a forward expression.

    ``forward`` is a ``str.format`` template: ``{m}`` is the submodule, ``{0}``, ``{1}``, …
    the input variables, e.g. ``"{m}(torch.flatten({0}, 1))"`` or ``"{0} + {1}"``.
    ``parameter`` says ``module`` constructs an ``nn.Parameter`` (layer scale), not a module.
    ``helper`` is module-level source (a class or function, standalone: torch, nn and F only)
    that ``module`` or ``forward`` uses; the generated file holds each distinct helper once.
    """

    module: str | None
    forward: str
    parameter: bool = False
    helper: str | None = None


@dataclass
class LayerArgs:
    """What the parser found on one layer, before the op interprets it."""

    keyword: str
    kernel: str | None  # the keyword's trailing "3" or "3x1"
    channels: Any = None
    stride: Any = None
    positional: list[Any] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


_KEYWORD = re.compile(r"^(?P<base>[A-Za-z_]+?(?:-max)?)(?P<kernel>[0-9]+(?:x[0-9]+){0,2})?$", re.I)


def split_keyword(word: str) -> tuple[str, str | None]:
    """``conv3x1`` -> ("conv", "3x1"); ``maxpool`` -> ("maxpool", None); ``FC`` -> ("fc", None)."""
    low = word.lower()
    if low in REGISTRY:
        return low, None
    m = _KEYWORD.match(word)
    if not m:
        return low, None
    return m["base"].lower(), m["kernel"]


class OpDef:
    """Base of every layer type: its spec syntax, shape rule, and costs.

    Subclasses set the class attributes below, an ``Attrs`` dataclass, and override
    ``infer`` (plus ``params``/``macs``/``notation`` where they differ from the defaults).
    """

    name: str = ""
    Attrs: ClassVar[type] = NoAttrs
    kernel_field: ClassVar[str | None] = None  # Attrs field the keyword's digits fill
    channels_field: ClassVar[str | None] = None  # Attrs field "-C" fills
    stride_field: ClassVar[str | None] = None  # Attrs field "/S" fills
    positional: ClassVar[tuple[str, ...]] = ()  # Attrs fields filled by bare numbers, in order
    arity: ClassVar[int | None] = 1  # number of inputs; None means two or more; 0 the input
    accepts: ClassVar[frozenset[Layout]] = ANY  # layouts of every input
    produces: ClassVar[frozenset[Layout] | None] = None  # layouts infer returns; None: the input's
    carries_weights: ClassVar[bool] = False  # has learned tensors of its own (conv, FC, BN)
    takes_activation: ClassVar[bool] = False  # the header's `activation` follows it (conv, FC)
    counts_in_depth: ClassVar[bool] = False  # a weight layer of the papers' depth (conv, FC)
    gates: ClassVar[tuple[int, ...]] = ()  # inputs that scale the signal (SE): off depth paths
    transparent: ClassVar[bool] = False  # passes a head's logits through (dropout, softmax)
    inplace: ClassVar[bool] = False  # elementwise, computed in place: no activation memory
    is_activation: ClassVar[bool] = False  # usable as the network's `activation`

    # ---- building attrs from the spec --------------------------------------------------------
    def fields(self) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(self.Attrs) if "kind" in f.metadata}

    def build(self, args: LayerArgs, loc: SourceLoc) -> Any:
        """Validate what the spec says against the Attrs declaration and construct them."""
        fields = self.fields()
        values: dict[str, Any] = {}

        def put(fname: str | None, value: Any, what: str) -> None:
            if value is None:
                return
            if fname is None:
                raise NetdslError(f"{self.name} takes no {what}", loc,
                                  hint=f"write it as: {self.usage()}")
            values[fname] = self._coerce(fields[fname], value, fname, loc)

        put(self.kernel_field, args.kernel, "kernel size in its name")
        put(self.channels_field, args.channels, "'-C' channel count")
        put(self.stride_field, args.stride, "'/S' stride")
        if len(args.positional) > len(self.positional):
            extra = args.positional[len(self.positional)]
            raise NetdslError(f"unexpected value {extra!r} for {self.name}", loc,
                              hint=f"write it as: {self.usage()}")
        for fname, value in zip(self.positional, args.positional, strict=False):
            put(fname, value, "value")
        for key, value in args.options.items():
            if key not in fields:
                known = ", ".join(sorted(fields)) or "none"
                raise NetdslError(f"unknown option '{key}' for {self.name}", loc,
                                  hint=did_you_mean(key, list(fields))
                                  or f"{self.name} options: {known}")
            values[key] = self._coerce(fields[key], value, key, loc)
        missing = [f for f in dataclasses.fields(self.Attrs)
                   if f.name not in values and f.default is dataclasses.MISSING]
        if missing:  # "conv needs its output channels", not the field's name "out"
            what = missing[0].metadata.get("doc", missing[0].name)
            raise NetdslError(f"{self.name} needs its {what}", loc,
                              hint=f"write it as: {self.usage()}")
        attrs = self.Attrs(**values)
        self.validate(attrs, loc)
        return attrs

    def _coerce(self, f: dataclasses.Field, value: Any, key: str, loc: SourceLoc) -> Any:
        doc = f.metadata["doc"]
        name = doc if doc and len(doc) <= 20 else key  # "output channels", not "out"
        try:
            return _coerce(f, value, name, self.name, loc)
        except NetdslError as e:
            what = f"{key} is the {doc}; " if doc and doc != key and name == key else ""
            e.hint = e.hint or f"{what}write it as: {self.usage()}"
            raise

    def validate(self, a: Any, loc: SourceLoc) -> None:
        """Cross-field checks (e.g. groups dividing channels); raise NetdslError at loc."""

    def usage(self) -> str:
        s = self.name
        if self.kernel_field:
            s += "K"
        if self.channels_field:
            s += "-C"
        if self.stride_field:
            s += "[/S]"
        s += "".join(f" [{p}]" for p in self.positional)
        opts = [f for f in self.fields() if f not in
                (self.kernel_field, self.channels_field, *self.positional)]
        return s + (f"  (options: {', '.join(opts)})" if opts else "")

    # ---- semantics ---------------------------------------------------------------------------
    def check_layouts(self, ins: tuple[Shape, ...], loc: SourceLoc | None) -> None:
        """Raise a located error naming what was expected when an input's layout is not
        accepted (the builder calls this before ``infer``)."""
        for s in ins:
            if s.layout not in self.accepts:
                raise NetdslError(f"{self.name} expects {describe_layouts(self.accepts)}, got "
                                  f"{s.describe()}", loc, hint=self.layout_hint(s))

    def layout_hint(self, got: Shape) -> str:
        """The hint of a layout error (override for a better one)."""
        if got.layout is Layout.VECTOR and self.accepts <= MAPS:
            return "a conv or pooling layer cannot follow an FC layer"
        if got.layout is Layout.TOKENS:
            return f"{self.name} does not apply to token sequences"
        return f"{self.name} does not apply to {got.layout.kind}s"

    def infer(self, a: Any, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        """Output shape from input shapes; raise NetdslError at loc when they do not fit."""
        return ins[0]

    def warnings(self, a: Any, ins: tuple[Shape, ...], loc: SourceLoc | None
                 ) -> list[NetdslWarning]:
        """Suspicious but valid configurations (e.g. pixels dropped by a stride)."""
        return []

    def params(self, a: Any, ins: tuple[Shape, ...]) -> int:
        """Trainable parameters (BN: scale and shift; running statistics are not parameters)."""
        return 0

    def macs(self, a: Any, ins: tuple[Shape, ...], out: Shape) -> int:
        """Multiply-adds per image. Only conv and FC count, the papers' convention."""
        return 0

    def notation(self, a: Any, ins: tuple[Shape, ...]) -> str:
        """The layer in the papers' notation, e.g. ``conv3-64``, ``maxpool``, ``FC-4096``."""
        return self.name

    # ---- lowering ------------------------------------------------------------------------------
    def tensors(self, a: Any, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        """Weights and buffers, in PyTorch's registration order (state_dict order)."""
        return []

    def torch(self, a: Any, ins: tuple[Shape, ...]) -> TorchCode:
        """PyTorch source for this layer (see ``TorchCode``)."""
        raise NotImplementedError(f"{self.name} has no PyTorch lowering")

    def onnx(self, b: OnnxBuilder, a: Any, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        """Emit ONNX nodes through ``b`` (the main one named ``name``); return the output value."""
        raise NotImplementedError(f"{self.name} has no ONNX lowering")


def _coerce(f: dataclasses.Field, value: Any, key: str, op: str, loc: SourceLoc) -> Any:
    meta = f.metadata
    kind = meta["kind"]
    bad = f"invalid {key} for {op}: "
    if isinstance(value, bool) and kind != "bool":  # a comparison's value, e.g. conv3-(c > 1)
        raise NetdslError(bad + f"got {str(value).lower()} (a comparison), expected a number",
                          loc)
    if kind == "choice":
        word = str(value).lower()
        if word not in meta["choices"]:
            raise NetdslError(bad + f"got {value!r}, expected one of {', '.join(meta['choices'])}",
                              loc)
        return word
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("on", "off", "true", "false"):
            return value.lower() in ("on", "true")
        raise NetdslError(bad + f"got {value!r}, expected on or off", loc)
    if kind == "size":
        if isinstance(value, str):  # a bare word: sizes per axis, 1x7
            if not re.fullmatch(r"[0-9]+(x[0-9]+)*", value.lower()):
                raise NetdslError(bad + f"got {value!r}, expected a whole number or one per "
                                  "axis (1x7)", loc)
            size = tuple(int(p) for p in value.lower().split("x"))
        elif isinstance(value, bool) or not isinstance(value, int):
            raise NetdslError(bad + f"got {value!r}, expected a whole number", loc)
        else:
            size = (value,)
        for v in size:
            _check_range(v, meta, bad, loc)
        return size
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise NetdslError(bad + f"got {value!r}, expected a whole number", loc)
        _check_range(value, meta, bad, loc)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NetdslError(bad + f"got {value!r}, expected a number", loc)
    value = float(value)
    if not math.isfinite(value):
        raise NetdslError(bad + f"got {value!r}, expected a finite number", loc)
    _check_range(value, meta, bad, loc)
    return value


def _check_range(v: float, meta: Any, bad: str, loc: SourceLoc) -> None:
    lo, hi = meta["lo"], meta["hi"]
    if (lo is not None and v < lo) or (hi is not None and v >= hi):
        want = f"in [{lo:g}, {hi:g})" if lo is not None and hi is not None else \
            f"at least {lo:g}" if lo is not None else f"less than {hi:g}"
        raise NetdslError(bad + f"got {v if isinstance(v, int) else f'{v:g}'}, expected {want}",
                          loc)
    if meta["kind"] != "float" and abs(v) >= MAX_DIM:
        raise NetdslError(bad + f"got {v}, which is absurdly large (limit {MAX_DIM - 1})", loc)


def sizes(size: tuple[int, ...], x: Shape, what: str, op: str, loc: SourceLoc | None
          ) -> tuple[int, ...]:
    """A "size" attr fitted to map ``x``: one value per spatial axis (a single value repeats)."""
    n = len(x.spatial)
    if len(size) == 1:
        return size * n
    if len(size) != n:
        given = "x".join(map(str, size))
        raise NetdslError(f"{op} {what} {given} has {len(size)} sizes, but its input is "
                          f"{x.describe()} with {n} spatial ax{'i' if n == 1 else 'e'}s "
                          f"({', '.join(AXIS_NAMES[n])})",
                          loc, hint="write one size for every axis" + (
                              f" (e.g. {size[-1]})" if n == 1 else
                              f", or {n} (e.g. {'x'.join([str(size[-1])] * n)})"))
    return size


def size_text(size: tuple[int, ...]) -> str:
    """A size as the papers write it: ``3`` when equal on every axis, else ``1x7``."""
    return str(size[0]) if len(set(size)) == 1 else "x".join(map(str, size))


def lookup(keyword: str) -> tuple[OpDef | None, str | None]:
    """The op for a layer keyword and the kernel digits it carries, or (None, None)."""
    base, kernel = split_keyword(keyword)
    op = REGISTRY.get(base)
    if op is None:
        return None, None
    if kernel is not None and op.kernel_field is None:
        return None, None
    return op, kernel


from . import activation, channel, conv, dense, norm, structure, swin, transformer  # noqa: E402,F401  (registers the ops)
