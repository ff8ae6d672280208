"""compile_onnx's direct writer produces exactly the model to_onnx builds, and still checks it."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import netdsl
from netdsl.codegen import onnx as onnx_codegen

from .conftest import ROOT


@pytest.mark.parametrize("spec", ["lenet5", "resnet20", "googlenet"])
def test_written_file_is_to_onnx(spec: str, tmp_path: Path) -> None:
    net = netdsl.load(ROOT / "specs" / f"{spec}.net")
    out = tmp_path / "m.onnx"
    onnx_codegen.compile_onnx(net, out)
    written = onnx.ModelProto.FromString(out.read_bytes())
    assert written == netdsl.to_onnx(net)


def test_invalid_graph_is_still_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = netdsl.load(ROOT / "specs" / "lenet5.net")
    lower = onnx_codegen.lower

    def broken(*args, **kwargs):  # a node reading a value nobody produces
        model, params = lower(*args, **kwargs)
        model.graph.node[0].input[0] = "nowhere"
        return model, params

    monkeypatch.setattr(onnx_codegen, "lower", broken)
    with pytest.raises(netdsl.NetdslError, match="invalid"):
        onnx_codegen.compile_onnx(net, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
