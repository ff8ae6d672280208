"""Language features beyond the reference specs: each checked through shapes, names and counts."""

from __future__ import annotations

import pytest

import netdsl
from netdsl import NetdslError


def load(text: str) -> netdsl.Network:
    return netdsl.loads(text, "t.net")


def shapes(net: netdsl.Network) -> dict[str, tuple[object, ...]]:
    return {r.name: r.shape[1:] for r in net.layers(training=True)}


def test_vgg_notation_variants_are_equivalent() -> None:
    a = load("input 3x32x32\nconv3-64 ×2; maxpool; FC-10; soft-max")
    b = load("input 3×32×32\nconv3-64 x2\nmaxpool\nfc-10\nsoftmax  # comment")
    c = load("input 3 x 32 x 32; conv3-64 x 2; MAXPOOL; Fc-10; Soft-Max")
    assert [r.op for r in a.layers()] == [r.op for r in b.layers()] == [r.op for r in c.layers()]
    assert a.params == b.params == c.params


def test_exact_size_rule_padding_stride_dilation_and_ceil() -> None:
    net = load("""input 3x35x35
        a = conv3-8                  # same padding for odd kernels
        b = conv4-8                  # even kernel: no default padding
        c = conv3-8/2 pad 0          # floor((33 - 3)/2) + 1
        d = conv3-8 dilation 2       # span 5, padding 2: size kept
        e = conv1x7-8                # non-square, padding (0, 3)
        f = maxpool3/2 ceil          # ceil((16 - 3)/2) + 1 = 8
        g = maxpool3/2               # floor: 7
    """)
    s = shapes(net)
    assert s["a"] == (8, 35, 35) and s["b"] == (8, 32, 32) and s["c"] == (8, 15, 15)
    assert s["d"] == (8, 15, 15) and s["e"] == (8, 15, 15)
    assert s["f"] == (8, 7, 7) and s["g"] == (8, 3, 3)


def test_groups_depthwise_and_bias() -> None:
    net = load("input 32x8x8\ndw = conv3-32 groups 32 bias off\npw = conv1-64\n"
               "g = conv3-64 groups=4")
    p = {r.name: r.params for r in net.layers()}
    assert p == {"dw": 32 * 9, "pw": 32 * 64 + 64, "g": 64 * 16 * 9 + 64}


def test_activations_and_their_arguments() -> None:
    net = load("input 10\nFC-10 +leakyrelu 0.2 +elu 0.5 +tanh +sigmoid +identity +relu")
    ops = [r.op for r in net.layers()]
    assert ops == ["FC-10", "leakyrelu 0.2", "elu", "tanh", "sigmoid", "identity", "relu"]
    assert net.layers()[2].shape == ("N", 10)


def test_blocks_with_defaults_keywords_and_arithmetic() -> None:
    net = load("""input 16x8x8
        block b(c, s=1, e=4) { conv1-c/s; conv1-(e*c + c % 3 - 2 // 2) }
        x = b(8)
        y = b(c=4, s=2, e=2)
    """)
    s = shapes(net)
    assert s["x.conv2"] == (4 * 8 + 8 % 3 - 1, 8, 8)
    assert s["y.conv1"] == (4, 4, 4) and s["y.conv2"] == (2 * 4 + 4 % 3 - 1, 4, 4)


def test_naming_scopes_follow_repetition() -> None:
    net = load("""input 3x8x8
        block u(c) { conv3-c; relu }
        stem = conv3-8
        layer1 = u(8) ×2
        (conv3-8; relu) ×2
        u(8)
        head = (gap; FC-2)
    """)
    names = [r.name for r in net.layers()]
    assert names == ["stem", "layer1.0.conv1", "layer1.0.relu1", "layer1.1.conv1",
                     "layer1.1.relu1", "conv1", "relu1", "conv2", "relu2", "u1.conv1", "u1.relu1",
                     "head.gap1", "head.fc1"]


def test_named_chains_sequential_and_flat_concat_name_as_torchvision() -> None:
    """The names torchvision's state_dicts use: BasicConv2d's conv/bn, nn.Sequential's
    positions counting parameter-less modules, branches without branch scopes, `block`."""
    net = load("""input 3x8x8
        block fire(s, e) {
            squeeze = conv1-s; relu
            concat flat { expand1x1 = conv1-e; relu | expand3x3 = conv3-e +bn +relu }
        }
        stem = conv3-8 +bn +relu +conv1-8
        features = [conv3-8 +bn +relu; maxpool; (conv3-8 +bn) ×2; fire(2, 4)]
        block = (0 = conv3-8; 2 = conv3-8)
        concat { conv1-2 | conv1-2 }
    """)
    names = [r.name for r in net.layers()]
    assert names == [
        "stem.conv1", "stem.bn", "stem.relu", "stem.conv2",
        "features.0", "features.1", "features.2", "features.3", "features.4", "features.5",
        "features.6", "features.7",
        "features.8.squeeze", "features.8.relu1", "features.8.expand1x1", "features.8.relu2",
        "features.8.expand3x3.conv", "features.8.expand3x3.bn", "features.8.expand3x3.relu",
        "features.8.concat1", "block.0", "block.2", "branch1.conv1", "branch2.conv1", "concat1"]


def test_the_keyword_block_names_a_scope() -> None:
    """torchvision's ConvNeXt and MobileNetV3 hold `features.1.0.block.0.weight`."""
    net = load("""input 3x8x8
        block b(c) { block = (0 = conv3-c; 2 = conv1-c); relu }
        features = (b(4); b(4))
        block = conv1-2
    """)
    names = [r.name for r in net.layers()]
    assert names == ["features.0.block.0", "features.0.block.2", "features.0.relu1",
                     "features.1.block.0", "features.1.block.2", "features.1.relu1", "block"]


@pytest.mark.parametrize(("option", "params", "ops"), [
    ("A", 0, ["shortcut A-16/2"]),
    ("B", 8 * 16 + 32, ["conv1-16/2", "BN"]),
    ("C", 8 * 16 + 32, ["conv1-16/2", "BN"]),
])
def test_residual_shortcut_options(option: str, params: int, ops: list[str]) -> None:
    body = "residual shortcut={o} {{ conv3-16/2 bias off +bn }}"
    net = load(f"input 8x8x8\n{body.format(o=option)}")
    branch = 16 * 8 * 9 + 32
    assert net.params == branch + params
    assert [r.op for r in net.layers()][2:-1] == ops
    same = load(f"input 8x8x8\n{body.format(o=option).replace('16/2', '8')}")
    extra = 8 * 8 + 16 if option == "C" else 0  # C projects even where shapes agree
    assert same.params == 8 * 8 * 9 + 16 + extra


def test_explicit_shortcut_and_projection_without_bn() -> None:
    net = load("input 8x8x8\nresidual { conv3-16 } shortcut { conv1-16 bias off }")
    assert [r.name for r in net.layers()] == ["conv1", "downsample.conv1", "add1"]
    net = load("input 8x8x8\nresidual projection=conv { conv3-16 bias off }")
    assert [r.op for r in net.layers()] == ["conv3-16", "conv1-16", "add"]


def test_dense_connectivity_concatenates_all_earlier_outputs() -> None:
    net = load("input 4x8x8\nblock l() { bn; relu; conv3-2 }\ndense { l() ×3 }")
    convs = [r for r in net.layers() if r.op.startswith("conv")]
    # each unit sees 4, 6, 8 channels; the block outputs 4 + 3·2
    assert [r.params for r in convs] == [2 * c * 9 + 2 for c in (4, 6, 8)]
    assert net.output_shape == ("N", 10, 8, 8)


def test_scale_multiplies_by_a_channel_gate() -> None:
    net = load("input 32x4x4\nscale { gap; FC-2 +relu; FC-32 +sigmoid }")
    assert net.output_shape == ("N", 32, 4, 4)
    assert net.params == 32 * 2 + 2 + 2 * 32 + 32


def test_dag_escape_with_named_inputs() -> None:
    net = load("""input 3x8x8
        stem = conv3-4
        a = conv3-4 from stem
        b = conv1-4 from stem
        s = add from a, b
        c = concat from s, input, a
        y = mul from c, g
    """.replace("        y = mul from c, g\n", ""))
    assert net.output_shape == ("N", 11, 8, 8)
    lay = net.graph["c"]
    assert lay.inputs == ("s", "input", "a")  # operand order is explicit


def test_aux_heads_exist_in_training_only() -> None:
    net = load("input 8x8x8\nconv3-8\naux { gap; FC-3 }\nconv3-8; gap; FC-5")
    assert [r.name for r in net.layers()] == ["conv1", "conv2", "gap1", "fc1"]
    assert net.graph.outputs == ["fc1", "aux1.fc1"]
    assert net.params_training - net.params == 8 * 3 + 3


def test_hidden_activation_skips_output_layers() -> None:
    net = load("input 8\nactivation tanh\nFC-8; aux { FC-2 }; FC-4; dropout 0.5; FC-3; softmax")
    assert [r.op for r in net.layers(training=True)] == [
        "FC-8", "tanh", "FC-2", "FC-4", "tanh", "dropout 0.5", "FC-3", "soft-max"]


def test_header_and_includes(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "lib").mkdir()
    (root / "lib" / "blocks.net").write_text("block two(c) { conv3-c ×2 }\n")
    (root / "net.net").write_text('network demo "Demo net"\ncite "Someone 2024"\n'
                                  'init glorot uniform\ninput 3x8x8\ninclude "lib/blocks.net"\n'
                                  "two(4)\n")
    net = netdsl.load(root / "net.net")
    assert (net.name, net.header.title, net.header.cite) == ("demo", "Demo net", "Someone 2024")
    assert net.header.init == ("glorot", "uniform")
    assert [r.name for r in net.layers()] == ["two1.conv1", "two1.conv2"]


@pytest.mark.parametrize(("text", "message"), [
    ("input 3x8x8\nconv3-0", "invalid output channels for conv: got 0, expected at least 1"),
    ("input 3x8x8\ndropout 1.5", "invalid p for dropout: got 1.5, expected in [0, 1)"),
    ("input 3x8x8\nconv3-6 groups 4", "groups 4 does not divide the 6 output channels"),
    ("input 3x4x4\nconv7-8 pad 0", "larger than its padded input 4"),
    ("input 3x8x8\nconcat { conv3-4 | conv3-4/2 }", "concat of different spatial sizes"),
    ("input 3x8x8\nFC-4; conv3-4", "conv expects a map, got a vector of 4 features"),
    ("input 3x8x8\nblock b() { b() }\nb()", "block 'b' calls itself (b -> b)"),
    ("input 3x8x8\nconv3-4 ×0", "repetition must be a whole number ≥ 1, got 0"),
    ("input 3x8x8\ny = add from a, input", "unknown input 'a'"),
    ("conv3-4", "the spec has no 'input' line"),
])
def test_errors_are_located_netdsl_errors(text: str, message: str) -> None:
    with pytest.raises(NetdslError) as e:
        load(text)
    assert message in str(e.value)
    assert str(e.value).startswith("t.net:")
