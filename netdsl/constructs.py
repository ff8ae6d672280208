"""The constructs ``concat {…}``, ``residual {…}``, ``scale {…}``, ``dense {…}``, ``aux {…}``.

One table, ``CONSTRUCTS``: each entry is a function that expands the construct's bodies with
``Expander.body`` and joins them with nodes, plus what the size estimate needs to know about
it (how many join nodes it adds). A new construct is one ``@construct`` function here (and a
grammar change only if its syntax is new: ``kind { … }`` already parses for any kind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import ast as A
from . import ops
from .errors import NetdslError, did_you_mean, misplaced_else
from .evaluate import count, layer_args, word_value
from .ir import Shape
from .limits import MAX_DENSE_UNITS
from .naming import Scope

if TYPE_CHECKING:
    from .expand import Expander

Env = dict[str, Any]
Expand = Callable[["Expander", A.Construct, str, "Scope", Env, bool], str]


@dataclass(frozen=True)
class ConstructDef:
    """One construct: its expansion and the facts the parser's generic syntax leaves open."""

    name: str
    expand: Expand
    joins: int = 1  # nodes added besides its bodies' (the size estimate counts them)
    per_unit: bool = False  # plus one more join per unit after the first (dense's concats)
    branches: bool = False  # takes several bodies separated by '|'
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word -> its values
    follower: str | None = None  # the keyword of an optional second body: `shortcut { … }`


CONSTRUCTS: dict[str, ConstructDef] = {}  # keyword -> construct, in documentation order


def construct(name: str, **facts: Any) -> Callable[[Expand], Expand]:
    """Decorator: register an expansion function as the construct ``name { … }``."""

    def deco(f: Expand) -> Expand:
        CONSTRUCTS[name] = ConstructDef(name, f, **facts)
        return f

    return deco


def expand_construct(ex: Expander, c: A.Construct, x: str, scope: Scope, env: Env,
                     aux: bool) -> str:
    """Check a construct's shape against its table entry, then expand it."""
    kind = c.kind.lower()
    d = CONSTRUCTS.get(kind)
    if d is None and kind == "else":
        raise misplaced_else(c.loc)
    if d is None:
        raise NetdslError(f"unknown construct '{c.kind} {{…}}'", c.loc,
                          hint=did_you_mean(kind, list(CONSTRUCTS)) or
                          "constructs: " + ", ".join(CONSTRUCTS))
    if c.extra_kind is not None and c.extra_kind != d.follower:
        raise NetdslError(f"'{c.extra_kind} {{…}}' cannot follow '{c.kind} {{…}}'",
                          c.extra_loc, hint="only 'residual { … } shortcut { … }' pairs")
    if not d.branches and len(c.branches) > 1:
        raise NetdslError(f"'{kind}' takes one body, got {len(c.branches)} branches", c.loc,
                          hint="'|' separates branches of concat only")
    if not d.options and c.words:
        raise NetdslError(f"'{kind}' takes no options", c.words[0].loc)
    return d.expand(ex, c, x, scope, env, aux)


@construct("concat", branches=True, options={"flat": ()})
def _concat(ex: Expander, c: A.Construct, x: str, scope: Scope, env: Env, aux: bool) -> str:
    # Each branch is a scope branch1, branch2, … (torchvision's GoogLeNet); `concat flat`
    # names the branches' layers in the enclosing scope (Inception-v3's Mixed_5b.branch1x1,
    # SqueezeNet's expand1x1), where they are numbered on across the branches.
    flat = False
    for w in ex.defaults.get("concat", ()) + c.words:
        if w.kind != "flag" or w.key != "flat":
            raise NetdslError("concat's one option is 'flat'", w.loc,
                              hint="'concat flat { … }' names the branches' layers in the "
                                   "enclosing scope instead of branch1, branch2, …")
        flat = True
    outs = []
    for i, br in enumerate(c.branches, 1):
        sub = (Scope(scope.prefix, scope.counters, sequential=scope.sequential,
                     numbered=scope.numbered) if flat else ex.names.child(scope, f"branch{i}"))
        outs.append(ex.body(br, x, sub, env, aux))
    if len(outs) == 1:
        raise NetdslError("concat needs two or more branches", c.loc,
                          hint="separate branches with '|'")
    labels = tuple(f"branch {i}" for i in range(1, len(outs) + 1))
    return ex.node(ops.OPS["concat"], ops.NoAttrs(), tuple(outs), c.loc, scope, aux=aux,
                   labels=labels)


RESIDUAL_OPTIONS = {"shortcut": ("a", "b", "c"), "projection": ("convbn", "conv")}


@construct("residual", options=RESIDUAL_OPTIONS, follower="shortcut")
def _residual(ex: Expander, c: A.Construct, x: str, scope: Scope, env: Env, aux: bool) -> str:
    opts = {"shortcut": "b", "projection": "convbn"}
    for w in ex.defaults.get("residual", ()) + c.words:
        if isinstance(w, A.Num) or w.kind != "keyval" or w.key not in RESIDUAL_OPTIONS:
            raise NetdslError("residual options are shortcut=A|B|C and "
                              "projection=convbn|conv", w.loc)
        value = str(word_value(w.value, env)).lower()
        if value not in RESIDUAL_OPTIONS[str(w.key)]:
            raise NetdslError(f"invalid {w.key}={value}", w.loc,
                              hint=f"{w.key} is one of " +
                              ", ".join(RESIDUAL_OPTIONS[str(w.key)]))
        opts[str(w.key)] = value
    y = ex.body(c.branches[0], x, scope, env, aux)
    xs, ys = ex.shape(x), ex.shape(y)
    if c.extra_kind:
        sc = ex.body(c.extra[0], x, ex.names.child(scope, "downsample"), env, aux)
    elif (xs == ys and opts["shortcut"] != "c") or xs is None or ys is None:
        sc = x
    elif not xs.layout.is_map or ys.layout is not xs.layout:
        raise NetdslError(f"residual body changes the shape {xs} -> {ys}",
                          c.loc, hint="no projection exists between these shapes")
    else:
        sc = _project(ex, c, x, xs, ys, opts, scope, aux)
    return ex.node(ops.OPS["add"], ops.NoAttrs(), (y, sc), c.loc, scope, aux=aux,
                   labels=("the residual body", "the shortcut"))


def _project(ex: Expander, c: A.Construct, x: str, xs: Shape, ys: Shape, opts: dict[str, str],
             scope: Scope, aux: bool) -> str:
    """The shortcut that maps the input's shape to the body's: option A's padding, or a
    1×1 convolution (with BN) in ``downsample``, as torchvision names it."""
    stride = max(1, -(-xs.spatial[0] // ys.spatial[0]))
    if any(-(-nx // stride) != ny for nx, ny in zip(xs.spatial, ys.spatial, strict=True)):
        raise NetdslError(f"residual shortcut cannot map {xs} to {ys}",
                          c.loc, hint="the body may only change channels and divide the "
                                      "spatial size by a whole stride")
    if opts["shortcut"] == "a":
        if ys.channels < xs.channels:
            raise NetdslError(f"option A shortcut cannot reduce {xs.channels} channels to "
                              f"{ys.channels}", c.loc, hint="use shortcut=B (projection)")
        op = ops.OPS["padshortcut"]
        attrs = ops.structure.PadShortcutAttrs(ys.channels, (stride,))
        return ex.node(op, attrs, (x,), c.loc, scope, name="shortcut", aux=aux)
    sub = ex.names.child(scope, "downsample")
    conv = ops.OPS["conv"]
    words = ex.defaults.get("conv", ())
    args = layer_args(conv, A.LayerAst("conv1", c.loc, None, None, words), "1", {})
    args.channels, args.stride, args.options["pad"] = ys.channels, stride, 0
    args.options.pop("groups", None)
    if opts["projection"] == "convbn":  # a bias before BN is redundant
        args.options["bias"] = False
    out = ex.node(conv, conv.build(args, c.loc), (x,), c.loc, sub, name="0", aux=aux)
    if opts["projection"] == "convbn":
        bn = ops.OPS["bn"]
        out = ex.node(bn, bn.build(ops.LayerArgs("bn", None), c.loc), (out,), c.loc, sub,
                      name="1", aux=aux)
    return out


def _fresh(ex: Expander, scope: Scope) -> bool:
    """Whether ``scope`` was opened for the construct alone (a named statement, a block call
    whose body starts with it, a position of a sequence): nothing is named in it yet."""
    return bool(scope.prefix) and not scope.counters and set(scope.bound) <= {"input"} and \
        not any(s != scope.prefix and s.startswith(scope.prefix) for s in ex.names.scopes)


@construct("scale")
def _scale(ex: Expander, c: A.Construct, x: str, scope: Scope, env: Env, aux: bool) -> str:
    # A gate in a scope of its own is named by it, as torchvision's SqueezeExcitation module
    # holds fc1 and fc2 (`block.2.fc1`); beside other layers it opens `se`.
    sub = scope if _fresh(ex, scope) else ex.names.child(scope, "se")
    gate = ex.body(c.branches[0], x, sub, env, aux)
    return ex.node(ops.OPS["mul"], ops.NoAttrs(), (x, gate), c.loc, scope, aux=aux,
                   labels=("the scaled input", "the gate"))


@construct("dense", per_unit=True)
def _dense(ex: Expander, c: A.Construct, x: str, scope: Scope, env: Env, aux: bool) -> str:
    feats = [x]
    cat = ops.OPS["concat"]
    counts = []
    for st in c.branches[0]:
        if st.inputs is not None or st.target is not None:
            raise NetdslError("dense units take no names or 'from'", st.loc)
        counts.append(count(st.repeat, env) if st.repeat is not None else 1)
    if sum(counts) > MAX_DENSE_UNITS:  # unit k reads all k-1 before it: quadratic cost
        raise NetdslError(f"dense block has {sum(counts):,} units, more than the limit of "
                          f"{MAX_DENSE_UNITS}", c.loc,
                          hint="each unit reads every earlier unit; split it into several "
                               "dense blocks with transitions between them")
    for st, n in zip(c.branches[0], counts, strict=True):
        for _ in range(n):
            labels = ("the block's input", *(f"unit {k}" for k in range(1, len(feats))))
            inp = feats[0] if len(feats) == 1 else ex.node(
                cat, ops.NoAttrs(), tuple(feats), st.loc, scope, aux=aux, labels=labels)
            feats.append(ex.unit(st.unit, (inp,), scope, scope, None, env, aux))
    if len(feats) == 1:
        raise NetdslError("dense block has no units", c.loc)
    labels = ("the block's input", *(f"unit {k}" for k in range(1, len(feats))))
    return ex.node(cat, ops.NoAttrs(), tuple(feats), c.loc, scope, aux=aux, labels=labels)


@construct("aux", joins=0)
def _aux(ex: Expander, c: A.Construct, x: str, scope: Scope, env: Env, aux: bool) -> str:
    # A head that opens a named scope (`aux1 = aux_head()`, whose body is `aux {…}`) is named
    # by it: aux1.fc1, as torchvision names GoogLeNet's heads, not aux1.aux1.fc1.
    sub = scope if _fresh(ex, scope) else ex.names.child(scope, "aux", numbered=True)
    out = ex.body(c.branches[0], x, sub, env, True)
    if out == x:
        raise NetdslError("aux head is empty", c.loc)
    ex.graph.outputs.append(out)
    return x
