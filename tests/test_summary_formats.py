"""Per-layer tables for documents: Markdown, LaTeX and HTML rows like the notes' VGG16 table."""

from __future__ import annotations

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
