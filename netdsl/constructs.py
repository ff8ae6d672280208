"""The constructs ``concat {…}``, ``residual {…}``, ``scale {…}``, ``dense {…}``, ``aux {…}``.

A mixin of ``Builder`` (its methods are typed ``self: Builder``): each construct expands its
bodies with ``Builder.body`` and joins them with one node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ast as A
from . import ops
from .errors import NetdslError, did_you_mean
from .ir import Shape
from .limits import MAX_DENSE_UNITS

if TYPE_CHECKING:
    from .build import Builder, Scope

CONSTRUCTS = ("concat", "residual", "scale", "dense", "aux")
RESIDUAL_OPTIONS = {"shortcut": ("a", "b", "c"), "projection": ("convbn", "conv")}


class Constructs:
    """Expansion of the constructs; mixed into Builder."""

    def construct(self: Builder, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
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

    def _concat(self: Builder, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
                aux: bool) -> str:
        outs = []
        for i, br in enumerate(c.branches, 1):
            outs.append(self.body(br, x, self.fresh(scope, f"branch{i}"), env, aux))
        if len(outs) == 1:
            raise NetdslError("concat needs two or more branches", c.loc,
                              hint="separate branches with '|'")
        labels = tuple(f"branch {i}" for i in range(1, len(outs) + 1))
        return self.node(ops.OPS["concat"], ops.NoAttrs(), tuple(outs), c.loc, scope, aux=aux,
                         labels=labels)

    def _residual(self: Builder, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
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
        elif (xs == ys and opts["shortcut"] != "c") or xs is None or ys is None:
            sc = x
        elif not xs.layout.is_map or ys.layout is not xs.layout:
            raise NetdslError(f"residual body changes the shape {xs} -> {ys}",
                              c.loc, hint="no projection exists between these shapes")
        else:
            sc = self._project(c, x, xs, ys, opts, scope, aux)
        return self.node(ops.OPS["add"], ops.NoAttrs(), (y, sc), c.loc, scope, aux=aux,
                         labels=("the residual body", "the shortcut"))

    def _project(self: Builder, c: A.Construct, x: str, xs: Shape, ys: Shape, opts: dict[str, str],
                 scope: Scope, aux: bool) -> str:
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
            return self.node(op, attrs, (x,), c.loc, scope, name="shortcut", aux=aux)
        sub = self.fresh(scope, "downsample")
        conv = ops.OPS["conv"]
        words = self.defaults.get("conv", ())
        args = self.layer_args(conv, A.LayerAst("conv1", c.loc, None, None, words), "1", {})
        args.channels, args.stride, args.options["pad"] = ys.channels, stride, 0
        args.options.pop("groups", None)
        if opts["projection"] == "convbn":  # a bias before BN is redundant
            args.options["bias"] = False
        out = self.node(conv, conv.build(args, c.loc), (x,), c.loc, sub, name="0", aux=aux)
        if opts["projection"] == "convbn":
            bn = ops.OPS["bn"]
            out = self.node(bn, bn.build(ops.LayerArgs("bn", None), c.loc), (out,), c.loc, sub,
                            name="1", aux=aux)
        return out

    def _scale(self: Builder, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
               aux: bool) -> str:
        gate = self.body(c.branches[0], x, self.fresh(scope, "se"), env, aux)
        return self.node(ops.OPS["mul"], ops.NoAttrs(), (x, gate), c.loc, scope, aux=aux,
                         labels=("the scaled input", "the gate"))

    def _dense(self: Builder, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
               aux: bool) -> str:
        feats = [x]
        cat = ops.OPS["concat"]
        counts = []
        for st in c.branches[0]:
            if st.inputs is not None or st.target is not None:
                raise NetdslError("dense units take no names or 'from'", st.loc)
            counts.append(self._count(st.repeat, env) if st.repeat is not None else 1)
        if sum(counts) > MAX_DENSE_UNITS:  # unit k reads all k-1 before it: quadratic cost
            raise NetdslError(f"dense block has {sum(counts):,} units, more than the limit of "
                              f"{MAX_DENSE_UNITS}", c.loc,
                              hint="each unit reads every earlier unit; split it into several "
                                   "dense blocks with transitions between them")
        for st, n in zip(c.branches[0], counts, strict=True):
            for _ in range(n):
                labels = ("the block's input", *(f"unit {k}" for k in range(1, len(feats))))
                inp = feats[0] if len(feats) == 1 else self.node(
                    cat, ops.NoAttrs(), tuple(feats), st.loc, scope, aux=aux, labels=labels)
                feats.append(self.unit(st.unit, (inp,), scope, scope, None, env, aux))
        if len(feats) == 1:
            raise NetdslError("dense block has no units", c.loc)
        labels = ("the block's input", *(f"unit {k}" for k in range(1, len(feats))))
        return self.node(cat, ops.NoAttrs(), tuple(feats), c.loc, scope, aux=aux, labels=labels)

    def _aux(self: Builder, c: A.Construct, x: str, scope: Scope, env: dict[str, Any],
             aux: bool) -> str:
        sub = self.fresh(scope, "aux", numbered=True)
        out = self.body(c.branches[0], x, sub, env, True)
        if out == x:
            raise NetdslError("aux head is empty", c.loc)
        self.graph.outputs.append(out)
        return x
