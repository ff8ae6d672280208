"""The spec's header: name, input, params, init, activation (read before any layer)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ast as A
from . import ops
from .errors import NetdslCascadeError, NetdslError, SourceLoc, did_you_mean
from .evaluate import FAILED, evaluate
from .limits import MAX_DIM, MAX_ELEMENTS
from .shape import Shape, input_shape

INITS = {"he": "he", "kaiming": "he", "glorot": "glorot", "xavier": "glorot"}
INPUT_HINT = ("input C×H×W (3x224x224), C×L (1x16000), C×D×H×W (3x16x112x112), "
              "a feature count (4096), L×D tokens (197x768 tokens) or an H×W×D token grid "
              "(56x56x96 grid)")


@dataclass
class Header:
    """The spec's header: name, input, parameters and global choices."""

    name: str = "network"
    title: str | None = None
    input: Shape | None = None
    params: dict[str, Any] = field(default_factory=dict)
    cite: str | None = None
    init: tuple[str, str] = ("he", "normal")
    activation: str | None = None


def read_header(spec: A.SpecFile, overrides: dict[str, Any],
                errors: list[NetdslError]) -> Header:
    """The root file's header; errors in independent settings are all appended to ``errors``."""
    h = Header()
    h.name = Path(spec.src.path).stem if spec.src.path.endswith(".net") else "network"
    seen: dict[str, SourceLoc] = {}
    for s in spec.settings:
        try:
            if s.key in seen and s.key != "param":
                raise NetdslError(f"'{s.key}' is given twice (first at line {seen[s.key].line})",
                                  s.loc, hint="keep one")
            seen[s.key] = s.loc
            _setting(h, s, overrides)
        except NetdslError as e:
            if s.key == "param":
                h.params[str(s.values[0])] = FAILED
            if not isinstance(e, NetdslCascadeError):
                errors.append(e)
    unknown = set(overrides) - set(h.params)
    if unknown:
        errors.append(NetdslError(f"no param '{sorted(unknown)[0]}' in {spec.src.path}",
                                  path=spec.src.path,
                                  hint="params: " + (", ".join(h.params) or "none")))
    if h.input is None and "input" not in seen:
        errors.append(NetdslError("the spec has no 'input' line", path=spec.src.path,
                                  hint="add e.g. 'input 3x224x224' (C×H×W) to the header"))
    return h


def _setting(h: Header, s: A.Setting, overrides: dict[str, Any]) -> None:
    if s.key == "network":
        h.name = str(s.values[0])
        h.title = str(s.values[1]) if len(s.values) > 1 else None
    elif s.key == "input":
        dims = tuple(v for v in s.values if isinstance(v, int))
        words = [str(v) for v in s.values if isinstance(v, str)]
        if words and words not in (["tokens"], ["grid"]):
            raise NetdslError(f"unknown input layout '{words[0]}'", s.loc,
                              hint=did_you_mean(words[0], ["tokens", "grid"]) or INPUT_HINT)
        shape = input_shape(dims, tokens=words == ["tokens"], grid=words == ["grid"])
        got = "×".join(map(str, dims)) + "".join(f" {w}" for w in words)
        if shape is None:
            raise NetdslError(f"input {got} fits no layout", s.loc, hint=INPUT_HINT)
        if any(d < 1 for d in dims):
            raise NetdslError(f"input sizes must be at least 1, got {got}", s.loc,
                              hint=INPUT_HINT)
        if math.prod(dims) > MAX_ELEMENTS or any(d >= MAX_DIM for d in dims):
            raise NetdslError("input is absurdly large", s.loc,
                              hint=f"at most {MAX_ELEMENTS:,} elements, each size below 2**31")
        h.input = shape
    elif s.key == "param":
        name, expr = s.values
        h.params[str(name)] = overrides.get(str(name), evaluate(expr, h.params))  # type: ignore[arg-type]
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
