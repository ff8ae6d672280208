"""The strict equivalence check must catch what a naive one misses."""

from __future__ import annotations

import copy

import pytest

from .torchvision_oracle import compare, import_torchvision, prepare, randomize_constants

torch = pytest.importorskip("torch")
SHAPE = (3, 64, 64)  # small images: the check is about the activations, not the resolution


@pytest.fixture(scope="module")
def mobilenet() -> torch.nn.Module:
    tv = import_torchvision()
    return prepare(tv.models.mobilenet_v2(weights=None), SHAPE)


def test_identical_models_agree(mobilenet: torch.nn.Module) -> None:
    twin = copy.deepcopy(mobilenet)
    assert compare(mobilenet, {"twin": twin}, SHAPE)["twin"] == 0.0


def test_relu_for_relu6_is_caught(mobilenet: torch.nn.Module) -> None:
    # The bug a naive comparison passed: ReLU standing in for ReLU6. With randomized BN
    # shifts and calibrated statistics it shows already at 1× input.
    wrong = copy.deepcopy(mobilenet)
    for m in list(wrong.modules()):
        for child, sub in list(m.named_children()):
            if isinstance(sub, torch.nn.ReLU6):
                setattr(m, child, torch.nn.ReLU())
    with pytest.raises(AssertionError, match="relu at"):
        compare(mobilenet, {"relu": wrong}, SHAPE)


def test_constants_are_randomized() -> None:
    tv = import_torchvision()
    m = tv.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                   hidden_dim=8, mlp_dim=16)
    changed = randomize_constants(m, extra=["encoder.pos_embedding"])
    assert "class_token" in changed and "encoder.pos_embedding" in changed
    assert "heads.head.weight" in changed and "heads.head.bias" in changed  # zero-initialized
    assert not torch.all(m.encoder.layers[0].ln_1.weight == 1)
