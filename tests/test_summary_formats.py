"""Per-layer tables for documents: Markdown, LaTeX and HTML rows like the notes' VGG16 table."""

from __future__ import annotations

import json

import pytest

import netdsl
from netdsl.summary import FORMATS

from .conftest import ROOT


def numbers(cell: str) -> int:
    return int(cell.strip().strip("*").replace(",", "") or 0)


def test_markdown_rows_are_the_notes_vgg16_memory_table() -> None:
    net = netdsl.load(ROOT / "specs" / "vgg16.net")
    lines = FORMATS["markdown"](net).splitlines()
    assert lines[0].startswith("Table: VGG-16 (configuration D): input 3×224×224, 16 weight")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[4:]]
    body, total = rows[:-1], rows[-1]
    assert body[0][:3] == ["input", "", "3×224×224"] and body[0][5] == "150,528"  # "150K"
    assert body[1][1] == "conv3-64" and body[1][5] == "3,211,264"  # "224*224*64 = 3.2M"
    assert all(r[1] != "relu" and not r[1].startswith("dropout") for r in body)
    assert len(body) == 1 + 13 + 5 + 3 + 1  # input, convs, pools, FCs, soft-max
    for col in (3, 4, 5):  # the rows add up to the totals
        assert sum(numbers(r[col]) for r in body) == numbers(total[col])


@pytest.mark.parametrize("fmt", ["markdown", "latex", "html"])
def test_document_formats_keep_the_totals(fmt: str) -> None:
    net = netdsl.load(ROOT / "specs" / "googlenet.net")
    out = FORMATS[fmt](net)
    assert f"{net.params:,}" in out and f"{net.macs:,}" in out
    assert "inception3a.branch2.conv2" in out.replace(r"\_", "_")


def test_latex_summary_is_booktabs() -> None:
    out = FORMATS["latex"](netdsl.load(ROOT / "specs" / "resnet18.net"))
    assert out.startswith("\\begin{table}[ht]\n\\centering\n\\caption{ResNet-18: input 3$\\times$")
    assert r"\begin{tabular}{lllrrr}" in out and r"\toprule" in out
    assert r"\bottomrule" in out and "×" not in out and r"$\times$" in out


def test_depth_folds_scopes_into_rows_with_their_totals() -> None:
    net = netdsl.load(ROOT / "specs" / "resnet50.net")
    full = FORMATS["markdown"](net)
    one = FORMATS["markdown"](net, False, 1)
    assert len(full.splitlines()) > 120 and len(one.splitlines()) < 20  # a page, not 3
    rows = {r[0]: r for r in ([c.strip() for c in x.strip("|").split("|")]
                              for x in one.splitlines() if x.startswith("| "))}
    layer3 = [x for x in net.layers() if x.name.startswith("layer3.")]
    assert rows["layer3"][1:4] == ["6 blocks", "1024×14×14", f"{sum(x.params for x in layer3):,}"]
    assert rows["layer3"][4] == f"{sum(x.macs for x in layer3):,}"
    body = [r for k, r in rows.items() if k not in ("layer", "**total**")]
    for col in (3, 4, 5):  # folded rows still add up to the totals
        assert sum(numbers(r[col]) for r in body) == numbers(rows["**total**"][col])
    two = FORMATS["table"](net, False, 2)
    assert "layer3.5" in two and "layer3.5.conv1" not in two
    google = FORMATS["table"](netdsl.load(ROOT / "specs" / "googlenet.net"), True, 1)
    assert "inception3a  4 branches" in google and "aux1 (aux)" in google


def test_every_format_has_the_same_rows() -> None:
    net = netdsl.load(ROOT / "specs" / "googlenet.net")
    names = []
    for fmt in ("table", "markdown", "html", "latex"):
        text = FORMATS[fmt](net).replace(r"\_", "_")
        names.append([n for n in ("input", "relu1", "conv1", "dropout1", "softmax1")
                      if f"{n} " in text or f">{n}<" in text or f"| {n} |" in text])
    assert all(x == ["input", "conv1", "softmax1"] for x in names), names


def test_totals_split_trainable_and_sizes_in_mb() -> None:
    text = FORMATS["table"](netdsl.load(ROOT / "specs" / "resnet50.net"))
    assert "params 25,557,032 trainable (25.56M), 53,120 non-trainable" in text
    assert "params 102.44 MB" in text  # (25,557,032 + 53,120) × 4 bytes
    data = json.loads(FORMATS["json"](netdsl.load(ROOT / "specs" / "resnet50.net")))
    assert data["non_trainable"] == 53_120  # 2 × the BN channels: running mean and variance


def test_small_networks_read_like_numbers() -> None:
    text = FORMATS["markdown"](netdsl.load(ROOT / "specs" / "lenet5.net"))
    assert text.startswith("Table: LeNet-5: input 1×32×32, 5 weight layers, 61.71K params, "
                           "0.42 MMACs")
    one = netdsl.loads("network one\ninput 4\nFC-2\n")
    assert "1 weight layer," in FORMATS["table"](one)


def test_summary_cli_depth() -> None:
    from netdsl.cli import main

    assert main(["summary", str(ROOT / "specs" / "resnet18.net"), "--depth", "1"]) == 0
    assert main(["summary", str(ROOT / "specs" / "resnet18.net"), "--depth", "0"]) == 2
