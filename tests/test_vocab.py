"""The modern CNN vocabulary: semantics the every-op conformance test cannot see."""

from __future__ import annotations

import numpy as np
import pytest

import netdsl

torch = pytest.importorskip("torch")


def _net(body: str, shape: str = "8x6x6") -> netdsl.Network:
    return netdsl.loads(f"network t\ninput {shape}\n{body}\n")


def test_droppath_drops_whole_examples_in_training_only() -> None:
    net = _net("residual { conv3-8; droppath 0.5 }")
    module = netdsl.to_torch(net)
    x = torch.randn(64, 8, 6, 6)
    with torch.no_grad():
        branch = module.conv1(x)
        torch.manual_seed(0)
        y = module.train()(x)
        y_eval = module.eval()(x)
    dropped = [bool(torch.equal(y[i], x[i])) for i in range(64)]
    kept = [bool(torch.allclose(y[i], x[i] + 2 * branch[i], atol=1e-5)) for i in range(64)]
    assert all(d or k for d, k in zip(dropped, kept, strict=True))
    assert 10 < sum(dropped) < 54  # about half of the examples lose their branch
    torch.testing.assert_close(y_eval, x + branch)


def test_layer_scale_is_the_layer_itself_and_starts_at_init() -> None:
    net = _net("blk = (conv1-8; layer_scale = layerscale init=0.25)")
    sd = netdsl.to_torch(net).state_dict()
    assert "blk.layer_scale" in sd and sd["blk.layer_scale"].shape == (8, 1, 1)
    assert torch.all(sd["blk.layer_scale"] == 0.25)
    assert net.params == 8 * 8 + 8 + 8


@pytest.mark.parametrize("count_pad", [True, False])
def test_avgpool_padding_divisor(count_pad: bool) -> None:
    word = "" if count_pad else " count_pad off"
    net = _net(f"avgpool3/1 pad 1{word}", "1x4x4")
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    corner = 4 / 9 if count_pad else 1.0  # 4 real pixels of 9 in the corner window
    with torch.no_grad():
        y = netdsl.to_torch(net)(torch.from_numpy(x)).numpy()
    got = netdsl.run_onnx(netdsl.to_onnx(net), x, device="cpu")
    assert y[0, 0, 0, 0] == pytest.approx(corner)
    assert got[0, 0, 0, 0] == pytest.approx(corner)


def test_channel_shuffle_interleaves_groups() -> None:
    net = _net("shuffle 2", "6x1x1")
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    y = netdsl.to_torch(net)(x).flatten().tolist()
    assert y == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_layernorm_over_channels_matches_convnext_layernorm2d() -> None:
    net = _net("layernorm eps=1e-6")
    module = netdsl.to_torch(net)
    x = torch.randn(2, 8, 6, 6)
    ref = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), eps=1e-6)
    torch.testing.assert_close(module(x), ref.permute(0, 3, 1, 2))
