"""Text -> syntax tree. Loads the grammar once; maps Lark's errors to located NetdslErrors."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Tree, UnexpectedInput, v_args
from lark.exceptions import VisitError
from lark.visitors import Transformer_NonRecursive

from . import ast as A
from .charset import check_controls, trojan_warnings
from .errors import NetdslError, SourceFile, SourceLoc
from .limits import MAX_DEPTH, MAX_LITERAL_DIGITS, MAX_SPEC_CHARS, MAX_TERMS
from .recovery import Recovery, collect

_GRAMMAR_NAME = "netdsl.lark"

def grammar_text() -> str:
    """The grammar, from the installed package data or the source checkout's grammars/."""
    here = Path(__file__).resolve().parent
    for cand in (here / "grammars" / _GRAMMAR_NAME, here.parent / "grammars" / _GRAMMAR_NAME):
        if cand.is_file():
            return cand.read_text(encoding="utf-8")
    return resources.files("netdsl").joinpath("grammars", _GRAMMAR_NAME).read_text("utf-8")


_OPTIONS: dict[str, Any] = dict(parser="lalr", lexer="contextual", propagate_positions=True,
                               maybe_placeholders=False)


@functools.cache
def _lark() -> Lark:
    """The parser, from the user's own cache when it is there and safe (tables take ~40 ms).

    Never Lark's ``cache=True``: that unpickles a predictable file in the shared temp
    directory, which another local user could plant (issue 13). The cache lives in a 0700
    directory the user owns, and a file is unpickled only if the user owns it and nobody
    else can write it.
    """
    text = grammar_text()
    key = hashlib.sha256(f"{text}{_OPTIONS}{lark.__version__}{sys.version}".encode()).hexdigest()
    folder = cache_dir()
    path = folder / f"parser-{key[:20]}.pickle" if folder else None
    if path is not None and (parser := _load_cached(path)) is not None:
        return parser
    parser = Lark(text, **_OPTIONS)
    if path is not None:
        _save_cached(parser, path)
    return parser


def cache_dir() -> Path | None:
    """$XDG_CACHE_HOME/netdsl (default ~/.cache/netdsl), created 0700; None when it is not a
    directory that only this user can write (then nothing is cached)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    folder = Path(base) / "netdsl"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    private = stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o077
    return folder if private and st.st_uid == os.geteuid() else None


def _load_cached(path: Path) -> Lark | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None
        try:
            return Lark.load(f)
        except Exception:  # a stale or torn cache file: rebuild it
            return None


def _save_cached(parser: Lark, path: Path) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".parser-", dir=path.parent)  # 0600, never a link
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            parser.save(f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def parse_text(text: str, path: str = "<string>", line_offset: int = 0) -> A.SpecFile:
    """Parse spec text into a SpecFile; syntax errors become NetdslError.

    Syntax errors do not stop the parse: the parser skips to the next separator (`;`, a new
    line, or an unmatched closing bracket) and goes on, so up to MAX_ERRORS independent
    errors are reported together, in source order (the first raised, the rest ``related``).
    """
    src = SourceFile(path, text, line_offset)
    if len(text) > MAX_SPEC_CHARS:
        raise NetdslError(f"spec is {len(text):,} characters long, more than the limit of "
                          f"{MAX_SPEC_CHARS:,}", path=path, hint="is this really a spec?")
    if not text.strip():
        raise NetdslError("the spec is empty", SourceLoc(src, 1, 1),
                          hint="a spec needs at least an 'input' line and one layer, "
                               "e.g. 'input 3x32x32' then 'conv3-16; FC-10'")
    check_controls(src)
    recovery = Recovery(src)
    try:
        tree = _lark().parse(text, on_error=recovery)
    except UnexpectedInput as e:
        recovery.record(e)
    if recovery.errors:
        raise collect(recovery.errors, recovery.dropped)
    _check_depth(tree, src)
    try:
        spec: A.SpecFile = _ToAst(src).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, NetdslError):
            raise e.orig_exc from None
        raise
    spec.warnings += trojan_warnings(src)
    return spec


_LEVELS = {"body", "args", "neg", "not_"}  # a group's, construct's or block's body; call arguments
_CHAINS = {"add": "sum", "sub": "sum", "mul": "product", "div": "product", "mod": "product",
           "and_": "and", "or_": "or"}


def _check_depth(tree: Tree, src: SourceFile) -> None:
    """Refuse absurd nesting before the builder's recursion sees it.

    Levels are what a person sees nested: bodies in braces or brackets, call arguments,
    operators inside other operators. A flat sum ``1 + 1 + … + 1`` is one level but a deep
    tree (the operators associate to the left): it is limited by its length instead.
    """
    stack: list[tuple[Tree, int, int]] = [(tree, 0, 0)]  # node, levels, terms of its chain
    while stack:
        node, levels, terms = stack.pop()
        problem = None
        if levels > MAX_DEPTH:
            problem = (f"nested more than {MAX_DEPTH} levels deep (groups, braces, block "
                       "calls, brackets)", "flatten the groups and brackets, or use params")
        elif terms > MAX_TERMS:
            problem = (f"an expression of more than {MAX_TERMS} terms",
                       "write a repeated sum as a product (n*k), or use params")
        if problem:
            meta = node.meta
            loc = SourceLoc(src, getattr(meta, "line", 1), getattr(meta, "column", 1))
            raise NetdslError(problem[0], loc, hint=problem[1])
        chain = _CHAINS.get(str(node.data))
        for i, c in enumerate(node.children):
            if not isinstance(c, Tree):
                continue
            kind = _CHAINS.get(str(c.data))
            if kind and kind == chain and i == 0:  # the left operand continues the chain
                stack.append((c, levels, terms + 1))
            else:
                deeper = str(c.data) in _LEVELS or kind is not None
                stack.append((c, levels + deeper, 2 if kind else 0))


def _s(tok: Token) -> str:
    return str(tok)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):  # the levels' tree nodes nest deeper than they do
    """Lark tree -> netdsl.ast; every node keeps its SourceLoc."""

    def __init__(self, src: SourceFile) -> None:
        super().__init__()
        self.src = src

    def __default__(self, data: Any, children: Any, meta: Any) -> Any:
        raise AssertionError(f"grammar rule without a transformer: {data}")

    def _loc(self, meta: Any) -> SourceLoc:
        if getattr(meta, "empty", True):
            return SourceLoc(self.src, 1, 1)
        end = meta.end_column if meta.end_line == meta.line else None
        return SourceLoc(self.src, meta.line, meta.column, end)

    def _loc_head(self, meta: Any) -> SourceLoc:
        """The ``if`` keyword (the statement spans its bodies)."""
        return SourceLoc(self.src, meta.line, meta.column, meta.column + 2)

    def _tloc(self, tok: Token) -> SourceLoc:
        return SourceLoc(self.src, tok.line or 1, tok.column or 1, (tok.column or 1) + len(tok))

    # ---- file ----------------------------------------------------------------------------
    def start(self, meta: Any, items: list[Any]) -> A.SpecFile:
        spec = A.SpecFile(self.src)
        for it in items:
            match it:
                case A.Setting():
                    spec.settings.append(it)
                case A.Include():
                    spec.includes.append(it)
                case A.Default():
                    spec.defaults.append(it)
                case A.BlockDef():
                    spec.blocks.append(it)
                case A.Stmt():
                    spec.body.append(it)
        return spec

    def network(self, meta: Any, c: list[Token]) -> A.Setting:
        if not _unquote(c[0]).strip():
            raise NetdslError("the network name is empty", self._tloc(c[0]),
                              hint='name it, e.g. network cifar_cnn "A CIFAR-10 CNN"')
        return A.Setting("network", tuple(_unquote(t) for t in c), self._loc(meta))

    def input(self, meta: Any, c: list[Token]) -> A.Setting:
        parts = re.split(r"\s*[x×]\s*", str(c[0]))
        if any(len(d) > 12 for d in parts):
            raise NetdslError("input size is absurdly large", self._tloc(c[0]),
                              hint="each dimension must be below 2**31")
        dims = tuple(int(d) for d in parts)
        layout = tuple(_s(t) for t in c[1:])  # `input 197x768 tokens`
        return A.Setting("input", (*dims, *layout), self._loc(meta))

    def param(self, meta: Any, c: list[Any]) -> A.Setting:
        return A.Setting("param", (_s(c[0]), c[1]), self._loc(meta))

    def cite(self, meta: Any, c: list[Token]) -> A.Setting:
        return A.Setting("cite", (_unquote(c[0]),), self._loc(meta))

    def init(self, meta: Any, c: list[Token]) -> A.Setting:
        return A.Setting("init", tuple(_s(t).lower() for t in c), self._loc(meta))

    def activation(self, meta: Any, c: list[Token]) -> A.Setting:
        return A.Setting("activation", (_s(c[0]),), self._loc(meta))

    def include(self, meta: Any, c: list[Token]) -> A.Include:
        return A.Include(_unquote(c[0]), self._loc(meta))

    def default(self, meta: Any, c: list[Any]) -> A.Default:
        return A.Default(_s(c[0]), c[1], self._loc(meta))

    def block_def(self, meta: Any, c: list[Any]) -> A.BlockDef:
        name = _s(c[0])[:-1]
        params = c[1] if len(c) == 3 else ()
        return A.BlockDef(name, params, c[-1], self._loc(meta))

    def params(self, meta: Any, c: list[Any]) -> tuple[tuple[str, A.Expr | None], ...]:
        return tuple(c)

    def param_decl(self, meta: Any, c: list[Any]) -> tuple[str, A.Expr | None]:
        return (_s(c[0]), c[1] if len(c) > 1 else None)

    # ---- statements ----------------------------------------------------------------------
    def body(self, meta: Any, c: list[A.Stmt]) -> A.Body:
        return tuple(c)

    def stmt(self, meta: Any, c: list[Any]) -> A.Stmt:
        target = _s(c.pop(0)) if isinstance(c[0], Token) else None
        unit = c.pop(0)
        repeat = inputs = None
        for extra in c:
            if isinstance(extra, tuple) and extra and extra[0] == "from":
                inputs = extra[1]
            else:
                repeat = extra
        return A.Stmt(target, unit, repeat, inputs, self._loc(meta))

    def repeat(self, meta: Any, c: list[Any]) -> A.Expr:
        return c[1]

    def inputs(self, meta: Any, c: list[Any]) -> tuple[str, tuple[str, ...]]:
        return ("from", tuple(_s(t) for t in c))

    def input_ref(self, meta: Any, c: list[Any]) -> Token:
        return Token("NAME", "input")

    def if_stmt(self, meta: Any, c: list[Any]) -> A.If:
        tests = [(c[0], c[1])]
        orelse = None
        for clause in c[2:]:
            if clause[0] == "elif":
                tests.append(clause[1:])
            else:
                orelse = clause[1]
        return A.If(tuple(tests), orelse, self._loc_head(meta))

    def elif_clause(self, meta: Any, c: list[Any]) -> tuple[Any, ...]:
        return ("elif", c[0], c[1])

    def else_clause(self, meta: Any, c: list[Any]) -> tuple[Any, ...]:
        return ("else", c[0])

    def sequence(self, meta: Any, c: list[Any]) -> A.Sequence:
        return A.Sequence(c[0], self._loc(meta))

    def block_target(self, meta: Any, c: list[Any]) -> Token:
        return Token("NAME", "block")

    def chain(self, meta: Any, c: list[A.LayerAst | A.Call]) -> A.Chain:
        return A.Chain(tuple(c), self._loc(meta))

    def layer(self, meta: Any, c: list[Any]) -> A.LayerAst:
        name, (channels, stride), words = c
        return A.LayerAst(_s(name), self._tloc(name), channels, stride, words)

    def suffix(self, meta: Any, c: list[Any]) -> tuple[A.Expr | None, A.Expr | None]:
        parts = dict(c)
        return parts.get("channels"), parts.get("stride")

    def channels(self, meta: Any, c: list[Any]) -> tuple[str, A.Expr]:
        return ("channels", c[0])

    def stride(self, meta: Any, c: list[Any]) -> tuple[str, A.Expr]:
        return ("stride", c[0])

    def words(self, meta: Any, c: list[A.Word]) -> tuple[A.Word, ...]:
        return tuple(c)

    def keyval(self, meta: Any, c: list[Any]) -> A.Word:
        return A.Word("keyval", self._loc(meta), _s(c[0]), c[1])

    def flag(self, meta: Any, c: list[Token]) -> A.Word:
        return A.Word("flag", self._tloc(c[0]), _s(c[0]))

    def on(self, meta: Any, c: list[Any]) -> A.Word:
        return A.Word("on", self._loc(meta))

    def off(self, meta: Any, c: list[Any]) -> A.Word:
        return A.Word("off", self._loc(meta))

    def call(self, meta: Any, c: list[Any]) -> A.Call:
        args = c[1] if len(c) > 1 else ()
        pos = tuple(a for a in args if not isinstance(a, tuple))
        kw = tuple(a for a in args if isinstance(a, tuple))
        return A.Call(_s(c[0])[:-1], pos, kw, self._loc(meta))

    def args(self, meta: Any, c: list[Any]) -> tuple[Any, ...]:
        return tuple(c)

    def kwarg(self, meta: Any, c: list[Any]) -> tuple[str, A.Expr]:
        return (_s(c[0]), c[1])

    def group(self, meta: Any, c: list[Any]) -> A.Group:
        return A.Group(c[0], self._loc(meta))

    def construct(self, meta: Any, c: list[Any]) -> A.Construct:
        head, branches = c[0], c[1]
        if head.channels is not None or head.stride is not None:
            raise NetdslError(f"'{head.keyword} {{…}}' takes no '-C' or '/S' suffix", head.loc,
                              hint="a construct wraps layers: concat, residual, scale, dense, aux")
        if len(c) > 2:
            return A.Construct(head.keyword, head.words, branches, head.loc,
                               _s(c[2]), c[3], self._tloc(c[2]))
        return A.Construct(head.keyword, head.words, branches, head.loc)

    def branches(self, meta: Any, c: list[A.Body]) -> tuple[A.Body, ...]:
        return tuple(c)

    # ---- expressions ---------------------------------------------------------------------
    def number(self, meta: Any, c: list[Token]) -> A.Num | A.Word:
        text = _s(c[0])
        value: int | float
        if any(ch in text for ch in ".eE"):
            value = float(text)
        elif len(text) > MAX_LITERAL_DIGITS:
            raise NetdslError(f"number {text[:20]}… is absurdly large", self._tloc(c[0]),
                              hint="sizes and counts must be below 2**31")
        else:
            value = int(text)
        return A.Num(value, self._tloc(c[0]))

    def ref(self, meta: Any, c: list[Token]) -> A.Ref:
        return A.Ref(_s(c[0]), self._tloc(c[0]))

    def _bin(self, op: str, meta: Any, c: list[Any]) -> A.BinOp:
        return A.BinOp(op, c[0], c[1], self._loc(meta))

    def add(self, meta: Any, c: list[Any]) -> A.BinOp:
        return self._bin("+", meta, c)

    def sub(self, meta: Any, c: list[Any]) -> A.BinOp:
        return self._bin("-", meta, c)

    def mul(self, meta: Any, c: list[Any]) -> A.BinOp:
        return self._bin("*", meta, c)

    def div(self, meta: Any, c: list[Any]) -> A.BinOp:
        return self._bin("/", meta, c)

    def mod(self, meta: Any, c: list[Any]) -> A.BinOp:
        return self._bin("%", meta, c)

    def neg(self, meta: Any, c: list[Any]) -> A.Neg:
        return A.Neg(c[0], self._loc(meta))

    def compare(self, meta: Any, c: list[Any]) -> A.Compare:
        return A.Compare(_s(c[1]), c[0], c[2], self._loc(meta))

    def and_(self, meta: Any, c: list[Any]) -> A.BoolOp:
        return A.BoolOp("and", c[0], c[1], self._loc(meta))

    def or_(self, meta: Any, c: list[Any]) -> A.BoolOp:
        return A.BoolOp("or", c[0], c[1], self._loc(meta))

    def not_(self, meta: Any, c: list[Any]) -> A.Not:
        return A.Not(c[0], self._loc(meta))

    def func(self, meta: Any, c: list[Any]) -> A.Func:
        args = c[1] if len(c) > 1 else ()
        for a in args:
            if isinstance(a, tuple):  # name=value: functions take their arguments in order
                raise NetdslError(f"{_s(c[0])[:-1]}() takes no named arguments", a[1].loc,
                                  hint="give the values in order, e.g. make_divisible(c*w, 8)")
        name = self._tloc(c[0])  # the function's name, without its '('
        loc = SourceLoc(self.src, name.line, name.col, (name.end_col or name.col + 1) - 1)
        return A.Func(_s(c[0])[:-1], tuple(args), loc)


def _unquote(tok: Token) -> str:
    s = str(tok)
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s
