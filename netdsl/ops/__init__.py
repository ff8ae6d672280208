"""The op registry: one ``OpDef`` per layer type, and nothing else names ops.

A layer in a spec is a keyword plus the papers' compact suffix and optional words::

    conv3-64/2 pad 0 groups 2 bias off      maxpool3/2 ceil      dropout 0.5      FC-4096

The keyword's trailing digits are the kernel (``conv3``, ``conv1x7``, ``maxpool3``), ``-C`` the
channels/features, ``/S`` the stride. Each op declares these as fields of its frozen ``Attrs``
dataclass (``opt(...)`` metadata); ``OpDef.build`` turns the parsed values into validated
Attrs, so the grammar stays generic and adding a layer type is one class in this package.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import NetdslError, NetdslWarning, SourceLoc, did_you_mean
from ..ir import Shape

if TYPE_CHECKING:  # the ONNX builder imports onnx; ops only call its methods
    from ..codegen.onnx import OnnxBuilder

REGISTRY: dict[str, OpDef] = {}  # keyword (and aliases), lower case -> op
OPS: dict[str, OpDef] = {}  # canonical op name -> op

MAX_DIM = 1 << 31  # one dimension of any size, channel count or kernel (guards absurd input)


def register(name: str, *aliases: str) -> Callable[[type[OpDef]], type[OpDef]]:
    """Class decorator: make an OpDef available under ``name`` (the keyword) and aliases."""

    def deco(cls: type[OpDef]) -> type[OpDef]:
        op = cls()
        op.name = name
        OPS[name] = op
        for key in (name, *aliases):
            REGISTRY[key.lower()] = op
        return cls

    return deco


def opt(default: Any = dataclasses.MISSING, *, kind: str = "int", lo: float | None = None,
        hi: float | None = None, choices: tuple[str, ...] = (), doc: str = "") -> Any:
    """Declare an Attrs field settable from a spec.

    Args:
        default: value when the spec does not say; MISSING makes it required.
        kind: "int", "float", "bool", "pair" (``3`` or ``3x1``), or "choice".
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
    "zeros" or "ones". ``trainable`` is False for running statistics (buffers).
    """

    name: str
    shape: tuple[int, ...]
    init: str = "fan"
    fans: tuple[int, int] = (1, 1)
    trainable: bool = True


@dataclass(frozen=True, slots=True)
class TorchCode:
    """An op's PyTorch lowering: a submodule constructor (or None) and a forward expression.

    ``forward`` is a ``str.format`` template: ``{m}`` is the submodule, ``{0}``, ``{1}``, …
    the input variables, e.g. ``"{m}(torch.flatten({0}, 1))"`` or ``"{0} + {1}"``.
    """

    module: str | None
    forward: str


@dataclass
class LayerArgs:
    """What the parser found on one layer, before the op interprets it."""

    keyword: str
    kernel: str | None  # the keyword's trailing "3" or "3x1"
    channels: Any = None
    stride: Any = None
    positional: list[Any] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


_KEYWORD = re.compile(r"^(?P<base>[A-Za-z_]+?(?:-max)?)(?P<kernel>[0-9]+(?:x[0-9]+)?)?$", re.I)


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
    arity: ClassVar[int | None] = 1  # number of inputs; None means two or more
    weight_layer: ClassVar[bool] = False  # conv/FC: followed by the network's `activation`
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
        missing = [f.name for f in dataclasses.fields(self.Attrs)
                   if f.name not in values and f.default is dataclasses.MISSING]
        if missing:
            raise NetdslError(f"{self.name} needs its {missing[0]}", loc,
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
    if kind == "pair":
        if isinstance(value, str):
            parts = [int(p) for p in value.lower().split("x")]
            pair = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        elif isinstance(value, bool) or not isinstance(value, int):
            raise NetdslError(bad + f"got {value!r}, expected a whole number", loc)
        else:
            pair = (value, value)
        for v in pair:
            _check_range(v, meta, bad, loc)
        return pair
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
    want = f"in [{lo:g}, {hi:g})" if lo is not None and hi is not None else \
        f"at least {lo:g}" if lo is not None else f"less than {hi:g}"
    if (lo is not None and v < lo) or (hi is not None and v >= hi):
        raise NetdslError(bad + f"got {v if isinstance(v, int) else f'{v:g}'}, expected {want}",
                          loc)
    if meta["kind"] != "float" and abs(v) >= MAX_DIM:
        raise NetdslError(bad + f"got {v}, which is absurdly large (limit {MAX_DIM - 1})", loc)


def lookup(keyword: str) -> tuple[OpDef | None, str | None]:
    """The op for a layer keyword and the kernel digits it carries, or (None, None)."""
    base, kernel = split_keyword(keyword)
    op = REGISTRY.get(base)
    if op is None:
        return None, None
    if kernel is not None and op.kernel_field is None:
        return None, None
    return op, kernel


from . import activation, conv, dense, structure  # noqa: E402,F401  (registers the ops)
