"""Drawings: pydot graphs for every spec, depth collapsing, Graphviz present or not."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

import netdsl
from netdsl import draw as D
from netdsl.errors import NetdslError

from .conftest import ROOT, SPECS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


def load(stem: str) -> netdsl.Network:
    return netdsl.load(ROOT / "specs" / f"{stem}.net")


def node_labels(g: object) -> list[str]:
    out = []

    def walk(sub: object) -> None:
        for n in sub.get_nodes():  # type: ignore[attr-defined]
            label = n.get("label")
            if label:
                out.append(str(label))
        for s in sub.get_subgraphs():  # type: ignore[attr-defined]
            walk(s)

    walk(g)
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("depth", [None, 1, 2])
def test_every_spec_draws_at_every_depth(spec: Path, depth: int | None) -> None:
    net = netdsl.load(spec)
    g = D.to_dot(net, depth)
    text = g.to_string()
    assert text.startswith("digraph") and "->" in text
    assert "<b>input</b>" in text


def test_nodes_use_the_papers_notation_and_fold_chains() -> None:
    labels = node_labels(D.to_dot(load("vgg16")))
    assert any("<b>conv3-64</b> +relu" in x and "64×224×224" in x for x in labels)
    assert any("<b>FC-4096</b> +relu +dropout 0.5" in x for x in labels)
    assert sum("<b>maxpool</b>" in x for x in labels) == 5
    assert len(labels) == 1 + 13 + 5 + 3  # input, convs, pools, FCs (relu/dropout folded)


def test_depth_collapses_scopes_and_merges_repeated_blocks() -> None:
    net = load("resnet152")
    full = node_labels(D.to_dot(net))
    one = node_labels(D.to_dot(net, 1))
    two = node_labels(D.to_dot(net, 2))
    assert len(one) == 1 + 2 + 4 + 2  # input, stem conv and pool, 4 stages, gap and FC
    assert len(one) < len(two) < 20 < len(full)
    assert any("layer3.1 … layer3.35 ×35" in x for x in two)
    assert any("downsample: conv1-256" in x for x in two)
    assert any("3 blocks, 9 weight layers" in x for x in one)
    clusters = D.to_dot(net, 2).get_subgraphs()
    assert sorted(c.get("label") for c in clusters) == [f"<layer{i}>" for i in range(1, 5)]


@needs_dot
@pytest.mark.parametrize("rankdir", ["TB", "LR"])
@pytest.mark.parametrize("depth", [None, 2])
def test_inception_branches_stay_in_spec_order(rankdir: str, depth: int | None) -> None:
    import subprocess

    net = load("googlenet")
    plain = subprocess.run(["dot", "-Tplain"], input=D.to_dot(net, depth, rankdir).to_string(),
                           capture_output=True, text=True, check=True).stdout
    modules = {x.name.split(".")[0] for x in net.graph.layers() if ".branch" in x.name}
    assert len(modules) == 9
    for module in modules:
        firsts = {}  # branch -> its first node's position across the page (x, or -y for LR)
        for line in plain.splitlines():
            f = line.split()
            if f[0] == "node" and f"{module}.branch" in f[1]:
                branch = f[1].split(".")[1].strip('"')
                pos = float(f[2]) if rankdir == "TB" else -float(f[3])
                firsts[branch] = min(pos, firsts.get(branch, pos))
        order = sorted(firsts, key=firsts.__getitem__)
        assert order == ["branch1", "branch2", "branch3", "branch4"], module


def test_auxiliary_heads_are_dashed() -> None:
    text = D.to_dot(load("googlenet"), 1).to_string()
    assert "dashed" in text and "aux1" in text


def test_bad_arguments() -> None:
    with pytest.raises(NetdslError, match="depth must be"):
        D.to_dot(load("vgg11"), 0)
    with pytest.raises(NetdslError, match="rankdir"):
        D.to_dot(load("vgg11"), None, "XY")
    with pytest.raises(NetdslError, match="drawing format"):
        D.draw(load("vgg11"), "/tmp/x.jpg")


def test_missing_dot_is_a_clear_error_and_dot_output_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D.shutil, "which", lambda prog: None)
    net = load("vgg11")
    with pytest.raises(NetdslError, match="needs Graphviz's 'dot'") as e:
        D.draw(net, tmp_path / "vgg11.svg")
    assert e.value.hint and "apt-get install graphviz" in e.value.hint
    assert not (tmp_path / "vgg11.svg").exists()
    D.draw(net, tmp_path / "vgg11.dot")
    assert (tmp_path / "vgg11.dot").read_text().startswith('digraph "vgg11"')
    assert net._repr_svg_() is None
    html = net._repr_html_()
    assert "<table" in html and "<svg" not in html and "conv3-64" in html


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"),
                                        ("pdf", b"%PDF")])
def test_render_with_graphviz(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"googlenet.{fmt}"
    D.draw(load("googlenet"), out, depth=2)
    assert out.read_bytes().startswith(magic)
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


@needs_dot
def test_jupyter_reprs_with_graphviz() -> None:
    net = load("resnet50")
    svg = net._repr_svg_()
    assert svg is not None and "<svg" in svg
    html = net._repr_html_()
    assert "<svg" in html and "netdsl-summary" in html and "<?xml" not in html


@needs_dot
def test_draw_cli(tmp_path: Path) -> None:
    from netdsl.cli import main

    out = tmp_path / "r.svg"
    assert main(["draw", str(ROOT / "specs" / "resnet152.net"), "--depth", "1",
                 "--rankdir", "LR", "-o", str(out)]) == 0
    assert "layer3" in out.read_text()


def test_committed_drawing_is_small() -> None:
    img = ROOT / "docs" / "resnet152.svg"
    assert img.exists() and img.stat().st_size < 100_000


def test_draw_is_not_on_the_check_path() -> None:
    import subprocess
    import sys

    code = ("import sys, netdsl; netdsl.load('specs/resnet50.net'); "
            "sys.exit(1 if 'pydot' in sys.modules or 'pygments' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ---- size guard, folds, options --------------------------------------------------------------
def dense_net(units: int) -> netdsl.Network:
    return netdsl.loads(f"network d\ninput 3x32x32\nblock u() {{ conv3-12 }}\n"
                        f"dense {{ u() ×{units} }}\n")


def wide_net(branches: int) -> netdsl.Network:
    return netdsl.loads("network c\ninput 3x8x8\nconcat {\n"
                        + "\n| ".join(["conv1-1"] * branches) + "\n}\n")


def test_dense_joins_are_drawn_as_a_chain_of_concats() -> None:
    from netdsl import layout

    d = layout.build(dense_net(64))
    assert len(d.edges) < 3 * 64 + 5  # linear: 2,208 edges when every concat input was drawn
    assert d.cost < layout.MAX_COST
    text = D.to_dot(dense_net(64)).to_string()
    assert '"concat2" -> "concat3"' in text and '"input" -> "concat3"' not in text
    assert '"u3.conv1" -> "concat3"' in text


def test_too_large_a_drawing_is_refused_with_the_depth_that_fits() -> None:
    net = wide_net(2000)
    with pytest.raises(NetdslError, match="too large to lay out: 2,002 nodes") as e:
        D.to_dot(net)
    assert e.value.hint and e.value.hint.endswith("--depth 1")
    labels = node_labels(D.to_dot(net, 1))  # identical parallel branches fold into one node
    assert len(labels) == 3
    assert any("branch1 … branch2000 ×2000" in x for x in labels)


@needs_dot
def test_draw_answers_in_seconds_on_a_dense_block(tmp_path: Path) -> None:
    import subprocess

    text = D.to_dot(dense_net(256)).to_string()  # Graphviz took over 600 s on all 33,000 edges
    subprocess.run(["dot", "-Tsvg", "-o", str(tmp_path / "d.svg")], input=text, text=True,
                   check=True, timeout=60)


def test_every_branch_of_a_construct_is_boxed() -> None:
    text = D.to_dot(load("googlenet")).to_string()
    for b in range(1, 5):
        assert f"label=<branch{b}>" in text
    assert text.count("label=<branch1>") == 9  # one per inception module


def test_no_aux_no_title_and_dpi() -> None:
    net = load("googlenet")
    full = D.to_dot(net).to_string()
    bare = D.to_dot(net, aux=False, title=False, dpi=300).to_string()
    assert "aux1" in full and "aux" not in bare
    assert "params ·" in full and "params ·" not in bare.split("node [")[0]
    assert "dpi=300" in bare
    with pytest.raises(NetdslError, match="dpi"):
        D.to_dot(net, dpi=0)


def test_small_networks_read_in_small_units() -> None:
    text = D.to_dot(load("lenet5")).to_string()
    assert "0.42 MMACs" in text and "GMACs" not in text


def test_check_and_repr_read_small_numbers() -> None:
    from netdsl.cli import main

    one = netdsl.loads("network one\ninput 4\nFC-2\n")
    assert repr(one) == "<Network one: 1 layer, 10 params, 8 MACs>"
    assert "0.42 MMACs" in repr(load("lenet5"))
    assert main(["check", str(ROOT / "specs" / "resnet50.net")]) == 0


def test_aux_heads_are_named_once() -> None:
    from netdsl.summary import to_table

    net = load("googlenet")
    aux = [x.name for x in net.graph.layers() if x.aux]
    assert "aux1.fc1" in aux and "aux2.fc2" in aux  # torchvision's GoogLeNet: aux1.fc1, aux2.fc2
    assert not any(".aux" in x for x in aux)
    text = D.to_dot(net).to_string()
    assert "aux1.aux1" not in text and "aux2.aux1" not in text
    assert text.count("label=<aux1>") == 1 and text.count("label=<aux2>") == 1
    assert "aux2.fc1 (aux)" in to_table(net, training=True)
    assert netdsl.loads("network t\ninput 8x8x8\nconv3-8\naux { gap; FC-3 }\n"
                        "conv3-8; gap; FC-5\n").graph.outputs == ["fc1", "aux1.fc1"]
