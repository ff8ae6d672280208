"""The ResNet paper's Table 1 from specs/resnet{18,34,50,101,152}.net, cell for cell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import netdsl
from netdsl.stagetable import Bracket, build_stage_table, is_staged
from netdsl.table import config_table

from .conftest import ROOT

DEPTHS = (18, 34, 50, 101, 152)
# He et al. 2016, Table 1: the blocks of conv2_x … conv5_x per network (stride 2 on entering
# conv3_x, conv4_x and conv5_x, stated in the table's caption).
BASIC = [["3×3, {c}", "3×3, {c}"]] * 2
BOTTLENECK = [["1×1, {c}", "3×3, {c}", "1×1, {e}"]] * 3
PAPER_BLOCKS = {
    64: [2, 3, 3, 3, 3], 128: [2, 4, 4, 4, 8], 256: [2, 6, 6, 23, 36], 512: [2, 3, 3, 3, 3]}
PAPER_FLOPS = (1.8, 3.6, 3.8, 7.6, 11.3)  # ×10⁹, "FLOPs" that are multiply-adds


@pytest.fixture(scope="module")
def nets() -> list[netdsl.Network]:
    return [netdsl.load(ROOT / "specs" / f"resnet{d}.net") for d in DEPTHS]


def test_rows_are_the_papers_stages(nets: list[netdsl.Network]) -> None:
    t = build_stage_table(nets)
    assert t.labels == ("18-layer", "34-layer", "50-layer", "101-layer", "152-layer")
    assert [(r.name, r.size) for r in t.rows] == [
        ("conv1", "112×112"), ("layer1", "56×56"), ("layer2", "28×28"), ("layer3", "14×14"),
        ("layer4", "7×7"), ("fc", "1×1")]
    assert t.rows[0].lines == ("7×7, 64, stride 2",)  # spans every column
    assert t.rows[1].lines[0] == "3×3 max pool, stride 2"
    assert t.rows[5].lines == ("average pool", "1000-d fc")


def test_block_cells_are_the_papers_brackets(nets: list[netdsl.Network]) -> None:
    t = build_stage_table(nets)
    for row, (c, times) in zip(t.rows[1:5], PAPER_BLOCKS.items(), strict=True):
        cells = row.lines[-1]
        assert isinstance(cells, tuple) and len(cells) == 5
        for k, (cell, n) in enumerate(zip(cells, times, strict=True)):
            shape = BASIC if k < 2 else BOTTLENECK
            lines = tuple(x.format(c=c, e=4 * c) for x in shape[0])
            assert cell == Bracket(lines, n, 1 if c == 64 else 2), (row.name, k)


def test_flops_row_matches_the_paper(nets: list[netdsl.Network]) -> None:
    t = build_stage_table(nets)
    measured = [m / 1e9 for m in t.macs]
    # The paper prints 3.66 and 3.86 ×10⁹ as 3.6 and 3.8 (truncated), the rest rounded.
    assert all(abs(m - p) < 0.07 for m, p in zip(measured, PAPER_FLOPS, strict=True)), measured
    md = config_table(nets, "markdown")
    assert ("| multiply-adds (FLOPs) | | 1.81×10⁹ | 3.66×10⁹ | 3.86×10⁹ | 7.57×10⁹ | 11.28×10⁹ |"
            in md)
    assert "| params | | 11.7M | 21.8M | 25.6M | 44.5M | 60.2M |" in md


def test_formats_render_the_same_cells(nets: list[netdsl.Network]) -> None:
    md = config_table(nets, "markdown")
    assert r"| layer3 | 14×14 | \[3×3, 256<br>3×3, 256\] ×2, stride 2 |" in md
    assert r"\[1×1, 256<br>3×3, 256<br>1×1, 1024\] ×36, stride 2 |" in md
    tex = config_table(nets, "latex")
    assert (r"$\left[\begin{array}{@{}c@{}}\mbox{1$\times$1, 64} \\ \mbox{3$\times$3, 64} \\ "
            r"\mbox{1$\times$1, 256}\end{array}\right]\times3$") in tex
    assert r"\multicolumn{5}{c}{7$\times$7, 64, stride 2}" in tex
    html = config_table(nets, "html")
    assert '<td colspan="5" align="center">3×3 max pool, stride 2</td>' in html
    assert "[3×3, 64<br>3×3, 64] ×3" in html


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (apt-get install texlive-latex-base)")
def test_latex_compiles(nets: list[netdsl.Network], tmp_path: Path) -> None:
    doc = (r"\documentclass{article}\usepackage{booktabs}\usepackage{graphicx}"
           r"\begin{document}\resizebox{\linewidth}{!}{" + config_table(nets, "latex")
           + r"}\end{document}")
    (tmp_path / "t.tex").write_text(doc)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]


def test_layout_is_chosen_from_the_graph() -> None:
    load = lambda s: netdsl.load(ROOT / "specs" / f"{s}.net")  # noqa: E731
    assert is_staged(load("resnet20")) and is_staged(load("resnext50-32x4d"))
    assert not is_staged(load("vgg16")) and not is_staged(load("googlenet"))
    mixed = config_table([load("lenet5"), load("resnet18")], "markdown")
    assert "layer name" not in mixed  # VGG's layout when not every network is residual
    forced = config_table([load("resnet20")], "markdown", layout="stages")
    assert forced.startswith("| layer name | output size | 20-layer |")
