"""The ViT paper's Table 1 (Layers | Hidden size D | MLP size | Heads | Params) from ViT specs."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.table import config_table
from netdsl.vittable import build_vit_table, is_transformer

from .conftest import ROOT

VIT_SPECS = [ROOT / "specs" / f"{s}.net" for s in ("vit_b_16", "vit_l_16")]
pytestmark = pytest.mark.skipif(not all(p.exists() for p in VIT_SPECS),
                                reason="the ViT specs (issue 11) are not in specs/ yet")


@pytest.fixture(scope="module")
def nets() -> list[netdsl.Network]:
    return [netdsl.load(p) for p in VIT_SPECS]


def test_rows_are_the_papers_table_1(nets: list[netdsl.Network]) -> None:
    rows = build_vit_table(nets)
    # Dosovitskiy et al. 2021, Table 1: ViT-Base 12, 768, 3072, 12, 86M; ViT-Large 24, 1024,
    # 4096, 16, 307M. Params without the head: ViT-L/16 is 304,326,632 in torchvision, of which
    # its 1024×1000 classifier is 1,025,000, so 303M (the paper's 307M is not reproducible).
    assert rows[0].cells()[1:] == ("12", "768", "3072", "12", "86M")
    assert rows[1].cells()[1:] == ("24", "1024", "4096", "16", "303M")
    assert rows[1].params == 304_326_632 - 1_025_000


def test_layout_is_detected_from_the_graph(nets: list[netdsl.Network]) -> None:
    assert all(map(is_transformer, nets))
    assert not is_transformer(netdsl.load(ROOT / "specs" / "resnet50.net"))
    md = config_table(nets, "markdown")
    assert md.startswith("| Model | Layers | Hidden size D | MLP size | Heads | Params |")
    assert "| ViT-B/16 | 12 | 768 | 3072 | 12 | 86M |" in md
    tex = config_table(nets, "latex")
    assert r"\toprule" in tex and "ViT-L/16 & 24 & 1024 & 4096 & 16 & 303M" in tex
    assert "<td>1024</td>" in config_table(nets, "html")


def test_stages_of_a_hierarchical_transformer_each_get_their_value() -> None:
    """Swin-T (Liu et al. 2021, Table 7): C = 96 doubling per stage, MLP ratio 4, heads
    3/6/12/24, 2+2+6+2 blocks; one value per stage, in order, not stage 1's alone."""
    (row,) = build_vit_table([netdsl.load(ROOT / "specs" / "swin_t.net")])
    assert row.cells()[1:5] == ("12", "96, 192, 384, 768", "384, 768, 1536, 3072",
                                "3, 6, 12, 24")
    assert row.params == 28_288_354 - (768 * 1000 + 1000)  # without the classifier head


def test_a_value_that_returns_to_an_earlier_one_keeps_its_stage() -> None:
    """Heads 3, 6, 3 over three stages printed '3, 6' (distinct values, not stages), so the
    columns no longer lined up with the stages."""
    net = netdsl.loads("input 3x52x44\nconv4-24/4\ngrid\nwattention heads=3 window=7\n"
                       "patchmerge\nwattention heads=6 window=7\npatchmerge\n"
                       "wattention heads=3 window=7\nwattention heads=3 window=7\n"
                       "avgtokens\nFC-10\n", "t.net")
    row = build_vit_table([net])[0]
    assert row.cells()[1:5] == ("4", "24, 48, 96", "24, 48, 96", "3, 6, 3")
