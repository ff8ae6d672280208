"""Memory a build will need, checked against the machine before anything is allocated.

``check`` accepts any network whose layers are within the language's limits, and those allow
specs no machine can build (``FC-65536`` on a 1000×1000 image: 65 G parameters). Building
(``compile``, ``run``, ``to_torch``, ``to_onnx``) first adds up what it will allocate and
refuses, with the numbers, when that exceeds the machine's physical memory (README, "Limits").
"""

from __future__ import annotations

import math
import os

from ..errors import NetdslError
from ..network import Network

BYTES = 4  # float32 weights and activations


def physical_memory() -> int:
    """The machine's RAM in bytes (a generous 1 TiB where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 1 << 40


def size(n: float) -> str:
    """Bytes for people: 3.6 TiB, 229 GiB, 512 MiB."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):,.1f} {unit}"
    return f"{int(n)} bytes"


def weight_bytes(net: Network) -> int:
    """Bytes of every weight and buffer, auxiliary heads included (the init draws them)."""
    from .weights import tensor_specs

    return sum(math.prod(t.shape) for _, t, _ in tensor_specs(net, aux=True)) * BYTES


def check_fits(net: Network, doing: str, copies: int = 1, batch: int = 0) -> None:
    """Refuse, before allocating, a build that cannot fit in this machine's memory.

    Args:
        net: the network.
        doing: what needs the memory, for the message ("build the weights").
        copies: how many copies of the weights the build holds at once.
        batch: images run through the network (0: none), each needing its activations.
    """
    have = physical_memory()
    w = weight_bytes(net)
    acts = batch * net.activations * BYTES
    need = copies * w + acts
    if need <= have:
        return
    parts = [f"{size(w)} of weights ({net.params_training:,} values × {BYTES} bytes"
             + (f", {copies} copies" if copies > 1 else "") + ")"]
    if batch:
        parts.append(f"{size(acts)} of activations ({net.activations:,} values per image × "
                     f"batch {batch:,})")
    raise NetdslError(f"{net.name} needs {size(need)} of memory to {doing}: "
                      + " and ".join(parts) + f"; this machine has {size(have)}",
                      path=net.path,
                      hint="lower --batch" if batch and acts > have // 2 else
                      "check the sizes: layer widths, channels, the input and --param values")
