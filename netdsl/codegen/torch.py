"""NetGraph -> PyTorch: readable standalone source, and the module made by executing it.

One lowering: ``to_torch`` executes the exact text ``to_torch_source`` returns (as FX's
``GraphModule`` executes its generated ``forward``), registered in ``linecache`` so
tracebacks show the generated lines. Submodules are nested by the IR's dotted names, so
``layer1.0.conv1`` becomes ``self.layer1["0"].conv1`` and its weight the state_dict key
``layer1.0.conv1.weight``.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import linecache
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, ops
from ..errors import NetdslError
from ..ir import Layer
from ..network import Network
from .weights import init_weights, match_weights

INDENT = " " * 8


class _Namespace:
    """Fresh Python identifiers from IR names, never a keyword, builtin or taken name (FX)."""

    def __init__(self, reserved: set[str]) -> None:
        self.used = set(reserved) | set(keyword.kwlist) | set(dir(builtins))

    def create(self, base: str) -> str:
        name = re.sub(r"\W", "_", base) or "v"
        if name[0].isdigit():
            name = "_" + name
        cand, k = name, 0
        while cand in self.used:
            k += 1
            cand = f"{name}_{k}"
        self.used.add(cand)
        return cand


# Names a submodule cannot take: attributes of nn.ModuleDict (and so of nn.Module), as of
# PyTorch 2.13, besides dunders. Written out so that emitting source needs no PyTorch;
# tests/test_no_torch.py checks it against the installed PyTorch.
MODULE_ATTRS = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
    _compiled_call_impl _forward_hooks _forward_hooks_always_called
    _forward_hooks_with_kwargs _forward_pre_hooks _forward_pre_hooks_with_kwargs
    _get_backward_hooks _get_backward_pre_hooks _get_name _is_full_backward_hook
    _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
    _maybe_warn_non_full_backward_hook _modules _named_members
    _non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
    _register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict
    _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
    add_module apply bfloat16 buffers call_super_init children clear compile cpu cuda
    double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu items keys load_state_dict modules mtia
    named_buffers named_children named_modules named_parameters parameters pop
    register_backward_hook register_buffer register_forward_hook
    register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory state_dict to to_empty train training
    type update values xpu zero_grad
""".split())


def require_torch(what: str) -> Any:
    """The torch module, or a NetdslError saying which extra installs it."""
    try:
        import torch
    except ImportError:
        raise NetdslError(f"{what} needs PyTorch, which is not installed",
                          hint="install the torch extra: pip install 'netdsl[torch]' (on a "
                               "machine without a GPU, the CPU build first: pip install torch "
                               "--index-url https://download.pytorch.org/whl/cpu)") from None
    return torch


def _module_attrs() -> frozenset[str]:
    """MODULE_ATTRS, plus the running PyTorch's own when it is already imported."""
    torch = sys.modules.get("torch")
    return MODULE_ATTRS | frozenset(dir(torch.nn.ModuleDict())) if torch else MODULE_ATTRS


def _class_name(net: Network) -> str:
    words = re.split(r"[^0-9A-Za-z]+", net.name)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Net"
    return name if name[0].isalpha() else "Net" + name


def _visible(text: str) -> str:
    """``text`` with every character that is not printable as a Python escape: nothing in it
    can end a comment or a line (CR, LF, U+2028) or reorder what is shown (bidi controls)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _doc(text: str) -> str:
    """Text safe inside a triple-quoted docstring: no quote or backslash can end it."""
    return _visible(text.replace("\\", "\\\\").replace('"', '\\"'))


def _comment(lay: Layer, root: str) -> str:
    if lay.loc is None:
        return ""
    line = lay.loc.line + lay.loc.src.line_offset
    where = f"line {line}" if lay.loc.src.path == root else f"{Path(lay.loc.src.path).name}:{line}"
    return f"  # {_visible(where)}"


class _Modules:
    """The submodule tree: emits ``__init__`` lines and gives each dotted name its access path."""

    def __init__(self, taken: frozenset[str]) -> None:
        self.taken = taken
        self.paths: dict[str, tuple[str, bool]] = {"": ("self", False)}  # name -> (expr, is_dict)
        self.lines: list[str] = []

    def _child(self, parent: str, part: str, parameter: bool = False) -> tuple[str, str]:
        """(access expression, assignment statement with ``{}`` for the value) of ``part``."""
        expr, is_dict = self.paths[parent]
        if part.isidentifier() and not keyword.iskeyword(part):
            return f"{expr}.{part}", f"{expr}.{part} = {{}}"
        key = f'"{_doc(part)}"'
        if parameter:
            return f"{expr}._parameters[{key}]", f"{expr}.register_parameter({key}, {{}})"
        if is_dict:
            return f"{expr}[{key}]", f"{expr}[{key}] = {{}}"
        return f"{expr}._modules[{key}]", f"{expr}.add_module({key}, {{}})"

    def add(self, lay: Layer, ctor: str, comment: str, parameter: bool = False) -> str:
        parts = lay.name.split(".")
        for i, part in enumerate(parts):
            if part in self.taken or part.startswith("__") and part.endswith("__"):
                raise NetdslError(f"layer name '{lay.name}' cannot be a PyTorch submodule: "
                                  f"'{part}' is an attribute of nn.Module", lay.loc,
                                  hint="rename the layer or its block")
            name = ".".join(parts[:i + 1])
            leaf = i == len(parts) - 1
            if name in self.paths and not leaf:
                continue
            if name in self.paths:
                raise NetdslError(f"'{lay.name}' names both a layer and a scope of layers",
                                  lay.loc, hint="rename the layer")
            parent = ".".join(parts[:i])
            expr, assign = self._child(parent, part, parameter and leaf)
            value = ctor if leaf else "nn.ModuleDict()"
            self.lines.append(f"{INDENT}{assign.format(value)}{comment if leaf else ''}")
            self.paths[name] = (expr, not leaf)
        return self.paths[lay.name][0]


def _source(net: Network, aux: bool) -> tuple[str, str]:
    layers = [lay for lay in net.graph.layers()  # the input is forward's argument
              if ops.OPS[lay.op].arity != 0 and (aux or not lay.aux)]
    outputs = [o for o in net.graph.outputs if aux or not net.graph[o].aux]
    # liveness: the index of each value's last reader (its own for a value nobody reads, as in
    # a dead branch the checker warns about); graph outputs live to the end
    last: dict[str, int] = {net.graph.input: -1, **{lay.name: i for i, lay in enumerate(layers)}}
    for i, lay in enumerate(layers):
        for src in lay.inputs:
            last[src] = i
    for o in outputs:
        last[o] = len(layers)

    mods = _Modules(_module_attrs())
    helpers: dict[str, None] = {}  # module-level source the ops' lowerings use, once each
    ns = _Namespace({"self", "torch", "nn", "F"})
    source = net.graph.input
    var = {source: ns.create("x")}  # value -> variable
    # One variable per scope, rebound along its chain (``layer1_0 = …bn1(layer1_0)``);
    # the top scope's is the input ``x``. A variable is free once its value has no readers left.
    scope_var = {"": var[source]}
    holds = {var[source]: source}  # variable -> the value it holds now
    body: list[str] = []
    in_aux = False
    for i, lay in enumerate(layers):
        op = ops.OPS[lay.op]
        code = op.torch(lay.attrs, net.in_shapes(lay))
        if code.helper:
            helpers[code.helper.strip()] = None
        comment = _comment(lay, net.path)
        m = mods.add(lay, code.module, comment, code.parameter) if code.module else None
        expr = code.forward.format(*(var[s] for s in lay.inputs), m=m)
        scope = lay.name.rpartition(".")[0]
        if scope not in scope_var:
            scope_var[scope] = ns.create(scope)
        out = scope_var[scope]
        if out in holds and last[holds[out]] > i:  # still needed: take a fresh one
            out = ns.create(scope or lay.name)
        var[lay.name] = out
        if lay.aux != in_aux:
            if lay.aux:
                body.append(f"{INDENT}if self.training:  # auxiliary heads: training only")
            in_aux = lay.aux
        pad = INDENT + ("    " if in_aux else "")
        body.append(f"{pad}{out} = {expr}{comment}")
        gone = [var[s] for s in dict.fromkeys(lay.inputs)
                if last[s] == i and var[s] != out and holds.get(var[s]) == s]
        for v in gone:
            del holds[v]
        holds[out] = lay.name
        if gone:  # free activations nobody reads again (FX sets them to None)
            body.append(f"{pad}del {', '.join(gone)}")
    main = var[outputs[0]]
    if len(outputs) > 1:
        body.append(f"{INDENT}if self.training:")
        body.append(f"{INDENT}    return {', '.join(var[o] for o in outputs)}")
    body.append(f"{INDENT}return {main}")

    cls = _class_name(net)
    if any(re.search(rf"^(class|def) {cls}\b", h, re.M) for h in helpers):
        cls = "Net" + cls  # a network named like a helper class
    train = (f" In training mode forward returns (main, {', '.join(outputs[1:])})."
             if len(outputs) > 1 else "")
    title = _doc(net.header.title or net.name)
    src = f'''"""{title}: generated by netdsl {__version__} from {_doc(net.path)}.

Standalone PyTorch (no netdsl import). Input N×{net.input}, output N×{net.output}.{train}
"""

import torch
import torch.nn.functional as F
from torch import nn
{"".join(chr(10) * 2 + h + chr(10) for h in helpers)}

class {cls}(nn.Module):
    """{title}."""

    def __init__(self) -> None:
        super().__init__()
{chr(10).join(mods.lines) or INDENT + "pass"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
{chr(10).join(body)}
'''
    return src, cls


def to_torch_source(net: Network, aux: bool = True) -> str:
    """Readable, standalone PyTorch source of the network: one ``nn.Module`` class.

    Args:
        net: a loaded network.
        aux: include the auxiliary heads (computed in training mode only).

    Raises:
        NetdslError: when a layer name cannot be a submodule name.
    """
    return _source(net, aux)[0]


def to_torch(net: Network, seed: int = 0, aux: bool = True,
             weights: Mapping[str, np.ndarray] | None = None) -> Any:
    """The network as an ``nn.Module``, by executing ``to_torch_source(net)``.

    Training mode returns (main, *aux outputs) when the spec has auxiliary heads; eval mode
    the main output. Weights follow the spec's ``init`` with ``seed`` (the same tensors as
    ``to_onnx(net, seed=seed)``), or are ``weights`` under netdsl's names.

    Args:
        net: a loaded network.
        seed: the random seed of the initialization.
        aux: include the auxiliary heads.
        weights: tensors under state_dict names instead of the initialization.
    """
    torch = require_torch("netdsl.to_torch")
    src, cls_name = _source(net, aux)
    digest = hashlib.sha1(src.encode()).hexdigest()[:12]
    filename = f"<netdsl:{net.name}:{digest}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    scope: dict[str, Any] = {"__name__": f"netdsl_generated_{digest}"}
    exec(compile(src, filename, "exec"), scope)
    with torch.device("meta"):  # no default init: the weights are assigned below
        module = scope[cls_name]()
    w = (init_weights(net, seed, aux=aux) if weights is None
         else match_weights(net, weights, aux=aux))
    # the numpy arrays become the tensors' storage (no copy); counters PyTorch keeps are zero
    state = {key: torch.from_numpy(w[key]) if key in w else torch.zeros((), dtype=t.dtype)
             for key, t in module.state_dict().items()}
    assert w.keys() <= state.keys(), sorted(w.keys() - state.keys())  # one lowering: never
    module.load_state_dict(state, strict=True, assign=True)
    return module.train()
