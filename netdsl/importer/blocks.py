"""Instances → parametric blocks, and the spec text.

``Blocks`` groups instances by template in one dictionary pass: a template seen twice or more
becomes one ``block`` whose parameters are the holes that vary between instances (equal
columns share a parameter, multiples become ``(4*c)``, trailing strides get defaults); the
others are written in place. ``Writer`` prints statements, holes as numbers or as a block's
parameter expressions, and ``fold_runs`` folds runs of identical statements into ``×n``.
"""

from __future__ import annotations

from collections import Counter

from .. import ops
from .fold import (
    INDENT,
    RESERVED,
    Block,
    Body,
    Branches,
    Group,
    Inline,
    Instance,
    Named,
    Stage,
    Stmt,
    template,
)
from .recognize import Hole, render_part


class Blocks:
    """Instances → block definitions, by template (one dictionary pass)."""

    def __init__(self, instances: list[Instance]) -> None:
        by_key: dict[tuple, list[Instance]] = {}
        for inst in instances:
            by_key.setdefault(inst.key, []).append(inst)
        self.blocks: list[Block] = []
        taken: set[str] = set()
        for key, group in sorted(by_key.items(), key=lambda kv: -len(kv[1])):
            if len(group) < 2:
                continue
            if "Stage" in key:
                continue  # stages are written inline
            base = Counter(i.base for i in group).most_common(1)[0][0]
            if base in taken and " shortcut {" in key:
                base += "_proj"
            name = _unique(base, taken)
            blk = _parametrize(name, key, group)
            self.blocks.append(blk)
            for inst in group:
                inst.block = blk


def _unique(base: str, taken: set[str]) -> str:
    def bad(name: str) -> bool:
        return name in taken or ops.lookup(name)[0] is not None or name.lower() in RESERVED

    if bad(base) and bad(f"{base}2"):  # a layer keyword (conv: conv2 is one too)
        base += "_block"
    name, k = base, 1
    while bad(name):
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


def _parametrize(name: str, key: tuple, group: list[Instance]) -> Block:
    kinds = group[0].kinds
    cols = list(zip(*(i.values for i in group), strict=True))
    exprs: list[str | None] = [None] * len(cols)
    params: list[tuple[str, str, int]] = []  # (name, kind, hole)
    by_col: dict[tuple[int, ...], str] = {}
    order = sorted(range(len(cols)), key=lambda h: kinds[h] == "s")  # channels first
    for h in order:
        col = cols[h]
        if len(set(col)) == 1:
            continue
        if col in by_col:
            exprs[h] = by_col[col]
            continue
        expr = None
        for pname, pkind, ph in params:
            if pkind != kinds[h]:
                continue
            base = cols[ph]
            if 0 in col or 0 in base:
                continue
            if all(c % b == 0 for c, b in zip(col, base, strict=True)):
                ratios = {c // b for c, b in zip(col, base, strict=True)}
                if len(ratios) == 1:
                    expr = f"({ratios.pop()}*{pname})"
                    break
            if all(b % c == 0 for c, b in zip(col, base, strict=True)):
                ratios = {b // c for c, b in zip(col, base, strict=True)}
                if len(ratios) == 1:
                    expr = f"({pname}/{ratios.pop()})"
                    break
        if expr is None:
            n = sum(1 for p in params if p[1] == kinds[h]) + 1
            expr = {"c": "c", "k": "k", "s": "stride", "shift": "shift"}[kinds[h]] + \
                ("" if n == 1 else str(n))
            params.append((expr, kinds[h], h))
        by_col[col] = expr
        exprs[h] = expr
    names = [p[0] for p in params]
    defaults = {}
    # trailing strides and shifts default to their usual value
    for pname, pkind, h in reversed(params):
        if pkind not in ("s", "shift"):
            break
        defaults[pname] = Counter(cols[h]).most_common(1)[0][0]
    if len(names) == 1 and names[0] == "c2":
        names = ["c"]
    return Block(name, key, names, defaults, exprs, [p[2] for p in params], group[0].body)


class Writer:
    def __init__(self, defaults: set[str]) -> None:
        self.defaults = defaults  # option words the header's `default` lines already say

    def text(self, s: Stmt, ind: str = "", exprs: list[str | None] | None = None) -> str:
        """A statement starting at indentation ``ind``; in a block, holes become ``exprs``."""
        out: list[str] = []
        counter = [0]

        def texts(stmts: list[Stmt], i: str) -> list[str]:
            return fold_runs([one(st, i) for st in stmts])

        def one(st: Stmt, i: str) -> str:
            mark = len(out)
            walk(st, i)
            piece = "".join(out[mark:])
            del out[mark:]
            return piece

        def walk(tokens: Stmt, i: str) -> None:
            for t in tokens:
                if isinstance(t, str):
                    if t not in self.defaults:
                        out.append(t)
                elif isinstance(t, Named):
                    if t.shown():
                        out.append(f"{t.name} = ")
                elif isinstance(t, Hole):
                    e = exprs[counter[0]] if exprs is not None else None
                    counter[0] += 1
                    out.append(render_part(t) if e is None else f"/{e}" if t.kind == "s" else
                               f" shift={e}" if t.kind == "shift" else
                               "" if t.kind == "k" and not t.role else
                               f" kernel={e}" if t.kind == "k" else e)
                elif isinstance(t, Instance):
                    n = len(t.values)
                    sub = None if exprs is None else exprs[counter[0]:counter[0] + n]
                    counter[0] += n
                    out.append(self.call(t, sub, i))
                elif isinstance(t, Stage):
                    calls = texts(t.calls, i)
                    if len(calls) > 1 and any("\n" in c for c in calls):  # one per line
                        calls = [c.replace("\n", "\n" + INDENT) for c in calls]
                        out.append("(" + "".join(f"\n{i}{INDENT}{c}" for c in calls) + f"\n{i})")
                    else:
                        out.append(calls[0] if len(calls) == 1 else "(" + "; ".join(calls) + ")")
                elif isinstance(t, Body):
                    out.append("".join(f"\n{i}{INDENT}{x}" for x in texts(t.stmts, i + INDENT))
                               + f"\n{i}")
                elif isinstance(t, Branches):
                    for k, b in enumerate(t.branches):
                        lead = INDENT if k == 0 else "  | "
                        out.append(f"\n{i}{lead}" + "; ".join(texts(b, i + INDENT)))
                    out.append(f"\n{i}")
                elif isinstance(t, Inline):
                    out.append("; ".join(texts(t.stmts, i)))
                elif isinstance(t, Group):
                    inner = texts(t.stmts, i)
                    out.append(inner[0] if len(inner) == 1 else "(" + "; ".join(inner) + ")")

        walk(s, ind)
        return "".join(out)

    def call(self, inst: Instance, exprs: list[str | None] | None, ind: str) -> str:
        blk = inst.block
        if blk is None:  # inline: one statement, or a group of them
            texts, k = [], 0
            for s in inst.body:
                n = len(template([s])[1])
                sub = None if exprs is None else exprs[k:k + n]
                texts.append(self.text(s, ind + INDENT if len(inst.body) > 1 else ind, sub))
                k += n
            texts = fold_runs(texts)
            if len(texts) == 1:
                return texts[0]
            return "(" + "".join(f"\n{ind}{INDENT}{t}" for t in texts) + f"\n{ind})"
        args: list[tuple[str, str]] = []
        for p, h in zip(blk.params, blk.sources, strict=True):
            e = exprs[h] if exprs is not None and exprs[h] is not None else None
            if e is not None and e.startswith("(") and e.endswith(")"):
                e = e[1:-1]  # a whole argument needs no parentheses: se(c/4)
            args.append((p, e if e is not None else str(inst.values[h])))
        while args and args[-1][0] in blk.defaults and \
                args[-1][1] == str(blk.defaults[args[-1][0]]):
            args.pop()
        return f"{blk.name}({', '.join(a[1] for a in args)})"

    def block_def(self, blk: Block) -> list[str]:
        params = ", ".join(p + (f"={blk.defaults[p]}" if p in blk.defaults else "")
                           for p in blk.params)
        texts = []
        counter = 0
        for s in blk.body:
            n = len(template([s])[1])
            texts.append(self.text(s, INDENT, blk.exprs[counter:counter + n]))
            counter += n
        return [f"block {blk.name}({params}) {{", *(INDENT + t for t in fold_runs(texts)), "}"]


def fold_runs(texts: list[str]) -> list[str]:
    """Consecutive equal statements → ``s ×n``; a repeated pair or triple → ``(a; b) ×n``."""
    out: list[str] = []
    i = 0
    while i < len(texts):
        best = (1, 1)  # (period, count)
        for p in (1, 2, 3):
            n = 1
            while i + (n + 1) * p <= len(texts) and \
                    texts[i + n * p:i + (n + 1) * p] == texts[i:i + p]:
                n += 1
            if n > 1 and n * p > best[0] * best[1] and " = " not in "".join(texts[i:i + p]):
                best = (p, n)
        p, n = best
        unit = texts[i:i + p]
        if n == 1:
            out.append(unit[0])
        elif p == 1:
            out.append(f"{unit[0]} ×{n}")
        elif any("\n" in t for t in unit):
            inner = "\n".join(INDENT + t.replace("\n", "\n" + INDENT) for t in unit)
            out.append(f"(\n{inner}\n) ×{n}")
        else:
            out.append(f"({'; '.join(unit)}) ×{n}")
        i += p * n
    return out

