"""The documented size limits, and the static estimate that enforces them before expansion.

A spec is small text that can describe a huge network (``(relu ×1000) ×1000``, blocks
calling blocks ×N). ``LayerEstimate`` counts the layers a statement will expand to by
multiplying repetition counts through groups, constructs and block calls, without expanding
anything, so such a spec is refused in milliseconds at the line that asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ast as A
from . import ops
from .errors import NetdslError

MAX_LAYERS = 100_000  # layers of the expanded network
MAX_ELEMENTS = 1 << 40  # elements of one activation tensor, per image
MAX_PARAMS = 1 << 36  # parameters of one layer
MAX_INCLUDE_DEPTH = 32  # files including files
MAX_NESTING = 50  # groups, constructs and block calls nested inside each other while expanding
MAX_DENSE_UNITS = 256  # units of one dense block (each reads all before it: quadratic)
MAX_DEFAULT_WORDS = 64  # words of the `default` lines of one layer type (every layer reads them)

_BUDGET = 200_000  # estimate steps; past this the estimate stops early (the builder still counts)

Env = dict[str, Any]


class LayerEstimate:
    """A lower bound on the layers a statement expands to, computed without expanding it.

    Exact for chains, repetition, groups and block calls; projection shortcuts (which depend
    on shapes) are not counted. Expressions that fail to evaluate count as 1: expansion
    reports them properly.

    Args:
        blocks: the block definitions in scope.
        bind: evaluates a call's arguments into the block's environment (raises NetdslError).
        count: evaluates a repetition count (raises NetdslError).
        activation: whether the spec's ``activation`` follows every weight layer.
    """

    def __init__(self, blocks: dict[str, A.BlockDef],
                 bind: Callable[[A.BlockDef, A.Call, Env], Env],
                 count: Callable[[A.Expr, Env], int], activation: bool) -> None:
        self.blocks = blocks
        self.bind = bind
        self.count = count
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
                n = self.count(st.repeat, env)
            except NetdslError:
                n = 1
        return n, self.unit(st.unit, env)

    def body(self, body: A.Body, env: Env) -> int:
        total = 0
        for st in body:
            if self.steps > _BUDGET:
                break
            n, per = self.stmt(st, env)
            total += n * per
        return total

    def unit(self, u: A.Unit, env: Env) -> int:
        match u:
            case A.Chain(layers=layers):
                op, _ = ops.lookup(layers[-1].keyword)
                act = 1 if self.activation and op is not None and op.takes_activation else 0
                return len(layers) + act
            case A.Group(body=body):
                return self._nested(lambda: self.body(body, env))
            case A.Call():
                return self._call(u, env)
            case A.Construct(kind=kind, branches=branches, extra=extra):
                inner = self._nested(lambda: sum(self.body(b, env) for b in (*branches, *extra)))
                if kind.lower() == "dense":  # a concat before each unit but the first
                    inner += sum(self.stmt(st, env)[0] for b in branches for st in b) - 1
                return inner + (0 if kind.lower() == "aux" else 1)
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
            local = self.bind(b, c, env)
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
