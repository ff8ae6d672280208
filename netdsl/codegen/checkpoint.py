"""Reading checkpoints from the internet: names and shapes first, tensor bytes only once they fit.

A checkpoint is untrusted input. Nothing in it runs: ``.pt`` files go through
``torch.load(weights_only=True)`` (PyTorch's restricted unpickler) and ``.safetensors`` has no
code at all. Nothing in it is read before it is known to fit: a ``.pt`` archive is memory-mapped
(``mmap=True``), so a tensor's bytes are touched only when ``match_weights`` has checked its name
and shape against the network; archives with compressed members are refused (``torch.save``
never compresses, and an inflated member can be a thousand times its file: a zip bomb).
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetdslError

MAX_PICKLE_BYTES = 64 << 20  # the object graph of a .pt file (names, shapes): not its tensors


class LazyTensor:
    """A checkpoint tensor whose bytes stay in the file until ``numpy.asarray`` asks for them."""

    def __init__(self, t: Any) -> None:
        self.t = t
        self.shape = tuple(t.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        t = self.t.detach()
        a = (t.float() if t.is_floating_point() else t).numpy()
        return a if dtype is None else a.astype(dtype, copy=False)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Tensors of a ``.safetensors`` file or a PyTorch ``.pt``/``.pth`` state_dict, in file order,
    as arrays or ``LazyTensor``s (``.shape``, and ``numpy.asarray`` for the values).

    A .pt file may hold the state_dict itself or a dict with a ``state_dict`` or ``model`` entry
    (the usual training checkpoints). Reading .pt needs PyTorch; .safetensors does not.

    Raises:
        NetdslError: for a missing or unreadable file, one holding anything but a mapping of
            names to dense real tensors, and for compressed archives.
    """
    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise NetdslError("no such weights file" if not p.exists() else
                          "the weights file is not a regular file", path=name,
                          hint="give a .pt or .safetensors file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return {k: _real_array(k, a, name) for k, a in load_file(name).items()}
        obj = _load_pt(p, name)
    except NetdslError:
        raise
    except ImportError as e:
        extra = "install the torch extra: pip install 'netdsl[torch]'" if e.name == "torch" \
            else f"pip install {e.name}"
        raise NetdslError(f"reading {p.suffix or 'this'} weights needs {e.name}",
                          path=name, hint=extra) from None
    except pickle.UnpicklingError as e:  # weights_only refused a global: never advise otherwise
        what = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise NetdslError("the file holds Python objects, not only tensors"
                          + (f" ({what.group(1)})" if what else "")
                          + ": netdsl never runs code from a checkpoint", path=name,
                          hint="save model.state_dict() with torch.save, or use .safetensors"
                          ) from None
    except Exception as e:  # torch and safetensors raise assorted types on corrupt files
        raise NetdslError(f"cannot read weights: {e}".splitlines()[0], path=name,
                          hint="expected a .safetensors file or a torch.save()d state_dict"
                          ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise NetdslError("the file holds no state_dict (a mapping of names to tensors)",
                          path=name, hint="save model.state_dict(), not the model")
    return {_key(k, name): LazyTensor(_dense(k, v, name)) for k, v in obj.items()}


def _load_pt(p: Path, name: str) -> Any:
    with warnings.catch_warnings():  # PyTorch's deprecation notes are not the user's business
        warnings.simplefilter("ignore")
        return _torch_load(p, name)


def _torch_load(p: Path, name: str) -> Any:
    import torch

    if not zipfile.is_zipfile(p):  # the pre-1.6 format: read whole, so bounded by its size
        return torch.load(str(p), map_location="cpu", weights_only=True)
    with zipfile.ZipFile(p) as z:
        infos = z.infolist()
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise NetdslError(f"the archive's member {packed[0]} is compressed: torch.save never "
                          "compresses, and netdsl does not inflate checkpoint members",
                          path=name, hint="save the state_dict again with torch.save")
    big = [i for i in infos if i.filename.endswith("data.pkl") and
           i.file_size > MAX_PICKLE_BYTES]
    if big:
        raise NetdslError(f"the checkpoint's object graph is {big[0].file_size:,} bytes, more "
                          f"than the limit of {MAX_PICKLE_BYTES:,}", path=name,
                          hint="save model.state_dict() (tensors only)")
    return torch.load(str(p), map_location="cpu", weights_only=True, mmap=True)


def _key(k: Any, path: str) -> str:
    if not isinstance(k, str):
        raise NetdslError(f"the state_dict has a key {k!r} of type {type(k).__name__}: tensor "
                          "names are strings", path=path,
                          hint="save model.state_dict(), whose keys are the tensors' names")
    return k


def _real_array(k: str, a: np.ndarray, path: str) -> np.ndarray:
    if a.dtype.kind not in "fiub":
        raise NetdslError(f"'{k}' is a {a.dtype} tensor", path=path,
                          hint="netdsl loads real tensors: save a float model's weights")
    return a


def _dense(k: str, v: Any, path: str) -> Any:
    """``v`` if it is a dense, real tensor with its data here; else a NetdslError naming it."""
    import torch

    if not isinstance(v, torch.Tensor):
        why = f"a {type(v).__name__}, not a tensor"
    elif v.layout != torch.strided:
        why = f"a sparse tensor ({v.layout})"
    elif v.is_meta:
        why = "a meta tensor (shape only, no values)"
    elif v.is_quantized:
        why = f"a quantized tensor ({v.dtype})"
    elif v.is_complex():
        why = f"a complex tensor ({v.dtype})"
    else:
        return v
    raise NetdslError(f"'{k}' is {why}", path=path,
                      hint="netdsl loads dense real tensors: save a float model's state_dict")
