"""The spec's syntax tree: what the file says, before blocks and repetition are expanded."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import NetdslWarning, SourceFile, SourceLoc


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # one of + - * / %
    left: Expr
    right: Expr
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of == != < <= > >=
    left: Expr
    right: Expr
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Expr
    right: Expr
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Func:
    """A built-in function of arithmetic: ``min(a, b)``, ``make_divisible(c*w, 8)``."""

    name: str
    args: tuple[Expr, ...]
    loc: SourceLoc


Expr = Num | Ref | BinOp | Neg | Compare | BoolOp | Not | Func


@dataclass(frozen=True, slots=True)
class Word:
    """One word after a layer or construct: ``pad``, ``1``, ``off``, ``shortcut=A``."""

    kind: str  # "flag" | "number" | "on" | "off" | "keyval"
    loc: SourceLoc
    key: str | None = None  # flag name or keyval key
    value: Expr | None = None  # number or keyval value


@dataclass(frozen=True, slots=True)
class LayerAst:
    keyword: str
    loc: SourceLoc
    channels: Expr | None
    stride: Expr | None
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True)
class Call:
    block: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Chain:
    """``conv3-64 +bn +relu``: layers (and, after a ``+``, block calls) applied in order."""

    layers: tuple[LayerAst | Call, ...]
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Group:
    body: Body
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Construct:
    """``concat { a | b }``, ``residual { f } shortcut { g }``, ``scale``, ``dense``, ``aux``."""

    kind: str
    words: tuple[Word, ...]
    branches: tuple[Body, ...]
    loc: SourceLoc
    extra_kind: str | None = None
    extra: tuple[Body, ...] = ()
    extra_loc: SourceLoc | None = None


@dataclass(frozen=True, slots=True)
class Sequence:
    """``[ … ]``: a group whose layers, calls and constructs are numbered 0, 1, … in order."""

    body: Body
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class If:
    """``if c { … } else if d { … } else { … }``: the first body whose condition holds (or
    ``orelse``) expands in the ``if``'s place, in its scope."""

    tests: tuple[tuple[Expr, Body], ...]
    orelse: Body | None
    loc: SourceLoc


Unit = Chain | Call | Group | Construct | Sequence | If


@dataclass(frozen=True, slots=True)
class Stmt:
    target: str | None
    unit: Unit
    repeat: Expr | None
    inputs: tuple[str, ...] | None
    loc: SourceLoc


Body = tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class BlockDef:
    name: str
    params: tuple[tuple[str, Expr | None], ...]
    body: Body
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Include:
    path: str
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Default:
    op: str
    words: tuple[Word, ...]
    loc: SourceLoc


@dataclass(frozen=True, slots=True)
class Setting:
    key: str  # network | input | param | cite | init | activation
    values: tuple[object, ...]
    loc: SourceLoc


@dataclass(slots=True)
class SpecFile:
    """One parsed file: header settings, imports, defaults, blocks and the main body."""

    src: SourceFile
    settings: list[Setting] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    defaults: list[Default] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    body: list[Stmt] = field(default_factory=list)
    warnings: list[NetdslWarning] = field(default_factory=list)  # found by the parser
