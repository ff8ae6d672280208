"""The size pre-check: how many layers a statement expands to, counted without expanding it.

A spec is small text that can describe a huge network (``(relu ×1000) ×1000``, blocks
calling blocks ×N). ``LayerEstimate`` multiplies repetition counts through groups, constructs
and block calls, so such a spec is refused in milliseconds at the line that asks for it. It
reads values with the evaluator and construct facts from the construct table, as the
expansion does, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ast as A
from . import ops
from .constructs import CONSTRUCTS
from .errors import NetdslError
from .evaluate import bind, copy_env, count, truth
from .limits import MAX_ESTIMATE_STEPS, MAX_NESTING

Env = dict[str, Any]


class LayerEstimate:
    """A lower bound on the layers a statement expands to, computed without expanding it.

    Exact for chains, repetition, groups and block calls; projection shortcuts (which depend
    on shapes) are not counted. Expressions that fail to evaluate count as 1: expansion
    reports them properly.

    Args:
        blocks: the block definitions in scope.
        params: the spec's params (visible in every block).
        activation: whether the spec's ``activation`` follows every weight layer.
    """

    def __init__(self, blocks: dict[str, A.BlockDef], params: Env, activation: bool) -> None:
        self.blocks = blocks
        self.params = params
        self.activation = activation
        self.memo: dict[tuple[str, str], int] = {}
        self.stack: list[str] = []
        self.steps = 0

    def stmt(self, st: A.Stmt, env: Env) -> tuple[int, int]:
        """(repetitions, layers per repetition) of one statement."""
        self.steps += 1
        n = 1
        if st.repeat is not None:
            try:
                n = count(st.repeat, env)
            except NetdslError:
                n = 1
        return n, self.unit(st.unit, copy_env(env, 0) if st.repeat is not None else env)

    def body(self, body: A.Body, env: Env) -> int:
        total = 0
        for st in body:
            if self.steps > MAX_ESTIMATE_STEPS:
                break
            n, per = self.stmt(st, env)
            total += n * per
        return total

    def unit(self, u: A.Unit, env: Env) -> int:
        match u:
            case A.Chain(layers=layers):
                last = layers[-1]
                op = ops.lookup(last.keyword)[0] if isinstance(last, A.LayerAst) else None
                act = 1 if self.activation and op is not None and op.takes_activation \
                    else 0
                return act + sum(self._call(x, env) if isinstance(x, A.Call) else 1
                                 for x in layers)
            case A.Group(body=body) | A.Sequence(body=body):
                return self._nested(lambda: self.body(body, env))
            case A.If(tests=tests, orelse=orelse):
                try:
                    chosen = next((b for t, b in tests if truth(t, env)), orelse or ())
                except NetdslError:
                    return 1  # expansion reports it
                return self._nested(lambda: self.body(chosen, env))
            case A.Call():
                return self._call(u, env)
            case A.Construct(kind=kind, branches=branches, extra=extra):
                inner = self._nested(lambda: sum(self.body(b, env) for b in (*branches, *extra)))
                d = CONSTRUCTS.get(kind.lower())
                if d is None:
                    return inner + 1  # expansion reports the unknown construct
                if d.per_unit:  # a join before each unit but the first
                    inner += sum(self.stmt(st, env)[0] for b in branches for st in b) - 1
                return inner + d.joins
        return 1

    def _nested(self, f: Callable[[], int]) -> int:
        if len(self.stack) >= MAX_NESTING:
            return 1
        self.stack.append("")
        try:
            return f()
        finally:
            self.stack.pop()

    def _call(self, c: A.Call, env: Env) -> int:
        b = self.blocks.get(c.block)
        if b is None or c.block in self.stack or len(self.stack) >= MAX_NESTING:
            return 1  # expansion reports the unknown or recursive block
        try:
            local = bind(b, c, env, self.params)
        except NetdslError:
            return 1
        key = (b.name, repr(sorted(local.items())))
        if key not in self.memo:
            self.stack.append(b.name)
            try:
                self.memo[key] = self.body(b.body, local)
            finally:
                self.stack.pop()
        return self.memo[key]
