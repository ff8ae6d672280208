"""The benchmark harness measures what it says (no timing is asserted: see benchmarks/)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
harness = pytest.importorskip("harness")


def test_peak_rss_is_the_childs_own() -> None:
    # In a fresh, small interpreter: Linux reports a child's peak as at least its parent's
    # (here pytest's, large by now), which is why the suite's driver stays small.
    code = f"""
import sys
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
import harness
small = harness.run_process([sys.executable, "-c", "pass"])
big = harness.run_process([sys.executable, "-c",
                           "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"])
assert small.returncode == big.returncode == 0
assert big.maxrss_bytes - small.maxrss_bytes > 250 << 20, (small, big)
assert small.maxrss_bytes < 100 << 20, small
assert big.wall_s > 0 and big.cpu_s > 0
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_child_output_and_failure_are_reported() -> None:
    r = harness.run_process([sys.executable, "-c", "print('{\"a\": 1}'); raise SystemExit(3)"])
    assert r.returncode == 3 and r.json() == {"a": 1}
    with pytest.raises(harness.ChildFailed, match="exit 3"):
        harness.measure([sys.executable, "-c", "raise SystemExit(3)"], repeats=1)


def test_children_import_this_checkout() -> None:
    r = harness.run_process([sys.executable, "-c", "import netdsl; print(netdsl.__file__)"],
                            cwd=ROOT.parent)
    assert r.stdout.strip().startswith(str(ROOT))


def test_stats_and_exponent() -> None:
    s = harness.Stats([3.0, 1.0, 2.0])
    assert (s.median, s.lo, s.hi) == (2.0, 1.0, 3.0)
    assert s.fmt() == "2.00 s (1.00–3.00, n=3)"
    xs = [10, 100, 1000, 10000]
    assert harness.fit_exponent(xs, [3e-5 * x for x in xs]) == pytest.approx(1.0)
    assert harness.fit_exponent(xs, [x * x for x in xs]) == pytest.approx(2.0)


def test_committed_results_render_and_readme_has_the_block() -> None:
    import json

    report = pytest.importorskip("inference_report")
    raw = json.loads((ROOT / "benchmarks" / "results.json").read_text(encoding="utf-8"))
    md = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    headlines: list[str] = []
    for name, res in raw.get("latency", {}).items():  # the report is this rendering of the data
        assert report.latency_text(name, res, headlines) in md
    if "precision" in raw:
        assert report.precision_text(raw["precision"]) in md
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run = pytest.importorskip("run")
    assert run.README_BEGIN in readme and run.README_END in readme


def test_a_missing_optional_piece_skips_its_rows_with_the_reason() -> None:
    import json

    report = pytest.importorskip("inference_report")
    raw = json.loads((ROOT / "benchmarks" / "results.json").read_text(encoding="utf-8"))
    res = json.loads(json.dumps(raw["latency"]["resnet50"]))  # as the child writes it now
    why = "the dynamo exporter needs onnxscript (pip install 'netdsl[bench]')"
    for b in res["batches"].values():
        for key in ("ms", "median_ms", "cpu_median_ms", "paired_ratio", "paired_cpu_ratio",
                    "max_abs_diff_vs_eager"):
            b[key].pop("torch-dynamo", None)
    for key in ("nodes", "ort_nodes", "kernel_ms"):
        res[key].pop("torch-dynamo")
    res.update(skipped={"torch-dynamo": why}, threads=2)
    headlines: list[str] = []
    text = report.latency_text("resnet50", res, headlines)
    assert f"| 1 | torch-exported ONNX, dynamo (onnxruntime) | skipped: {why} |" in text
    assert "torch dynamo" not in text and "PyTorch eager, 2 threads like onnxruntime" in text
    assert f"dynamo not run ({why})" in headlines[0]
