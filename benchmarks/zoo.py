"""Report tables of the torchvision-zoo section (``run.py --only zoo``)."""

from __future__ import annotations

from harness import Series, ok, table


def zoo_check_rows(rows: list[tuple[str, Series]], target: float, headlines: list[str]) -> str:
    """`netdsl check` cold start of each zoo spec against the target."""
    lines = []
    for stem, ser in rows:
        w = ser.wall
        lines.append([f"`netdsl check specs/{stem}.net`", w.fmt(), f"{ser.cpu.median:.2f} s",
                      f"{w.median:.2f} s, {ok(w.median <= target)}"])
    worst = max(rows, key=lambda r: r[1].wall.median)
    headlines.append(f"`netdsl check` of torchvision's models: slowest {worst[0]} "
                     f"{worst[1].wall.median:.2f} s (target ≤ {target} s)")
    return ("Cold start, whole process, each spec named after torchvision's model.\n\n"
            + table(["command", "wall time", "CPU", f"target ≤ {target} s"], lines))


def zoo_latency_text(res: dict, target: float, headlines: list[str]) -> str:
    """netdsl's ONNX against torchvision's torch-exported ONNX (``children/zoo_latency.py``)."""
    name = res["model"]
    rows = []
    for batch, b in res["batches"].items():
        med = b["median_ms"]
        r = b["paired_ratio"]
        rows.append([batch, f"{med['netdsl']:.1f} ms", f"{med['torch-legacy']:.1f} ms",
                     f"{r:.3f} ({ok(r <= target)})", f"{b['paired_cpu_ratio']:.3f}",
                     f"{b['control_ratio']:.3f}", b["rounds"],
                     f"{b['rel_diff_vs_eager']['netdsl']:.1e}"])
        headlines.append(f"onnxruntime CPU {name} batch {batch}: netdsl {med['netdsl']:.1f} ms, "
                         f"netdsl/torch-exported torchvision {r:.3f} (target ≤ {target})")
    n, t = res["nodes"]["netdsl"], res["nodes"]["torch-legacy"]
    on, ot = res["ort_nodes"]["netdsl"], res["ort_nodes"]["torch-legacy"]
    ops = sorted(set(n) | set(t) | set(on) | set(ot))
    node_rows = [[op, n.get(op, 0), t.get(op, 0), on.get(op, 0), ot.get(op, 0)] for op in ops]
    node_rows.append(["**total**", sum(n.values()), sum(t.values()), sum(on.values()),
                      sum(ot.values())])
    return (f"### {name}\n\n"
            + table(["batch", "netdsl", "torch-exported", "netdsl / torch (paired)",
                     "CPU-time ratio", "A/A control", "rounds",
                     "netdsl vs eager (max|diff|/max|y|)"], rows)
            + "\n\nTwo onnxruntime sessions per model, timed in a rotating order; each ratio is "
              "the median over rounds. The A/A control times the torch-exported model's two "
              "sessions against each other: ratios within its distance of 1 are noise."
            + "\n\nNodes as written and after onnxruntime's optimizations:\n\n"
            + table(["op", "netdsl", "torch-exported", "netdsl (ORT)", "torch (ORT)"],
                    node_rows))
