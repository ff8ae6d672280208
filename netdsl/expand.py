"""Syntax tree -> NetGraph: expand blocks, constructs and repetition, inferring shapes.

Shapes are inferred as each node is added (every input exists by then), so a failing layer
is reported at its own line and `residual` knows whether its shortcut needs a projection.
Values come from ``evaluate``, names from ``naming``, constructs from the ``constructs`` table;
before a top-level statement is expanded, ``estimate`` refuses it if it would be too large.

Errors do not stop the expansion at the first one: a statement that fails is recorded and its
output becomes a placeholder of unknown shape, kept apart from the graph (``unknown``) with
every layer that reads it, so each graph node has a shape. Later statements are still checked
for everything that does not depend on shapes (unknown names, invalid values, block
arguments), while shape checks that would only repeat the first error are skipped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import ast as A
from . import ops
from .constructs import CONSTRUCTS, expand_construct
from .errors import (
    NetdslCascadeError,
    NetdslError,
    NetdslLimitError,
    NetdslShapeError,
    NetdslWarning,
    SourceLoc,
    did_you_mean,
    misplaced_else,
)
from .estimate import LayerEstimate
from .evaluate import bind, copy_env, count, layer_args, truth
from .header import Header, read_header
from .ir import INPUT, Layer, NetGraph
from .limits import (
    MAX_DEFAULT_WORDS,
    MAX_ELEMENTS,
    MAX_ERRORS,
    MAX_LAYERS,
    MAX_NESTING,
    MAX_PARAMS,
)
from .naming import Names, Scope
from .ops.structure import InputAttrs
from .recovery import collect
from .shape import Shape

POISON = "<error>"  # name prefix of the placeholder standing for a statement that failed
Env = dict[str, Any]


def layer_types() -> str:
    """Where the layer types are listed, for hints about one that does not exist (a fixed
    text: the full list would change with every new op, and bury the message)."""
    return ("the layer types netdsl has are the table 'Layers' of its README (conv, maxpool, "
            "avgpool, gap, FC, bn, layernorm, relu, dropout, …)")


class Expander:
    """Expands one spec (with its includes) into a NetGraph; see ``run``."""

    def __init__(self, root: A.SpecFile, files: list[A.SpecFile], overrides: Env):
        self.root = root
        self.graph = NetGraph()
        self.names = Names()
        self.unknown: set[str] = set()  # values of unknown shape: failed statements and readers
        self.warnings: list[NetdslWarning] = []
        self.errors: list[NetdslError] = []
        self.blocks: dict[str, A.BlockDef] = {}
        self.defaults: dict[str, tuple[A.Word, ...]] = {}
        self.stack: list[str] = []  # blocks being expanded, for recursion errors
        self.sites: list[A.Call] = []  # the calls that led to the current statement
        self.depth = 0  # nested bodies being expanded
        self.auto_acts: set[str] = set()  # activations inserted by the header (see passes)
        self._warned: set[str] = set()
        self._failed: set[tuple[Any, ...]] = set()  # locations and messages already reported
        for f in files:  # includes first, the root last: later definitions win
            for b in f.blocks:
                self.blocks[b.name] = b
            for d in f.defaults:
                key = self._default_key(d)
                if key is None:
                    continue
                words = self.defaults.get(key, ()) + d.words
                if len(words) > MAX_DEFAULT_WORDS:  # every layer of the type reads them all
                    raise NetdslError(f"more than {MAX_DEFAULT_WORDS} default words for "
                                      f"'{d.op}'", d.loc, hint="one 'default' line per option "
                                      "is enough: the last one wins")
                self.defaults[key] = words
        self.header: Header = read_header(root, overrides, self.errors)

    def _default_key(self, d: A.Default) -> str | None:
        """The op (by its canonical name, so aliases count) or construct a ``default`` line
        sets; an unknown one is an error like anywhere else (``default cnov bias=off``)."""
        op, kernel = ops.lookup(d.op.lower())
        if op is not None and kernel is None:
            return op.name
        if d.op.lower() in CONSTRUCTS:
            return d.op.lower()
        names = {k: o.name for k, o in ops.REGISTRY.items()} | {c: c for c in CONSTRUCTS}
        self.errors.append(NetdslError(
            f"unknown layer '{d.op}' in a default line", d.loc,
            hint=did_you_mean(d.op, names, typos_only=True) or
            "default takes a layer type and options, e.g. 'default conv bias=off'; "
            + layer_types()))
        return None

    # ---- errors ----------------------------------------------------------------------------
    def fail(self, e: NetdslError) -> None:
        """Record an error of one statement; stop when it is a limit or there are too many."""
        if isinstance(e, NetdslLimitError):
            raise e
        if isinstance(e, NetdslCascadeError):
            return
        if not e.notes and self.sites:
            e.notes = [f"in block '{c.block}', called at {c.loc}" for c in reversed(self.sites)]
        # a line failing again with the same message (a block called twice): one report;
        # another message there (another call's bad argument) is news
        key = (e.loc.src.path, e.loc.line, e.loc.col, e.message) if e.loc else \
            (e.path or "", 0, 0, e.message)
        # inside a block, one bad argument fails at every use of it: report the first
        same = (e.message, e.hint, *e.notes) if e.notes else key
        if key in self._failed or same in self._failed:
            return  # the same line failing again (a block called twice): one report
        self._failed.update((key, same))
        self.errors.append(e)
        if len(self.errors) > MAX_ERRORS:
            raise NetdslLimitError("too many errors")

    def poison(self) -> str:
        """A placeholder of unknown shape for a statement that failed (see the module doc)."""
        name = f"{POISON}{len(self.unknown)}"
        self.unknown.add(name)
        return name

    def shape(self, value: str) -> Shape | None:
        """The shape of a value, or None when it depends on a statement that failed."""
        return None if value in self.unknown else self.graph[value].out

    # ---- nodes -----------------------------------------------------------------------------
    def node(self, op: ops.OpDef, attrs: Any, inputs: tuple[str, ...], loc: SourceLoc | None,
             scope: Scope, base: str | None = None, name: str | None = None,
             aux: bool = False, labels: tuple[str, ...] | None = None) -> str:
        """Add one layer (auto-named from ``base`` unless ``name``), inferring its shape.

        ``labels`` say what the inputs are (``branch 2``, ``the shortcut``) for messages about
        inputs that disagree; by default, the layers producing them.
        """
        if len(self.graph) + len(self.unknown) >= MAX_LAYERS:
            raise NetdslLimitError(f"the network expands past {MAX_LAYERS:,} layers", loc,
                                   hint="netdsl refuses specs that expand past this size")
        if name and name.isdigit():
            self.position(scope, name, loc)
        full = (self.names.given(scope, name) if name else
                self.names.layer(scope, base or op.name))
        clash = self.names.clash(full)
        if clash is not None:
            raise NetdslError(f"'{clash}' names both a layer and a scope of layers", loc,
                              hint="rename one of them: a layer (a PyTorch module of its own) "
                                   "cannot hold other layers")
        if op.arity is not None and len(inputs) != op.arity:
            raise NetdslError(f"{op.name} takes {op.arity} input(s), got {len(inputs)}", loc)
        if op.arity is None and len(inputs) < 2:
            raise NetdslError(f"{op.name} takes two or more inputs, got {len(inputs)}", loc,
                              hint="name the inputs with 'from a, b'")
        if any(i in self.unknown for i in inputs):  # after an error upstream: not checked
            self.unknown.add(full)
            return full
        ins = tuple(self.graph[i].out for i in inputs)
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

    def position(self, scope: Scope, name: str, loc: SourceLoc | None) -> None:
        """Claim position ``name`` (``3 = FC-768``) of ``scope``: refused when a layer, a
        block call or a group holds it already."""
        if self.names.used(f"{scope.prefix}{name}"):
            raise NetdslError(f"position {name} of '{scope.prefix[:-1] or 'the network'}' is "
                              "already taken", loc, hint="a sequence [ … ] numbers its layers "
                              "in order: leave the number out, or give a later one")

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

    # ---- statements ------------------------------------------------------------------------
    def body(self, body: A.Body, x: str, scope: Scope, env: Env, aux: bool) -> str:
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
                    x = self.poison()
                    if st.target is not None:
                        scope.bound[st.target] = x
        finally:
            self.depth -= 1
        return x

    def _check_size(self, st: A.Stmt, env: Env) -> None:
        """Refuse a top-level statement whose expansion would pass MAX_LAYERS, before expanding."""
        est = LayerEstimate(self.blocks, self.header.params, self.header.activation is not None)
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

    def stmt(self, st: A.Stmt, x: str, scope: Scope, env: Env, aux: bool) -> str:
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
        n = count(st.repeat, env) if st.repeat is not None else 1
        indexed = st.target is not None and "{i}" in st.target  # encoder_layer_{i} = …
        one = isinstance(st.unit, A.Chain) and len(st.unit.layers) == 1 and \
            isinstance(st.unit.layers[0], A.LayerAst)
        single = one and (n == 1 or indexed)
        out = xs[0] if len(xs) == 1 else xs  # type: ignore[assignment]
        for i in range(n):
            target = st.target.replace("{i}", str(i)) if indexed else st.target
            if target is None or single:
                sub, name = scope, target
            else:
                if target.isdigit() and i == 0:  # `0 = (…)`, `1 = b()`: a position claimed
                    self.position(scope, target, st.loc)
                    self.names.scopes.add(f"{scope.prefix}{target}.")
                sub, name = scope.child(target if n == 1 or indexed else f"{target}.{i}"), None
            out = self.unit(st.unit, xs if i == 0 else (out,), scope, sub, name,
                            copy_env(env, i) if st.repeat is not None else env, aux,
                            labels if i == 0 else None)
        if st.target is not None and not indexed:
            scope.bound[st.target] = out  # rebinding is allowed: the later statement wins
        return out

    def unit(self, u: A.Unit, xs: tuple[str, ...], outer: Scope, scope: Scope,
             name: str | None, env: Env, aux: bool,
             labels: tuple[str, ...] | None = None) -> str:
        match u:
            case A.Chain():  # in a scope of its own when named: `stem = conv3-64 +bn +relu`
                return self.chain(u, xs, scope, name, env, aux, labels, scope is not outer)
            case A.Group():
                inner = Scope(scope.prefix, scope.counters, sequential=scope is not outer,
                              numbered=scope is outer and outer.numbered)
                return self.body(u.body, self._one(xs, u.loc), inner, env, aux)
            case A.Sequence():
                if scope is outer and outer.numbered:  # a sequence in a sequence: numbered
                    scope = outer.child(self.names.call(outer, ""))
                inner = Scope(scope.prefix, scope.counters, sequential=True, numbered=True)
                return self.body(u.body, self._one(xs, u.loc), inner, env, aux)
            case A.Call():
                return self.call(u, self._one(xs, u.loc), outer, scope, env, aux)
            case A.Construct():
                if scope is outer and outer.numbered:  # one module of the sequence
                    scope = outer.child(self.names.call(outer, ""))
                return expand_construct(self, u, self._one(xs, u.loc), scope, env, aux)
            case A.If():
                return self.body(self._chosen(u, env), self._one(xs, u.loc), outer, env, aux)
        raise AssertionError(u)

    def _chosen(self, u: A.If, env: Env) -> A.Body:
        """The body of the first condition that holds, else the ``else`` body (or nothing)."""
        for test, body in u.tests:
            if truth(test, env):
                return body
        return u.orelse or ()

    def _one(self, xs: tuple[str, ...], loc: SourceLoc) -> str:
        if len(xs) != 1:
            raise NetdslError(f"this takes one input, got {len(xs)}", loc,
                              hint="only layers like add or concat take several inputs")
        return xs[0]

    def chain(self, c: A.Chain, xs: tuple[str, ...], scope: Scope, name: str | None,
              env: Env, aux: bool, labels: tuple[str, ...] | None = None,
              by_type: bool = False) -> str:
        """A chain's layers; ``by_type`` (a named chain's own scope) names each by its type,
        ``stem.conv``, ``stem.bn``, as torchvision's BasicConv2d, and numbers only a type
        that repeats (``conv1``, ``conv2``)."""
        kinds = Counter(op.name for op, _ in (ops.lookup(lay.keyword) for lay in c.layers
                                              if isinstance(lay, A.LayerAst)) if op is not None)
        for k, lay in enumerate(c.layers):
            if isinstance(lay, A.Call):  # `conv3-16 +bn +se(16)`: applied like a statement
                xs = (self.call(lay, xs[0], scope, scope, env, aux),)
                continue
            op, kernel = ops.lookup(lay.keyword)
            if op is None:
                raise self._unknown_layer(lay)
            args = layer_args(op, lay, kernel, env, self.defaults.get(op.name, ()))
            given = op.name if by_type and kinds[op.name] == 1 else name
            out = self.node(op, op.build(args, lay.loc), xs, lay.loc, scope, name=given,
                            aux=aux, labels=labels if k == 0 else None)
            xs = (out,)
            last = k + 1 == len(c.layers)
            if self.header.activation and last and op.takes_activation:
                act = ops.OPS[self.header.activation]
                out = self.node(act, act.Attrs(), xs, lay.loc, scope, aux=aux)
                self.auto_acts.add(out)
                xs = (out,)
        return xs[0]

    def _unknown_layer(self, lay: A.LayerAst) -> NetdslError:
        if lay.keyword == "else":
            return misplaced_else(lay.loc)
        base, _ = ops.split_keyword(lay.keyword)
        names = {k: op.name for k, op in ops.REGISTRY.items()}
        names.update({b: f"{b}(…)" for b in self.blocks})
        names.update({c: f"{c} {{…}}" for c in CONSTRUCTS})
        hint = did_you_mean(base, names, typos_only=True) or \
            did_you_mean(lay.keyword, names, typos_only=True)
        if not hint and base not in ops.REGISTRY and lay.keyword not in self.blocks:
            # not a slip of the keyboard: say so, and what exists, rather than a far guess
            return NetdslError(f"no such layer type '{lay.keyword}'", lay.loc,
                               hint=layer_types())
        if lay.keyword in self.blocks or base in self.blocks:
            hint = f"'{lay.keyword}' is a block: call it with parentheses, {lay.keyword}(…)"
        elif ops.REGISTRY.get(base) and ops.REGISTRY[base].kernel_field is None:
            op = ops.REGISTRY[base]
            hint = f"{base} takes no kernel size in its name"
            digits = lay.keyword[len(lay.keyword.rstrip("0123456789")):]
            if op.channels_field is not None and digits:  # FC10 meant FC-10
                hint += f": did you mean '{lay.keyword[:-len(digits)]}-{digits}'?"
        return NetdslError(f"unknown layer '{lay.keyword}'", lay.loc,
                           hint=hint or "known layers: " + ", ".join(sorted(ops.OPS)))

    # ---- blocks ----------------------------------------------------------------------------
    def call(self, c: A.Call, x: str, outer: Scope, scope: Scope, env: Env, aux: bool) -> str:
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
        local = bind(b, c, env, self.header.params)
        if scope is outer:  # unnamed call: a fresh scope named after the block
            scope = outer.child(self.names.call(outer, b.name))
        self.stack.append(b.name)
        self.sites.append(c)
        try:
            return self.body(b.body, x, scope, local, aux)
        finally:
            self.stack.pop()
            self.sites.pop()

    # ---- whole network ---------------------------------------------------------------------
    def run(self) -> NetGraph:
        """Build the graph; raise every recorded error together (in source order) if any.

        The graph is as the spec reads: ``passes.run_passes`` then finishes it."""
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
            top = Scope("")
            source = ops.OPS["input"]  # the input is a node like any other, named `input`
            x = self.node(source, InputAttrs(h.input), (), None, top, name=INPUT)
            self.graph.input = x
            try:
                out = self.body(tuple(self.root.body), x, top, dict(h.params), False)
                self.graph.outputs.insert(0, out)
            except NetdslLimitError as e:
                if e.loc is not None or e.path is not None:
                    self.errors.append(e)
        if self.errors:
            raise collect(self.errors, stopped=len(self.errors) > MAX_ERRORS)
        return self.graph

