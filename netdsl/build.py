"""Syntax tree -> NetGraph: evaluate parameters, expand blocks and repetition, infer shapes.

Shapes are inferred as each node is added (every input exists by then), so a failing layer
is reported at its own line and `residual` knows whether its shortcut needs a projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ast as A
from . import ops
from .errors import NetdslError, NetdslWarning, SourceLoc, did_you_mean
from .ir import INPUT, Layer, NetGraph, Shape

MAX_LAYERS = 100_000  # expanded nodes; larger specs are refused before they are built
MAX_ELEMENTS = 1 << 40  # elements of one activation tensor (per image)
MAX_PARAMS = 1 << 36  # parameters of one layer
MAX_INCLUDE_DEPTH = 32

CONSTRUCTS = ("concat", "residual", "scale", "dense", "aux")
RESIDUAL_OPTIONS = {"shortcut": ("a", "b", "c"), "projection": ("convbn", "conv")}
INITS = {"he": "he", "kaiming": "he", "glorot": "glorot", "xavier": "glorot"}


@dataclass
class Header:
    """The spec's header: name, input, parameters and global choices."""

    name: str = "network"
    title: str | None = None
    input: tuple[int, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    cite: str | None = None
    init: tuple[str, str] = ("he", "normal")
    activation: str | None = None


@dataclass
class Scope:
    """A naming scope (``layer3.2.``) with its auto-name counters and bound names."""

    prefix: str
    counters: dict[str, int] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)  # `name = …` -> output node

    def child(self, name: str) -> Scope:
        return Scope(f"{self.prefix}{name}.")


class Builder:
    """Expands one spec (with its includes) into a NetGraph; see ``build``."""

    def __init__(self, root: A.SpecFile, files: list[A.SpecFile], overrides: dict[str, Any]):
        self.root = root
        self.graph = NetGraph()
        self.warnings: list[NetdslWarning] = []
        self.header = Header()
        self.blocks: dict[str, A.BlockDef] = {}
        self.defaults: dict[str, tuple[A.Word, ...]] = {}
        self.stack: list[str] = []  # blocks being expanded, for recursion errors
        self.auto_acts: set[str] = set()
        self.scopes: set[str] = set()  # scope prefixes handed out by `fresh`
        self._warned: set[str] = set()
        for f in files:  # includes first, the root last: later definitions win
            for b in f.blocks:
                self.blocks[b.name] = b
            for d in f.defaults:
                self.defaults[d.op.lower()] = self.defaults.get(d.op.lower(), ()) + d.words
        self._read_header(root, overrides)

    # ---- header --------------------------------------------------------------------------
    def _read_header(self, spec: A.SpecFile, overrides: dict[str, Any]) -> None:
        h = self.header
        h.name = Path(spec.src.path).stem if spec.src.path.endswith(".net") else "network"
        seen: dict[str, SourceLoc] = {}
        for s in spec.settings:
            if s.key in seen and s.key != "param":
                raise NetdslError(f"'{s.key}' is given twice (first at line {seen[s.key].line})",
                                  s.loc, hint="keep one")
            seen[s.key] = s.loc
            if s.key == "network":
                h.name = str(s.values[0])
                h.title = str(s.values[1]) if len(s.values) > 1 else None
            elif s.key == "input":
                dims = tuple(int(v) for v in s.values)  # type: ignore[call-overload]
                if any(d < 1 for d in dims) or len(dims) not in (1, 3):
                    raise NetdslError(f"input must be C×H×W or a feature count, got "
                                      f"{'×'.join(map(str, dims))}", s.loc,
                                      hint="e.g. input 3x224x224")
                if math.prod(dims) > MAX_ELEMENTS or any(d >= ops.MAX_DIM for d in dims):
                    raise NetdslError("input is absurdly large", s.loc,
                                      hint=f"at most {MAX_ELEMENTS:,} elements")
                h.input = dims
            elif s.key == "param":
                name, expr = s.values
                h.params[str(name)] = overrides.get(str(name), self.eval(expr, h.params))
            elif s.key == "cite":
                h.cite = str(s.values[0])
            elif s.key == "init":
                scheme = INITS.get(str(s.values[0]))
                dist = str(s.values[1]) if len(s.values) > 1 else "normal"
                if scheme is None or dist not in ("normal", "uniform"):
                    raise NetdslError(f"unknown init '{' '.join(map(str, s.values))}'", s.loc,
                                      hint="write init he|glorot normal|uniform")
                h.init = (scheme, dist)
            elif s.key == "activation":
                op, _ = ops.lookup(str(s.values[0]))
                if op is None or not op.is_activation:
                    acts = [o.name for o in ops.OPS.values() if o.is_activation]
                    raise NetdslError(f"unknown activation '{s.values[0]}'", s.loc,
                                      hint=did_you_mean(str(s.values[0]), acts)
                                      or "one of " + ", ".join(acts))
                h.activation = op.name
        unknown = set(overrides) - set(h.params)
        if unknown:
            raise NetdslError(f"no param '{sorted(unknown)[0]}' in {spec.src.path}",
                              path=spec.src.path,
                              hint="params: " + (", ".join(h.params) or "none"))
        if h.input is None:
            loc = SourceLoc(spec.src, 1, 1)
            raise NetdslError("the spec has no 'input' line", loc,
                              hint="add e.g. 'input 3x224x224' (C×H×W) to the header")

    # ---- expressions ---------------------------------------------------------------------
    def eval(self, e: A.Expr, env: dict[str, Any]) -> Any:
        match e:
            case A.Num(value=v):
                return v
            case A.Ref(name=n, loc=loc):
                if n in env:
                    return env[n]
                raise NetdslError(f"unknown name '{n}'", loc,
                                  hint=did_you_mean(n, env) or
                                  (f"names here: {', '.join(sorted(env))}" if env else
                                   "declare it with 'param' or as a block parameter"))
            case A.Neg(operand=x):
                return -self.eval(x, env)
            case A.BinOp(op=op, left=l, right=r, loc=loc):
                a, b = self.eval(l, env), self.eval(r, env)
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in (a, b)):
                    raise NetdslError(f"'{op}' needs numbers, got {a!r} and {b!r}", loc)
                if op in "/%" and b == 0:
                    raise NetdslError("division by zero", loc)
                v = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                     "/": lambda: a // b if isinstance(a, int) and isinstance(b, int) else a / b,
                     "%": lambda: a % b}[op]()
                if isinstance(v, int) and abs(v) >= 1 << 62:
                    raise NetdslError("arithmetic result is absurdly large", loc)
                return v
        raise AssertionError(e)

    def _count(self, e: A.Expr, env: dict[str, Any], what: str) -> int:
        n = self.eval(e, env)
        loc = _loc(e)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise NetdslError(f"{what} must be a whole number ≥ 1, got {n!r}", loc)
        if n > MAX_LAYERS:
            raise NetdslError(f"{what} {n:,} exceeds the limit of {MAX_LAYERS:,} layers", loc,
                              hint="netdsl refuses specs that expand past this size")
        return n

    # ---- nodes -----------------------------------------------------------------------------
    def node(self, op: ops.OpDef, attrs: Any, inputs: tuple[str, ...], loc: SourceLoc | None,
             scope: Scope, base: str | None = None, name: str | None = None,
             aux: bool = False) -> str:
        """Add one layer (auto-named from ``base`` unless ``name``), inferring its shape."""
        if len(self.graph) >= MAX_LAYERS:
            raise NetdslError(f"the network expands past {MAX_LAYERS:,} layers", loc,
                              hint="netdsl refuses specs that expand past this size")
        full = self.unique(scope, name) if name else self.auto_name(scope, base or op.name)
        ins = tuple(self.graph[i].out for i in inputs)
        if op.arity is not None and len(ins) != op.arity:
            raise NetdslError(f"{op.name} takes {op.arity} input(s), got {len(ins)}", loc)
        if op.arity is None and len(ins) < 2:
            raise NetdslError(f"{op.name} takes two or more inputs, got {len(ins)}", loc,
                              hint="name the inputs with 'from a, b'")
        out = op.infer(attrs, ins, loc)
        elements = math.prod(int(d) for d in out[1:])
        if elements > MAX_ELEMENTS or op.params(attrs, ins) > MAX_PARAMS:
            raise NetdslError(f"{op.name} output {'×'.join(map(str, out[1:]))} is absurdly large",
                              loc, hint=f"limits: {MAX_ELEMENTS:,} elements per tensor, "
                                        f"{MAX_PARAMS:,} parameters per layer")
        for w in op.warnings(attrs, ins, loc):
            if w.render() not in self._warned:  # a block line warns once per distinct case
                self._warned.add(w.render())
                self.warnings.append(w)
        self.graph.add(Layer(full, op.name, inputs, attrs, loc, out, aux))
        return full

    def auto_name(self, scope: Scope, base: str) -> str:
        while True:
            k = scope.counters.get(base, 0) + 1
            scope.counters[base] = k
            full = f"{scope.prefix}{base}{k}"
            if full not in self.graph:
                return full

    def unique(self, scope: Scope, name: str) -> str:
        full = f"{scope.prefix}{name}"
        k = 1
        while full in self.graph:
            k += 1
            full = f"{scope.prefix}{name}{k}"
        return full

    # ---- statements ------------------------------------------------------------------------
    def body(self, body: A.Body, x: str, scope: Scope, env: dict[str, Any], aux: bool) -> str:
        scope.bound.setdefault(INPUT, x)
        for st in body:
            x = self.stmt(st, x, scope, env, aux)
        return x

    def stmt(self, st: A.Stmt, x: str, scope: Scope, env: dict[str, Any], aux: bool) -> str:
        if st.inputs is not None:
            srcs = []
            for n in st.inputs:
                if n not in scope.bound:
                    raise NetdslError(f"unknown input '{n}'", st.loc,
                                      hint=did_you_mean(n, scope.bound) or
                                      "bind it first with 'name = …' in this body")
                srcs.append(scope.bound[n])
            xs = tuple(srcs)
        else:
            xs = (x,)
        n = self._count(st.repeat, env, "repetition") if st.repeat is not None else 1
        single = isinstance(st.unit, A.Chain) and len(st.unit.layers) == 1 and n == 1
        out = xs[0] if len(xs) == 1 else xs  # type: ignore[assignment]
        for i in range(n):
            if st.target is None or single:
                sub, name = scope, st.target
            else:
                sub, name = scope.child(st.target if n == 1 else f"{st.target}.{i}"), None
            out = self.unit(st.unit, xs if i == 0 else (out,), scope, sub, name, env, aux)
        if st.target is not None:
            if st.target in scope.bound and st.target != INPUT:
                pass  # rebinding a name is allowed: the later statement wins, as in Python
            scope.bound[st.target] = out
        return out

    def unit(self, u: A.Unit, xs: tuple[str, ...], outer: Scope, scope: Scope,
             name: str | None, env: dict[str, Any], aux: bool) -> str:
        match u:
            case A.Chain():
                return self.chain(u, xs, scope, name, env, aux)
            case A.Group():
                return self.body(u.body, self._one(xs, u.loc), Scope(scope.prefix, scope.counters),
                                 env, aux)
            case A.Call():
                return self.call(u, self._one(xs, u.loc), outer, scope, env, aux)
            case A.Construct():
                return self.construct(u, self._one(xs, u.loc), scope, env, aux)
        raise AssertionError(u)

    def _one(self, xs: tuple[str, ...], loc: SourceLoc) -> str:
        if len(xs) != 1:
            raise NetdslError(f"this takes one input, got {len(xs)}", loc,
                              hint="only layers like add or concat take several inputs")
        return xs[0]

    def chain(self, c: A.Chain, xs: tuple[str, ...], scope: Scope, name: str | None,
              env: dict[str, Any], aux: bool) -> str:
        for k, lay in enumerate(c.layers):
            op, kernel = ops.lookup(lay.keyword)
            if op is None:
                raise self._unknown_layer(lay)
            attrs = op.build(self.layer_args(op, lay, kernel, env), lay.loc)
            out = self.node(op, attrs, xs, lay.loc, scope, name=name, aux=aux)
            xs = (out,)
            explicit_next = k + 1 < len(c.layers)
            if op.weight_layer and self.header.activation and not explicit_next:
                act = ops.OPS[self.header.activation]
                out = self.node(act, act.Attrs(), xs, lay.loc, scope, aux=aux)
                self.auto_acts.add(out)
                xs = (out,)
        return xs[0]

    def _unknown_layer(self, lay: A.LayerAst) -> NetdslError:
        base, _ = ops.split_keyword(lay.keyword)
        names = {k: op.name for k, op in ops.REGISTRY.items()}
        names.update({b: f"{b}(…)" for b in self.blocks})
        names.update({c: f"{c} {{…}}" for c in CONSTRUCTS})
        hint = did_you_mean(base, names) or did_you_mean(lay.keyword, names)
        if lay.keyword in self.blocks or base in self.blocks:
            hint = f"'{lay.keyword}' is a block: call it with parentheses, {lay.keyword}(…)"
        elif ops.REGISTRY.get(base) and ops.REGISTRY[base].kernel_field is None:
            hint = f"{base} takes no kernel size in its name"
        return NetdslError(f"unknown layer '{lay.keyword}'", lay.loc,
                           hint=hint or "known layers: " + ", ".join(sorted(ops.OPS)))

    def layer_args(self, op: ops.OpDef, lay: A.LayerAst, kernel: str | None,
                   env: dict[str, Any]) -> ops.LayerArgs:
        args = ops.LayerArgs(lay.keyword, kernel)
        if lay.channels is not None:
            args.channels = self.eval(lay.channels, env)
        if lay.stride is not None:
            args.stride = self.eval(lay.stride, env)
        words = self.defaults.get(op.name, ()) + lay.words
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
                args.options[str(w.key)] = self._word_value(w.value, env)
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

    def _word_value(self, e: A.Expr | None, env: dict[str, Any]) -> Any:
        if isinstance(e, A.Ref) and e.name not in env:
            return e.name  # a bare word such as shortcut=A
        return self.eval(e, env) if e is not None else True

    # ---- blocks ----------------------------------------------------------------------------
    def call(self, c: A.Call, x: str, outer: Scope, scope: Scope, env: dict[str, Any],
             aux: bool) -> str:
        b = self.blocks.get(c.block)
        if b is None:
            op, _ = ops.lookup(c.block)
            hint = did_you_mean(c.block, self.blocks)
            if op is not None:
                hint = f"'{c.block}' is a layer, not a block: write it without parentheses"
            raise NetdslError(f"unknown block '{c.block}'", c.loc,
                              hint=hint or ("blocks: " + ", ".join(sorted(self.blocks))
                                            if self.blocks else "define it with 'block "
                                            f"{c.block}(…) {{ … }}' or include a library"))
        if c.block in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(c.block):], c.block])
            raise NetdslError(f"block '{c.block}' calls itself ({chain})", c.loc,
                              hint="blocks cannot be recursive; repeat with ×N instead")
        names = [p for p, _ in b.params]
        if len(c.args) > len(names):
            raise NetdslError(f"block '{b.name}' takes {len(names)} argument(s), got "
                              f"{len(c.args)}", c.loc, hint=_signature(b))
        local = dict(self.header.params)
        given: dict[str, Any] = {}
        for p, e in zip(names, c.args, strict=False):
            given[p] = self.eval(e, env)
        for k, e in c.kwargs:
            if k not in names:
                raise NetdslError(f"block '{b.name}' has no parameter '{k}'", _loc(e),
                                  hint=did_you_mean(k, names) or _signature(b))
            if k in given:
                raise NetdslError(f"parameter '{k}' of '{b.name}' is given twice", _loc(e))
            given[k] = self.eval(e, env)
        for p, default in b.params:
            if p in given:
                local[p] = given[p]
            elif default is not None:
                local[p] = self.eval(default, local)
            else:
                raise NetdslError(f"block '{b.name}' needs its argument '{p}'", c.loc,
                                  hint=_signature(b))
        if scope is outer:  # unnamed call: a fresh scope named after the block
            scope = outer.child(self.auto_name_scope(outer, b.name))
        self.stack.append(b.name)
        try:
            return self.body(b.body, x, scope, local, aux)
        finally:
            self.stack.pop()

    def fresh(self, scope: Scope, base: str, numbered: bool = False) -> Scope:
        """A child scope named ``base`` (``base2``, … when taken; ``base1``, … if numbered)."""
        k = 1
        name = f"{base}1" if numbered else base
        while f"{scope.prefix}{name}." in self.scopes:
            k += 1
            name = f"{base}{k}"
        self.scopes.add(f"{scope.prefix}{name}.")
        return scope.child(name)

    def auto_name_scope(self, scope: Scope, base: str) -> str:
        k = scope.counters.get(base, 0) + 1
        scope.counters[base] = k
        return f"{base}{k}"

    # ---- constructs ------------------------------------------------------------------------
    def construct(self, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
                  aux: bool) -> str:
        kind = c.kind.lower()
        if kind not in CONSTRUCTS:
            raise NetdslError(f"unknown construct '{c.kind} {{…}}'", c.loc,
                              hint=did_you_mean(kind, CONSTRUCTS) or
                              "constructs: " + ", ".join(CONSTRUCTS))
        if c.extra_kind is not None and (kind != "residual" or c.extra_kind != "shortcut"):
            raise NetdslError(f"'{c.extra_kind} {{…}}' cannot follow '{c.kind} {{…}}'",
                              c.extra_loc, hint="only 'residual { … } shortcut { … }' pairs")
        if kind != "concat" and len(c.branches) > 1:
            raise NetdslError(f"'{kind}' takes one body, got {len(c.branches)} branches", c.loc,
                              hint="'|' separates branches of concat only")
        if kind != "residual" and c.words:
            raise NetdslError(f"'{kind}' takes no options", c.words[0].loc)
        return getattr(self, f"_{kind}")(c, x, scope, env, aux)

    def _concat(self, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
                aux: bool) -> str:
        outs = []
        for i, br in enumerate(c.branches, 1):
            outs.append(self.body(br, x, self.fresh(scope, f"branch{i}"), env, aux))
        if len(outs) == 1:
            raise NetdslError("concat needs two or more branches", c.loc,
                              hint="separate branches with '|'")
        return self.node(ops.OPS["concat"], ops.NoAttrs(), tuple(outs), c.loc, scope, aux=aux)

    def _residual(self, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
                  aux: bool) -> str:
        opts = {"shortcut": "b", "projection": "convbn"}
        for w in self.defaults.get("residual", ()) + c.words:
            if isinstance(w, A.Num) or w.kind != "keyval" or w.key not in RESIDUAL_OPTIONS:
                raise NetdslError("residual options are shortcut=A|B|C and "
                                  "projection=convbn|conv", w.loc)
            value = str(self._word_value(w.value, env)).lower()
            if value not in RESIDUAL_OPTIONS[str(w.key)]:
                raise NetdslError(f"invalid {w.key}={value}", w.loc,
                                  hint=f"{w.key} is one of " +
                                  ", ".join(RESIDUAL_OPTIONS[str(w.key)]))
            opts[str(w.key)] = value
        y = self.body(c.branches[0], x, scope, env, aux)
        xs, ys = self.graph[x].out, self.graph[y].out
        if c.extra_kind:
            sc = self.body(c.extra[0], x, self.fresh(scope, "downsample"), env, aux)
        elif xs == ys and opts["shortcut"] != "c":
            sc = x
        elif len(xs) != 4 or len(ys) != 4:
            raise NetdslError(f"residual body changes the shape {_dims(xs)} -> {_dims(ys)}",
                              c.loc, hint="no projection exists between these shapes")
        else:
            sc = self._project(c, x, xs, ys, opts, scope, aux)
        return self.node(ops.OPS["add"], ops.NoAttrs(), (y, sc), c.loc, scope, aux=aux)

    def _project(self, c: A.Construct, x: str, xs: Shape, ys: Shape, opts: dict[str, str],
                 scope: Scope, aux: bool) -> str:
        hx, hy = int(xs[2]), int(ys[2])
        stride = max(1, -(-hx // hy))
        if -(-hx // stride) != hy or -(-int(xs[3]) // stride) != int(ys[3]):
            raise NetdslError(f"residual shortcut cannot map {_dims(xs)} to {_dims(ys)}",
                              c.loc, hint="the body may only change channels and divide the "
                                          "spatial size by a whole stride")
        if opts["shortcut"] == "a":
            if int(ys[1]) < int(xs[1]):
                raise NetdslError(f"option A shortcut cannot reduce {xs[1]} channels to "
                                  f"{ys[1]}", c.loc, hint="use shortcut=B (projection)")
            op = ops.OPS["padshortcut"]
            attrs = ops.structure.PadShortcutAttrs(int(ys[1]), (stride, stride))
            return self.node(op, attrs, (x,), c.loc, scope, name="shortcut", aux=aux)
        sub = self.fresh(scope, "downsample")
        conv = ops.OPS["conv"]
        words = self.defaults.get("conv", ())
        args = self.layer_args(conv, A.LayerAst("conv1", c.loc, None, None, words), "1", {})
        args.channels, args.stride, args.options["pad"] = int(ys[1]), stride, 0
        args.options.pop("groups", None)
        if opts["projection"] == "convbn":  # a bias before BN is redundant
            args.options["bias"] = False
        out = self.node(conv, conv.build(args, c.loc), (x,), c.loc, sub, name="0", aux=aux)
        if opts["projection"] == "convbn":
            bn = ops.OPS["bn"]
            out = self.node(bn, bn.build(ops.LayerArgs("bn", None), c.loc), (out,), c.loc, sub,
                            name="1", aux=aux)
        return out

    def _scale(self, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
               aux: bool) -> str:
        gate = self.body(c.branches[0], x, self.fresh(scope, "se"), env, aux)
        return self.node(ops.OPS["mul"], ops.NoAttrs(), (x, gate), c.loc, scope, aux=aux)

    def _dense(self, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
               aux: bool) -> str:
        feats = [x]
        cat = ops.OPS["concat"]
        for st in c.branches[0]:
            if st.inputs is not None or st.target is not None:
                raise NetdslError("dense units take no names or 'from'", st.loc)
            n = self._count(st.repeat, env, "repetition") if st.repeat is not None else 1
            for _ in range(n):
                inp = feats[0] if len(feats) == 1 else self.node(
                    cat, ops.NoAttrs(), tuple(feats), st.loc, scope, aux=aux)
                feats.append(self.unit(st.unit, (inp,), scope, scope, None, env, aux))
        if len(feats) == 1:
            raise NetdslError("dense block has no units", c.loc)
        return self.node(cat, ops.NoAttrs(), tuple(feats), c.loc, scope, aux=aux)

    def _aux(self, c: A.Construct, x: str, scope: Scope, env: dict[str, Any], aux: bool) -> str:
        sub = self.fresh(scope, "aux", numbered=True)
        out = self.body(c.branches[0], x, sub, env, True)
        if out == x:
            raise NetdslError("aux head is empty", c.loc)
        self.graph.outputs.append(out)
        return x

    # ---- whole network ---------------------------------------------------------------------
    def run(self) -> NetGraph:
        h = self.header
        assert h.input is not None
        shape: Shape = ("N", *h.input)
        self.graph.add(Layer(INPUT, "input", (), None, None, shape))
        top = Scope("")
        if not self.root.body:
            raise NetdslError("the spec has no layers", SourceLoc(self.root.src, 1, 1),
                              hint="add layers after the header, e.g. 'conv3-64; FC-10'")
        out = self.body(tuple(self.root.body), INPUT, top, dict(h.params), False)
        self.graph.outputs.insert(0, out)
        self._drop_head_activations()
        return self.graph

    def _drop_head_activations(self) -> None:
        """`activation relu` follows hidden weight layers only: not those feeding an output."""
        for o in list(self.graph.outputs):
            n = o
            while True:
                lay = self.graph[n]
                if n in self.auto_acts:
                    self.graph.remove_passthrough(n)
                    break
                if lay.op == "input" or not ops.OPS[lay.op].transparent:
                    break
                n = lay.inputs[0]


def _signature(b: A.BlockDef) -> str:
    ps = ", ".join(p if d is None else f"{p}=…" for p, d in b.params)
    return f"{b.name}({ps}) is defined at line {b.loc.line} of {b.loc.src.path}"


def _dims(s: Shape) -> str:
    return "×".join(str(d) for d in s[1:])


def _loc(e: Any) -> SourceLoc:
    return e.loc
