"""Syntax tree -> NetGraph: evaluate parameters, expand blocks and repetition, infer shapes.

Shapes are inferred as each node is added (every input exists by then), so a failing layer
is reported at its own line and `residual` knows whether its shortcut needs a projection.

Errors do not stop the build at the first one: a statement that fails is recorded and its
output becomes a *poisoned* node of unknown shape. Later statements are still checked for
everything that does not depend on shapes (unknown names, invalid values, block arguments),
while shape checks that would only repeat the first error are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import ast as A
from . import ops
from .constructs import CONSTRUCTS, RESIDUAL_OPTIONS, Constructs  # noqa: F401
from .errors import (
    NetdslCascadeError,
    NetdslError,
    NetdslLimitError,
    NetdslShapeError,
    NetdslWarning,
    SourceLoc,
    did_you_mean,
)
from .header import Header, evaluate, read_header
from .ir import INPUT, Layer, NetGraph
from .limits import (  # noqa: F401  (re-exported: the limits are part of this module's contract)
    MAX_DEFAULT_WORDS,
    MAX_ELEMENTS,
    MAX_INCLUDE_DEPTH,
    MAX_LAYERS,
    MAX_NESTING,
    MAX_PARAMS,
    LayerEstimate,
)
from .ops.structure import InputAttrs
from .passes.unused import unused_outputs
from .recovery import MAX_ERRORS, collect

POISON = "<error>"  # op of the placeholder node standing for a statement that failed


@dataclass
class Scope:
    """A naming scope (``layer3.2.``) with its auto-name counters and bound names."""

    prefix: str
    counters: dict[str, int] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)  # `name = …` -> output node
    # A named group numbers its unnamed block calls 0, 1, … like nn.Sequential, so that
    # `layer2 = (bottleneck(128, 2); bottleneck(128) ×3)` names layer2.0 … layer2.3.
    sequential: bool = False

    def child(self, name: str) -> Scope:
        return Scope(f"{self.prefix}{name}.")


class Builder(Constructs):
    """Expands one spec (with its includes) into a NetGraph; see ``build``."""

    def __init__(self, root: A.SpecFile, files: list[A.SpecFile], overrides: dict[str, Any]):
        self.root = root
        self.graph = NetGraph()
        self.warnings: list[NetdslWarning] = []
        self.errors: list[NetdslError] = []
        self.blocks: dict[str, A.BlockDef] = {}
        self.defaults: dict[str, tuple[A.Word, ...]] = {}
        self.stack: list[str] = []  # blocks being expanded, for recursion errors
        self.sites: list[A.Call] = []  # the calls that led to the current statement
        self.depth = 0  # nested bodies being expanded
        self.auto_acts: set[str] = set()
        self.scopes: set[str] = set()  # scope prefixes handed out by `fresh`
        self._warned: set[str] = set()
        self._failed: set[tuple[Any, ...]] = set()  # locations and messages already reported
        self._taken: dict[str, int] = {}  # last suffix given to a repeated name: no rescans
        for f in files:  # includes first, the root last: later definitions win
            for b in f.blocks:
                self.blocks[b.name] = b
            for d in f.defaults:
                words = self.defaults.get(d.op.lower(), ()) + d.words
                if len(words) > MAX_DEFAULT_WORDS:  # every layer of the type reads them all
                    raise NetdslError(f"more than {MAX_DEFAULT_WORDS} default words for "
                                      f"'{d.op}'", d.loc, hint="one 'default' line per option "
                                      "is enough: the last one wins")
                self.defaults[d.op.lower()] = words
        self.header: Header = read_header(root, overrides, self.errors)

    # ---- expressions ---------------------------------------------------------------------
    @staticmethod
    def eval(e: A.Expr, env: dict[str, Any]) -> Any:
        return evaluate(e, env)

    def _count(self, e: A.Expr, env: dict[str, Any], what: str = "repetition") -> int:
        n = self.eval(e, env)
        loc = _loc(e)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise NetdslError(f"{what} must be a whole number ≥ 1, got {n!r}", loc)
        if n > MAX_LAYERS:
            raise NetdslError(f"{what} {n:,} exceeds the limit of {MAX_LAYERS:,} layers", loc,
                              hint="netdsl refuses specs that expand past this size")
        return n

    # ---- errors ----------------------------------------------------------------------------
    def fail(self, e: NetdslError) -> None:
        """Record an error of one statement; stop when it is a limit or there are too many."""
        if isinstance(e, NetdslLimitError):
            raise e
        if isinstance(e, NetdslCascadeError):
            return
        if not e.notes and self.sites:
            e.notes = [f"in block '{c.block}', called at {c.loc}" for c in reversed(self.sites)]
        key = (e.loc.src.path, e.loc.line, e.loc.col) if e.loc else (e.path or "", 0, 0)
        # inside a block, one bad argument fails at every use of it: report the first
        same = (e.message, e.hint, *e.notes) if e.notes else key
        if key in self._failed or same in self._failed:
            return  # the same line failing again (a block called twice): one report
        self._failed.update((key, same))
        self.errors.append(e)
        if len(self.errors) > MAX_ERRORS:
            raise NetdslLimitError("too many errors")

    def poison(self, inputs: tuple[str, ...], loc: SourceLoc | None) -> str:
        """A placeholder of unknown shape for a statement that failed (see the module doc)."""
        name = f"{POISON}{len(self.graph)}"
        self.graph.add(Layer(name, POISON, inputs, None, loc, None))  # type: ignore[arg-type]
        return name

    # ---- nodes -----------------------------------------------------------------------------
    def node(self, op: ops.OpDef, attrs: Any, inputs: tuple[str, ...], loc: SourceLoc | None,
             scope: Scope, base: str | None = None, name: str | None = None,
             aux: bool = False, labels: tuple[str, ...] | None = None) -> str:
        """Add one layer (auto-named from ``base`` unless ``name``), inferring its shape.

        ``labels`` say what the inputs are (``branch 2``, ``the shortcut``) for messages about
        inputs that disagree; by default, the layers producing them.
        """
        if len(self.graph) >= MAX_LAYERS:
            raise NetdslLimitError(f"the network expands past {MAX_LAYERS:,} layers", loc,
                                   hint="netdsl refuses specs that expand past this size")
        full = self.unique(scope, name) if name else self.auto_name(scope, base or op.name)
        ins = tuple(self.graph[i].out for i in inputs)
        if op.arity is not None and len(ins) != op.arity:
            raise NetdslError(f"{op.name} takes {op.arity} input(s), got {len(ins)}", loc)
        if op.arity is None and len(ins) < 2:
            raise NetdslError(f"{op.name} takes two or more inputs, got {len(ins)}", loc,
                              hint="name the inputs with 'from a, b'")
        if any(s is None for s in ins):  # after an error upstream: shapes unknown, not checked
            self.graph.add(Layer(full, op.name, inputs, attrs, loc, None, aux))  # type: ignore[arg-type]
            return full
        op.check_layouts(ins, loc)
        try:
            out = op.infer(attrs, ins, loc)
        except NetdslShapeError as e:
            raise self._name_operands(e, inputs, labels) from None
        assert out.layout in (op.produces or {ins[0].layout}), (op.name, out)
        if out.numel > MAX_ELEMENTS:
            raise NetdslError(f"{op.name} output {out} has {out.numel:,} elements, more "
                              f"than the limit of {MAX_ELEMENTS:,} per tensor", loc,
                              hint="check the channel counts and the input size")
        params = op.params(attrs, ins)
        if params > MAX_PARAMS:
            raise NetdslError(f"{op.name} has {params:,} parameters, more than the limit of "
                              f"{MAX_PARAMS:,} per layer", loc,
                              hint=f"its input is {ins[0]}: is a pooling layer missing?")
        for w in op.warnings(attrs, ins, loc):
            key = f"{w.loc}: {w.message}"  # a block line warns once per distinct case
            if key not in self._warned:
                self._warned.add(key)
                self.warnings.append(w)
        self.graph.add(Layer(full, op.name, inputs, attrs, loc, out, aux))
        return full

    def _name_operands(self, e: NetdslShapeError, inputs: tuple[str, ...],
                       labels: tuple[str, ...] | None) -> NetdslError:
        i, j = e.operands

        def say(k: int) -> str:
            lay = self.graph[inputs[k]]
            what = labels[k] if labels else f"'{lay.name}'"
            where = f"{lay.name}, line {lay.loc.line}" if lay.loc else "the input"
            return what if labels is None else f"{what} ({where})"

        return NetdslError(f"{e.what}: {say(i)} gives {e.shapes[0]} but {say(j)} gives "
                           f"{e.shapes[1]}", e.loc, hint=e.hint)

    def auto_name(self, scope: Scope, base: str) -> str:
        key = f"#{scope.prefix}{base}"  # another Scope with this prefix may have numbered it on
        while True:
            k = scope.counters.get(base, 0) + 1
            if f"{scope.prefix}{base}{k}" in self.graph and k <= self._taken.get(key, 0):
                k = self._taken[key] + 1
            scope.counters[base] = k
            full = f"{scope.prefix}{base}{k}"
            if full not in self.graph:
                self._taken[key] = max(k, self._taken.get(key, 0))
                return full

    def unique(self, scope: Scope, name: str) -> str:
        full = f"{scope.prefix}{name}"
        key = f"={scope.prefix}{name}"
        k = self._taken.get(key, 1) if full in self.graph else 1  # names are never freed
        while full in self.graph:
            k += 1
            full = f"{scope.prefix}{name}{k}"
        self._taken[key] = k
        return full

    # ---- statements ------------------------------------------------------------------------
    def body(self, body: A.Body, x: str, scope: Scope, env: dict[str, Any], aux: bool) -> str:
        """Expand a sequence of statements; a failing statement is recorded, not fatal."""
        if self.depth >= MAX_NESTING:
            raise NetdslLimitError(f"groups, constructs and blocks nest more than {MAX_NESTING} "
                                   "deep", body[0].loc if body else None,
                                   hint="flatten the spec")
        scope.bound.setdefault(INPUT, x)
        self.depth += 1
        try:
            for st in body:
                if self.depth == 1:
                    self._check_size(st, env)
                try:
                    x = self.stmt(st, x, scope, env, aux)
                except NetdslError as e:
                    self.fail(e)
                    x = self.poison((x,), st.loc)
                    if st.target is not None:
                        scope.bound[st.target] = x
        finally:
            self.depth -= 1
        return x

    def _check_size(self, st: A.Stmt, env: dict[str, Any]) -> None:
        """Refuse a top-level statement whose expansion would pass MAX_LAYERS, before expanding."""
        est = LayerEstimate(self.blocks, self.bind, self._count, self.header.activation is not None)
        n, per = est.stmt(st, env)
        total = len(self.graph) + n * per
        if total <= MAX_LAYERS:
            return
        what = f"{n:,} × {per:,} = {n * per:,}" if n > 1 else f"{per:,}"
        msg = f"this statement expands to at least {what} layers"
        if n * per <= MAX_LAYERS:
            msg = f"the network reaches at least {total:,} layers with this statement"
        raise NetdslLimitError(f"{msg}, more than the limit of {MAX_LAYERS:,}", st.loc,
                               hint="netdsl refuses such specs before building them: lower the "
                                    "repetition counts")

    def stmt(self, st: A.Stmt, x: str, scope: Scope, env: dict[str, Any], aux: bool) -> str:
        labels = None
        if st.inputs is not None:
            srcs = []
            for n in st.inputs:
                if n not in scope.bound:
                    raise NetdslError(f"unknown input '{n}'", st.loc,
                                      hint=did_you_mean(n, list(scope.bound)) or
                                      f"bind it first with '{n} = …' earlier in this body")
                srcs.append(scope.bound[n])
            xs = tuple(srcs)
            labels = tuple(f"'{n}'" for n in st.inputs)
        else:
            xs = (x,)
        n = self._count(st.repeat, env) if st.repeat is not None else 1
        single = isinstance(st.unit, A.Chain) and len(st.unit.layers) == 1 and n == 1
        out = xs[0] if len(xs) == 1 else xs  # type: ignore[assignment]
        for i in range(n):
            if st.target is None or single:
                sub, name = scope, st.target
            else:
                sub, name = scope.child(st.target if n == 1 else f"{st.target}.{i}"), None
            out = self.unit(st.unit, xs if i == 0 else (out,), scope, sub, name, env, aux,
                            labels if i == 0 else None)
        if st.target is not None:
            scope.bound[st.target] = out  # rebinding is allowed: the later statement wins
        return out

    def unit(self, u: A.Unit, xs: tuple[str, ...], outer: Scope, scope: Scope,
             name: str | None, env: dict[str, Any], aux: bool,
             labels: tuple[str, ...] | None = None) -> str:
        match u:
            case A.Chain():
                return self.chain(u, xs, scope, name, env, aux, labels)
            case A.Group():
                inner = Scope(scope.prefix, scope.counters, sequential=scope is not outer)
                return self.body(u.body, self._one(xs, u.loc), inner, env, aux)
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
              env: dict[str, Any], aux: bool, labels: tuple[str, ...] | None = None) -> str:
        for k, lay in enumerate(c.layers):
            op, kernel = ops.lookup(lay.keyword)
            if op is None:
                raise self._unknown_layer(lay)
            attrs = op.build(self.layer_args(op, lay, kernel, env), lay.loc)
            out = self.node(op, attrs, xs, lay.loc, scope, name=name, aux=aux,
                            labels=labels if k == 0 else None)
            xs = (out,)
            explicit_next = k + 1 < len(c.layers)
            if op.takes_activation and self.header.activation and not explicit_next:
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
            hint = did_you_mean(c.block, list(self.blocks))
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
        local = self.bind(b, c, env)
        if scope is outer:  # unnamed call: a fresh scope named after the block
            scope = outer.child(self.auto_name_scope(outer, b.name))
        self.stack.append(b.name)
        self.sites.append(c)
        try:
            return self.body(b.body, x, scope, local, aux)
        finally:
            self.stack.pop()
            self.sites.pop()

    def bind(self, b: A.BlockDef, c: A.Call, env: dict[str, Any]) -> dict[str, Any]:
        """The environment of block ``b``'s body for call ``c`` made in ``env``."""
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
                raise NetdslError(f"parameter '{k}' of '{b.name}' is given twice", _loc(e),
                                  hint=_signature(b))
            given[k] = self.eval(e, env)
        for p, default in b.params:
            if p in given:
                local[p] = given[p]
            elif default is not None:
                local[p] = self.eval(default, local)
            else:
                raise NetdslError(f"block '{b.name}' needs its argument '{p}'", c.loc,
                                  hint=_signature(b))
        return local

    def fresh(self, scope: Scope, base: str, numbered: bool = False) -> Scope:
        """A child scope named ``base`` (``base2``, … when taken; ``base1``, … if numbered)."""
        k = 1
        name = f"{base}1" if numbered else base
        if f"{scope.prefix}{name}." in self.scopes:  # resume after the last one handed out
            k = self._taken.get(f".{scope.prefix}{base}", 1)
        while f"{scope.prefix}{name}." in self.scopes:
            k += 1
            name = f"{base}{k}"
        self._taken[f".{scope.prefix}{base}"] = k
        self.scopes.add(f"{scope.prefix}{name}.")
        return scope.child(name)

    def auto_name_scope(self, scope: Scope, base: str) -> str:
        key = "" if scope.sequential else base  # "": the sequential index of block calls
        k = scope.counters.get(key, 0) + 1
        scope.counters[key] = k
        return str(k - 1) if scope.sequential else f"{base}{k}"

    # ---- whole network ---------------------------------------------------------------------
    def run(self) -> NetGraph:
        """Build the graph; raise every recorded error together (in source order) if any."""
        h = self.header
        if not self.root.body and not self.root.settings and self.root.blocks:
            self.errors = [NetdslError(  # not a network: its blocks are checked where used
                "is a block library (no 'input' line, no layers), not a network",
                path=self.root.src.path, hint="check the specs that include it")]
        elif not self.root.body:
            self.errors.append(NetdslError(
                "the spec has no layers", path=self.root.src.path,
                hint="add layers after the header, e.g. 'conv3-64; FC-10'"))
        if h.input is not None and self.root.body:
            self.graph.add(Layer(INPUT, "input", (), InputAttrs(h.input), None, h.input))
            try:
                out = self.body(tuple(self.root.body), INPUT, Scope(""), dict(h.params), False)
                self.graph.outputs.insert(0, out)
            except NetdslLimitError as e:
                if e.loc is not None or e.path is not None:
                    self.errors.append(e)
        if self.errors:
            raise collect(self.errors, stopped=len(self.errors) > MAX_ERRORS)
        self._drop_head_activations()
        self.warnings.extend(unused_outputs(self.graph))
        return self.graph

    def _drop_head_activations(self) -> None:
        """`activation relu` follows hidden weight layers only: not those feeding an output."""
        outputs, self.graph.outputs = self.graph.outputs, []  # rewritten once, not per removal
        moved: dict[str, str] = {}
        for o in outputs:
            n = o
            while True:
                lay = self.graph[n]
                if n in self.auto_acts:
                    moved[n] = lay.inputs[0]
                    self.graph.remove_passthrough(n)
                    break
                if not ops.OPS[lay.op].transparent:
                    break
                n = lay.inputs[0]
        self.graph.outputs = [moved.get(o, o) for o in outputs]


def _signature(b: A.BlockDef) -> str:
    ps = ", ".join(p if d is None else f"{p}=…" for p, d in b.params)
    return f"{b.name}({ps}) is defined at line {b.loc.line} of {b.loc.src.path}"


def _loc(e: Any) -> SourceLoc:
    return e.loc
