"""Every spec in specs/: its golden summary, and the reference numbers from the issues."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from netdsl.summary import to_table

from .conftest import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden"

# Parameter counts (the oracle, from the issue and ../shared/REFERENCES.md): exact.
PARAMS = {
    "lenet5": 61_706,
    "alexnet": 60_965_224,
    "vgg11": 132_863_336, "vgg11-lrn": 132_863_336, "vgg13": 133_047_848,
    "vgg16-c": 133_638_952, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "googlenet": 6_998_552,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "resnet20": 269_722, "resnet56": 853_018, "resnet110": 1_727_962, "resnet1202": 19_421_274,
    "preact-resnet1001": 10_327_706,
    "resnext50-32x4d": 25_028_904,
    "wide-resnet50-2": 68_883_240, "wrn-28-10": 36_479_194,
    "se-resnet50": 28_088_024,
    "densenet121": 7_978_856,
    "swin_t": 28_288_354,  # torchvision 0.28 (tests/test_swin.py counts its model)
}
PARAMS_WITH_AUX = {"googlenet": 13_378_280}

# Multiply-adds: within 1% of the papers' figures.
MACS = {"vgg16": 15.47e9, "vgg19": 19.63e9, "resnet50": 3.86e9, "resnet152": 11.28e9,
        "googlenet": 1.58e9}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_golden_summary(spec: Path, update_golden: bool) -> None:
    got = to_table(netdsl.load(spec))
    golden = GOLDEN / f"{spec.stem}.txt"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"no golden for {spec.name}: run pytest --update-golden"
    assert got == golden.read_text(encoding="utf-8")


def test_specs_and_goldens_pair_one_to_one() -> None:
    goldens = {p.stem for p in GOLDEN.glob("*.txt")}
    assert goldens == {p.stem for p in SPECS}


def test_every_reference_architecture_has_a_spec() -> None:
    assert set(PARAMS) <= {p.stem for p in SPECS}


@pytest.mark.parametrize("stem", sorted(PARAMS))
def test_parameter_count_is_exact(stem: str) -> None:
    net = netdsl.load(ROOT / "specs" / f"{stem}.net")
    assert net.params == PARAMS[stem]
    assert net.params_training == PARAMS_WITH_AUX.get(stem, PARAMS[stem])


@pytest.mark.parametrize("stem", sorted(MACS))
def test_multiply_adds_within_one_percent(stem: str) -> None:
    net = netdsl.load(ROOT / "specs" / f"{stem}.net")
    assert net.macs == pytest.approx(MACS[stem], rel=0.01)


def test_vgg16_memory_and_parameter_table_of_the_notes() -> None:
    net = netdsl.load(ROOT / "specs" / "vgg16.net")
    convs = [r for r in net.layers() if r.op.startswith("conv")]
    first = convs[0]
    assert first.activations == 224 * 224 * 64  # "3.2M"
    assert first.params - 64 == 3 * 3 * 3 * 64  # 1,728 weights (+ 64 biases)
    assert net.activations == pytest.approx(15.2e6, rel=0.01)  # the rows' sum, not the slide's 24M
    assert round(net.params / 1e6) == 138


def test_summary_json_contract() -> None:
    out = subprocess.run([sys.executable, "-m", "netdsl", "summary", "--format", "json",
                          str(ROOT / "specs" / "vgg16.net")], capture_output=True, text=True,
                         check=True)
    data = json.loads(out.stdout)
    for key, kind in (("name", str), ("input", list), ("output", list), ("params", int),
                      ("macs", int), ("activations", int), ("layers", list)):
        assert isinstance(data[key], kind), key
    assert data["input"] == [3, 224, 224] and data["output"] == [1000]
    assert {"name", "op", "shape", "params", "macs"} <= set(data["layers"][0])
    assert data["layers"][0]["op"] == "conv3-64"
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]


# The papers' depth ("weight layers"): the longest signal path of conv and FC layers.
# WRN-28-10's name counts every convolution, shortcuts included, and not its FC (6N+4 with
# N = 4): 1 + 24 + 3 = 28; on the signal path it is 1 + 24 + 1 = 26 (README, "Depth").
DEPTH = {"resnet50": 50, "googlenet": 22, "vgg16": 16, "se-resnet50": 50, "resnet18": 18,
         "wrn-28-10": 26, "m5-audio": 5, "c3d-stages": 3}


@pytest.mark.parametrize("stem", sorted(DEPTH))
def test_weight_layers_are_the_papers_depth_everywhere(stem: str) -> None:
    from netdsl.table import build_table

    path = ROOT / "specs" / f"{stem}.net"
    net = netdsl.load(path)
    assert net.weight_layers == DEPTH[stem]
    assert f", {DEPTH[stem]} weight layers, " in to_table(net).splitlines()[0]
    assert build_table([net]).weight_layers == (DEPTH[stem],)
    out = subprocess.run([sys.executable, "-m", "netdsl", "summary", "--format", "json",
                          str(path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["weight_layers"] == DEPTH[stem]


def test_wrn_name_counts_every_convolution() -> None:
    """The other convention, computed independently: WRN-n-k's n is its number of convs."""
    net = netdsl.load(ROOT / "specs" / "wrn-28-10.net")
    assert sum(1 for lay in net.graph.layers() if lay.op == "conv") == 28
