"""The course notes' worked examples (specs/examples/), reproduced from the specs."""

from __future__ import annotations

import subprocess
import sys

import netdsl

from .conftest import ROOT

EXAMPLES = ROOT / "specs" / "examples"


def test_naive_inception_output_and_cost() -> None:
    net = netdsl.load(EXAMPLES / "inception-naive.net")
    assert net.output_shape == ("N", 672, 28, 28)
    rows = {r.op: r.macs for r in net.layers()}
    assert rows["conv1-128"] == 28 * 28 * 128 * 1 * 1 * 256
    assert rows["conv3-192"] == 28 * 28 * 192 * 3 * 3 * 256
    assert rows["conv5-96"] == 28 * 28 * 96 * 5 * 5 * 256
    assert round(net.macs / 1e6) == 854


def test_reduced_inception_is_the_sum_of_the_slides_rows() -> None:
    net = netdsl.load(EXAMPLES / "inception-reduced.net")
    rows = [
        28 * 28 * 64 * 1 * 1 * 256, 28 * 28 * 64 * 1 * 1 * 256, 28 * 28 * 128 * 1 * 1 * 256,
        28 * 28 * 192 * 3 * 3 * 64, 28 * 28 * 96 * 5 * 5 * 64, 28 * 28 * 64 * 1 * 1 * 256,
    ]
    assert net.output_shape == ("N", 128 + 192 + 96 + 64, 28, 28)
    assert net.macs == sum(rows) == 271_351_808
    assert net.macs < netdsl.load(EXAMPLES / "inception-naive.net").macs / 3


def test_vgg16_memory_table_rows() -> None:
    net = netdsl.load(EXAMPLES / "vgg16-memory.net")
    weighted = [r for r in net.layers() if r.params]
    assert [r.params for r in weighted[:3]] == [1_728, 36_864, 73_728]
    assert [r.params for r in weighted[-3:]] == [102_760_448, 16_777_216, 4_096_000]
    assert weighted[0].activations == 224 * 224 * 64
    pools = [r.activations for r in net.layers() if r.op == "maxpool"]
    assert pools == [112 * 112 * 64, 56 * 56 * 128, 28 * 28 * 256, 14 * 14 * 512, 7 * 7 * 512]
    assert round(net.params / 1e6) == 138
    assert round(net.activations / 1e5) == 152  # 15.2M: the rows' sum, not the slide's 24M


def test_alexnet_first_layer() -> None:
    net = netdsl.load(ROOT / "specs" / "alexnet.net")
    conv1 = net.layers()[0]
    assert conv1.shape == ("N", 96, 55, 55) and conv1.params == 34_944
    assert not net.warnings


def test_alexnet_224_drops_pixels_and_strict_fails() -> None:
    spec = EXAMPLES / "alexnet-224.net"
    net = netdsl.load(spec)
    assert net.output_shape == ("N", 96, 54, 54)
    assert len(net.warnings) == 1 and "drops input pixels" in net.warnings[0].message
    ok = subprocess.run([sys.executable, "-m", "netdsl", "check", str(spec)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "warning: conv drops input pixels" in ok.stderr
    strict = subprocess.run([sys.executable, "-m", "netdsl", "check", "--strict", str(spec)],
                            capture_output=True, text=True)
    assert strict.returncode == 1
