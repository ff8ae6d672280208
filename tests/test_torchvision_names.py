"""torchvision's checkpoints load by name into the zoo specs that carry torchvision's names.

The specs name their layers as torchvision's modules are named (``features = [ … ]`` numbers
them as ``nn.Sequential`` does, ``block = …`` and ``classifier = [ … ]`` open torchvision's
scopes), so a torchvision state_dict saved as ``.pth`` loads with ``netdsl compile SPEC
--weights x.pth``: every key matched by name, none missing or left over. The compiled model must
hold every tensor where matching by position puts it (test_zoo.py checks that model strictly
against torchvision) and compute torchvision's output (constants randomized and BN statistics
calibrated first; at 224×224 and 20× input float32 rounding alone passes 1e-4, so one scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netdsl
from netdsl import cli
from netdsl.codegen.weights import match_weights, state_dict_order, tensor_specs

from .conftest import ROOT
from .torchvision_oracle import (
    calibrate_bn,
    import_torchvision,
    inputs,
    randomize_constants,
    relative_error,
)

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
numpy_helper = onnx.numpy_helper

NAMED = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0",
         "efficientnet_b4"]
TOL = 1e-4


def torchvision_model(stem: str) -> torch.nn.Module:
    tv = import_torchvision()
    torch.manual_seed(0)
    return getattr(tv.models, stem)(weights=None)


@pytest.mark.parametrize("stem", NAMED)
def test_state_dict_is_torchvisions_name_for_name(stem: str) -> None:
    net = netdsl.load(ROOT / "specs" / f"{stem}.net")
    ours = [(n, tuple(t.shape)) for n, t, _ in state_dict_order(tensor_specs(net))]
    theirs = [(k, tuple(v.shape)) for k, v in torchvision_model(stem).state_dict().items()
              if not k.endswith("num_batches_tracked")]
    assert ours == theirs


@pytest.mark.parametrize("stem", NAMED[:4])  # B4: names above, numbers in test_zoo.py
def test_compile_loads_a_torchvision_checkpoint_by_name(stem: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ref = torchvision_model(stem)
    randomize_constants(ref)
    calibrate_bn(ref, (3, 224, 224), batches=1, batch=2)
    ref.eval()
    pth, out = tmp_path / f"{stem}.pth", tmp_path / f"{stem}.onnx"
    torch.save(ref.state_dict(), pth)
    spec = ROOT / "specs" / f"{stem}.net"
    code = cli.main(["compile", str(spec), "--weights", str(pth), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    # by name, every tensor lands where matching by position (test_zoo.py's strict check) puts it
    model = onnx.load(str(out))
    got = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    state = {k: v.numpy() for k, v in ref.state_dict().items()}
    for name, w in match_weights(netdsl.load(spec), state, by_order=True).items():
        assert np.array_equal(got[name], w), name
    _, x = inputs((3, 224, 224), batch=1)[0]  # and it computes torchvision's output
    with torch.no_grad():
        y = ref(x)
    assert relative_error(y, netdsl.run_onnx(out, x.numpy(), "cpu")) <= TOL
