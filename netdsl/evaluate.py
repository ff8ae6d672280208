"""Values: expressions over params and block parameters, block arguments, and layer words.

Pure functions of the syntax tree and an environment (a dict of names to values); used by the
header, the expansion and the size estimate alike, so all three read a spec the same way.
"""

from __future__ import annotations

import math
import re
from typing import Any

from . import ast as A
from . import ops
from .errors import NetdslCascadeError, NetdslError, SourceLoc, did_you_mean
from .limits import MAX_INT, MAX_LAYERS

Env = dict[str, Any]
FAILED = object()  # the value of a param whose definition had an error


def evaluate(e: A.Expr, env: Env) -> Any:
    """The value of an expression over block parameters and params: a number (int or float)
    or, for comparisons and and/or/not, a bool."""
    match e:
        case A.Num(value=v):
            return v
        case A.Ref(name=n, loc=loc):
            if n in env:
                if env[n] is FAILED:
                    raise NetdslCascadeError(f"param '{n}' has an error", loc)
                return env[n]
            if ops.lookup(n)[0] is not None:
                raise NetdslError(f"'{n}' is a layer, not a value", loc,
                                  hint="arguments and sizes are numbers, params or block "
                                       "parameters; a block body can contain the layer itself")
            if n.lower() in ("true", "false"):  # a newcomer's boolean literal
                raise NetdslError(f"unknown name '{n}': netdsl has no true/false values", loc,
                                  hint="use a number and compare it: 'param se = 1', then "
                                       "'if se == 1 { … }' (a comparison is true or false)")
            if n == "i":  # the repetition index: only where a statement is repeated
                raise NetdslError("unknown name 'i': no repetition here", loc,
                                  hint="'i' is the copy's index in a repeated statement's own "
                                       "expressions ('conv3-(16*(i+1)) ×4'); a block body sees "
                                       "only its parameters: pass it, 'b(i) ×4' with "
                                       "'block b(i) { … }'")
            raise NetdslError(f"unknown name '{n}'", loc,
                              hint=did_you_mean(n, names_in(env)) or
                              (f"names here: {', '.join(names_in(env))}" if env else
                               "declare it with 'param' or as a block parameter"))
        case A.Neg(operand=x, loc=loc):
            v = evaluate(x, env)
            if not _is_number(v):
                raise NetdslError(f"'-' needs a number, got {_show(v)}", loc)
            return -v
        case A.BinOp(op=op, left=l, right=r, loc=loc):
            a, b = evaluate(l, env), evaluate(r, env)
            if not (_is_number(a) and _is_number(b)):
                raise NetdslError(f"'{op}' needs numbers, got {_show(a)} and {_show(b)}", loc)
            if op in "/%" and b == 0:
                raise NetdslError("division by zero", loc)
            if op == "*" and isinstance(a, int) and isinstance(b, int) and \
                    a.bit_length() + b.bit_length() > 64:
                raise NetdslError("arithmetic result is absurdly large", loc,
                                  hint=f"integers must stay below 2**62 ({MAX_INT:,})")
            try:
                v = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                     "/": lambda: a // b if isinstance(a, int) and isinstance(b, int) else a / b,
                     "%": lambda: a % b}[op]()
            except (OverflowError, ZeroDivisionError):
                raise NetdslError("arithmetic overflows", loc) from None
            if (isinstance(v, int) and abs(v) >= MAX_INT) or \
                    (isinstance(v, float) and not math.isfinite(v)):
                raise NetdslError("arithmetic result is absurdly large", loc,
                                  hint=f"integers must stay below 2**62 ({MAX_INT:,})")
            return v
        case A.Compare(op=op, left=l, right=r, loc=loc):
            a, b = evaluate(l, env), evaluate(r, env)
            if op in ("==", "!=") and isinstance(a, bool) and isinstance(b, bool):
                return (a == b) == (op == "==")
            if not (_is_number(a) and _is_number(b)):
                raise NetdslError(f"'{op}' compares numbers, got {_show(a)} and {_show(b)}", loc)
            return _COMPARE[op](a, b)
        case A.BoolOp(op=op, left=l, right=r, loc=loc):
            a = truth(l, env, f"'{op}'")
            if a == (op == "or"):  # decided by the left side, as in Python
                return a
            return truth(r, env, f"'{op}'")
        case A.Not(operand=x, loc=loc):
            return not truth(x, env, "'not'")
        case A.Func(name=name, args=args, loc=loc):
            return _call(name, [evaluate(a, env) for a in args], args, loc)
    raise AssertionError(e)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v: Any) -> str:
    return "true" if v is True else "false" if v is False else repr(v)


_COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def truth(e: A.Expr, env: Env, what: str = "the condition of 'if'") -> bool:
    """The value of a condition: true or false, never a number taken as one."""
    v = evaluate(e, env)
    if not isinstance(v, bool):
        raise NetdslError(f"{what} needs true or false, got {_show(v)}", e.loc,
                          hint="compare it: 's == 1', 'cin != c', 't > 1' (with and, or, "
                               "not)")
    return v


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """MobileNet's channel rounding (torchvision's ``_make_divisible``): ``v`` to the nearest
    multiple of ``divisor``, at least ``min_value`` (default ``divisor``), and never more than
    10% below ``v``."""
    low = divisor if min_value is None else min_value
    new = max(low, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# name -> (function, least and most arguments, how to call it)
FUNCTIONS: dict[str, tuple[Any, int, int, str]] = {
    "min": (lambda *v: min(v), 1, 100, "min(a, b, …): the smallest"),  # min(x) is x
    "max": (lambda *v: max(v), 1, 100, "max(a, b, …): the largest"),
    "floor": (math.floor, 1, 1, "floor(x): the whole number at or below x"),
    "ceil": (math.ceil, 1, 1, "ceil(x): the whole number at or above x"),
    "round": (round, 1, 1, "round(x): the nearest whole number, halves to even (Python's)"),
    "make_divisible": (make_divisible, 2, 3, "make_divisible(v, d[, min]): v rounded to a "
                       "multiple of d, at least min (default d), never 10% below v "
                       "(MobileNet's channel rule)"),
}


def _call(name: str, vals: list[Any], args: tuple[A.Expr, ...], loc: SourceLoc) -> Any:
    if name not in FUNCTIONS:
        hint = did_you_mean(name, list(FUNCTIONS)) or \
            "functions: " + ", ".join(f"{n}()" for n in FUNCTIONS)
        raise NetdslError(f"unknown function '{name}'", loc, hint=hint)
    f, least, most, usage = FUNCTIONS[name]
    if not least <= len(vals) <= most:
        raise NetdslError(f"{name}() takes {least if least == most else f'{least} to {most}'} "
                          f"argument(s), got {len(vals)}", loc, hint=usage)
    for v, a in zip(vals, args, strict=True):
        if not _is_number(v):
            raise NetdslError(f"{name}() needs numbers, got {_show(v)}", a.loc, hint=usage)
    if name == "make_divisible" and not all(isinstance(v, int) and v >= 1 for v in vals[1:]):
        raise NetdslError(f"make_divisible's divisor and minimum are whole numbers ≥ 1, got "
                          f"{', '.join(map(repr, vals[1:]))}", loc, hint=usage)
    try:
        v = f(*vals)
    except (OverflowError, ValueError):
        v = math.inf
    if isinstance(v, float) and not math.isfinite(v) or isinstance(v, int) and abs(v) >= MAX_INT:
        raise NetdslError("arithmetic result is absurdly large", loc,
                          hint=f"integers must stay below 2**62 ({MAX_INT:,})")
    return v


def count(e: A.Expr, env: Env, what: str = "repetition") -> int:
    """A repetition count: a whole number from 1 to MAX_LAYERS."""
    n = evaluate(e, env)
    loc: SourceLoc = e.loc
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise NetdslError(f"{what} must be a whole number ≥ 1, got {_show(n)}", loc)
    if n > MAX_LAYERS:
        raise NetdslError(f"{what} {n:,} exceeds the limit of {MAX_LAYERS:,} layers", loc,
                          hint="netdsl refuses specs that expand past this size")
    return n


_INDEX = " index"  # marks an ``i`` bound by a repetition (no name can contain a space)


def copy_env(env: Env, i: int) -> Env:
    """The environment of copy ``i`` of a repetition: ``i`` is the copy's index (0, 1, …),
    as ``{i}`` is in its name, unless a param or block parameter is named ``i``."""
    if "i" in env and _INDEX not in env:
        return env
    return {**env, "i": i, _INDEX: True}


def names_in(env: Env) -> list[str]:
    """The names a spec can use in ``env``, sorted."""
    return sorted(k for k in env if k != _INDEX)


def bind(b: A.BlockDef, c: A.Call, env: Env, params: Env) -> Env:
    """The environment of block ``b``'s body for call ``c`` made in ``env`` (``params``: the
    spec's params, visible in every block)."""
    names = [p for p, _ in b.params]
    if len(c.args) > len(names):
        raise NetdslError(f"block '{b.name}' takes {len(names)} argument(s), got "
                          f"{len(c.args)}", c.loc, hint=signature(b))
    local = dict(params)
    given: Env = {}
    for p, e in zip(names, c.args, strict=False):
        given[p] = evaluate(e, env)
    for k, e in c.kwargs:
        if k not in names:
            raise NetdslError(f"block '{b.name}' has no parameter '{k}'", _name_loc(k, e.loc),
                              hint=did_you_mean(k, names) or signature(b))
        if k in given:
            raise NetdslError(f"parameter '{k}' of '{b.name}' is given twice", e.loc,
                              hint=signature(b))
        given[k] = evaluate(e, env)
    for p, default in b.params:
        if p in given:
            local[p] = given[p]
        elif default is not None:
            local[p] = evaluate(default, local)
        else:
            raise NetdslError(f"block '{b.name}' needs its argument '{p}'", c.loc,
                              hint=signature(b))
    return local


def signature(b: A.BlockDef) -> str:
    ps = ", ".join(p if d is None else f"{p}=…" for p, d in b.params)
    return f"{b.name}({ps}) is defined at line {b.loc.line} of {b.loc.src.path}"


def layer_args(op: ops.OpDef, lay: A.LayerAst, kernel: str | None, env: Env,
               defaults: tuple[A.Word, ...] = ()) -> ops.LayerArgs:
    """A layer's suffix and words (after its type's ``default`` words) as the op's LayerArgs."""
    args = ops.LayerArgs(lay.keyword, kernel)
    if lay.channels is not None:
        args.channels = evaluate(lay.channels, env)
    if lay.stride is not None:
        args.stride = evaluate(lay.stride, env)
    words = defaults + lay.words
    fields = op.fields()
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if isinstance(w, A.Num):
            if args.options:
                raise NetdslError(f"value {w.value} has no option name", w.loc,
                                  hint=f"write it as: {op.usage()}")
            args.positional.append(w.value)
        elif w.kind == "keyval":
            args.options[str(w.key)] = word_value(w.value, env)
        elif w.kind in ("on", "off"):
            raise NetdslError(f"'{w.kind}' has no option name", w.loc,
                              hint="write e.g. 'bias off'")
        elif w.key in fields:  # an option name: the next word is its value, or a flag
            key = str(w.key)
            takes = nxt is not None and (isinstance(nxt, A.Num) or nxt.kind in ("on", "off")
                                         or (nxt.kind == "flag" and nxt.key in env
                                             and nxt.key not in fields))
            if takes and nxt is not None:
                args.options[key] = (nxt.value if isinstance(nxt, A.Num) else
                                     nxt.kind == "on" if nxt.kind in ("on", "off") else
                                     env[str(nxt.key)])
                i += 1
            elif fields[key].metadata["kind"] == "bool":
                args.options[key] = True
            else:
                raise NetdslError(f"option '{key}' of {op.name} needs a value", w.loc,
                                  hint=f"{key}: {fields[key].metadata['doc']}")
        elif w.key in env and not args.options:
            args.positional.append(env[str(w.key)])
        else:
            known = sorted(fields)
            raise NetdslError(f"unknown option '{w.key}' for {op.name}", w.loc,
                              hint=did_you_mean(str(w.key), known) or
                              (f"{op.name} options: {', '.join(known)}" if known
                               else f"{op.name} takes no options"))
        i += 1
    return args


def word_value(e: A.Expr | None, env: Env) -> Any:
    """An option's value: an expression, a bare word (``shortcut=A``), or True when absent."""
    if isinstance(e, A.Ref) and e.name not in env:
        return e.name
    return evaluate(e, env) if e is not None else True


def _name_loc(name: str, loc: SourceLoc) -> SourceLoc:
    """Where ``name=`` of a keyword argument is written (its value is at ``loc``)."""
    before = loc.src.line(loc.line)[:loc.col - 1]
    m = re.search(rf"\b{re.escape(name)}\s*=\s*$", before)
    return SourceLoc(loc.src, loc.line, m.start() + 1, m.start() + 1 + len(name)) if m else loc
