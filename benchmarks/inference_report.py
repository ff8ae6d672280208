"""Rendering of the inference rows (CPU latency, GPU, reduced precision) from children's JSON."""

from __future__ import annotations

from harness import mib, ok, table

LATENCY_RATIO = 1.02  # target: netdsl's ONNX at most 2% slower than the torch-exported one


def latency_text(name: str, res: dict, headlines: list[str], target: float = LATENCY_RATIO,
                 exported: str = "") -> str:
    """The tables of one model's latency run (``children/latency.py``).

    ``target``: the netdsl/torch-exported ratio to meet; ``exported``: what torch exported.
    """
    variants = ["netdsl", "torch-legacy", "torch-dynamo", "eager", "eager-1t"]
    labels = {"netdsl": "netdsl ONNX (onnxruntime)",
              "torch-legacy": "torch-exported ONNX, legacy (onnxruntime)",
              "torch-dynamo": "torch-exported ONNX, dynamo (onnxruntime)",
              "eager": "PyTorch eager",
              "eager-1t": "PyTorch eager, 1 thread"}
    rows = []
    verdicts = []
    timed = next(iter(res["batches"].values()))["median_ms"]
    variants = [v for v in variants if v in timed]  # a run may skip eager-1t
    for batch, b in res["batches"].items():
        med = b["median_ms"]
        paired = b["paired_ratio"]
        cpu, pcpu = b["cpu_median_ms"], b["paired_cpu_ratio"]
        for v in variants:
            ms = b["ms"][v]
            p10, p90 = ms[len(ms) // 10], ms[(len(ms) * 9) // 10]
            diff = b["max_abs_diff_vs_eager"].get(v)
            rows.append([batch, labels[v], f"{med[v]:.1f} ms ({p10:.1f}–{p90:.1f})",
                         f"{paired[v]:.3f}", f"{cpu[v]:.1f} ms", f"{pcpu[v]:.3f}",
                         "—" if diff is None else f"{diff:.1e}"])
        parts = [f"netdsl/{v} {paired[v]:.3f} ({ok(paired[v] <= target)}; CPU time "
                 f"{pcpu[v]:.3f})" for v in variants[1:3]]
        best = min((v for v in ("eager", "eager-1t") if v in med), key=lambda v: med[v])
        parts.append(f"netdsl/eager {paired[best]:.2f} against the faster eager "
                     f"({labels[best]}: {ok(paired[best] < 1)})")
        verdicts.append(f"batch {batch}: " + ", ".join(parts))
        headlines.append(
            f"onnxruntime CPU {name} batch {batch}: netdsl {med['netdsl']:.1f} ms; "
            f"netdsl/torch-exported {paired['torch-legacy']:.2f} (legacy), "
            f"{paired['torch-dynamo']:.2f} (dynamo), in CPU time "
            f"{pcpu['torch-legacy']:.2f} / {pcpu['torch-dynamo']:.2f}; netdsl/eager "
            f"{paired['eager']:.2f} (2 threads)"
            + (f", {paired['eager-1t']:.2f} (1 thread)" if "eager-1t" in paired else ""))
    ops = sorted(set().union(*(res["nodes"][v] for v in variants[:3])))
    node_rows = [[op] + [res["nodes"][v].get(op, 0) for v in variants[:3]]
                 + [res["ort_nodes"][v].get(op, 0) for v in variants[:3]] for op in ops]
    ort_ops = sorted(set().union(*(res["ort_nodes"][v] for v in variants[:3])) - set(ops))
    node_rows += [[op, "", "", ""] + [res["ort_nodes"][v].get(op, 0) for v in variants[:3]]
                  for op in ort_ops]
    node_rows.append(["**total**"] + [sum(res["nodes"][v].values()) for v in variants[:3]]
                     + [sum(res["ort_nodes"][v].values()) for v in variants[:3]])
    w = res["weights"]
    extra = []
    for stage, key in (("in the file", "nodes"), ("after onnxruntime's optimizations",
                                                    "ort_nodes")):
        for v in variants[1:3]:
            more = {op: n - res[key][v].get(op, 0) for op, n in res[key]["netdsl"].items()
                    if n > res[key][v].get(op, 0)}
            extra.append(f"{stage}, netdsl has {sum(res[key]['netdsl'].values())} nodes, "
                         f"{v} {sum(res[key][v].values())}; netdsl's extra: "
                         + (", ".join(f"{n} {op}" for op, n in more.items()) or "none"))
    node_note = "Extra nodes: " + "; ".join(extra) + "."
    prof = res.get("kernel_ms", {})
    if prof:
        kops = sorted(set().union(*(prof[v] for v in variants[:3])),
                      key=lambda op: -max(prof[v].get(op, 0) for v in variants[:3]))
        krows = [[op] + [f"{prof[v].get(op, 0):.2f}" for v in variants[:3]] for op in kops]
        krows.append(["**total**"] + [f"{sum(prof[v].values()):.2f}"
                                      for v in variants[:3]])
        node_note += (f"\n\nonnxruntime's own profile at batch {res['kernel_batch']} "
                      "(kernel ms per run, summed by op type; the work of several threads "
                      "inside one kernel counts once, at its wall time):\n\n"
                      + table(["op", "netdsl", "torch legacy", "torch dynamo"], krows))
    return "\n".join([
        f"### {name}",
        "",
        f"Same weights everywhere: {w['loaded']} tensors of netdsl's ONNX loaded into the "
        f"torch module ({w['n_missing']} unmatched), which is then exported"
        + (f" ({exported})" if exported else "") + ". Median per "
        "call (p10–p90) over interleaved rounds; netdsl/x: netdsl's time over x's, the median "
        "of the per-round ratios (steadier than a ratio of medians on a loaded machine); CPU "
        "per call: the process's CPU time (all its threads) per call, which other load on "
        "the machine disturbs less than wall time; max abs difference of the outputs "
        "against eager. Eager runs on PyTorch's default threads and on one thread: its "
        "OpenMP threads wait for each other after every op, which stalls when other "
        "processes share the cores (see the load average above).",
        "",
        table(["batch", "runtime", "latency", "netdsl/x", "CPU per call", "netdsl/x (CPU)",
               "max abs diff"], rows),
        "",
        f"Targets (netdsl/torch-exported ≤ {target}, netdsl/eager < 1): "
        + "; ".join(verdicts) + ".",
        "",
        "Nodes by op type, in the files and after onnxruntime's graph optimizations "
        "(what actually runs):",
        "",
        table(["op", "netdsl", "torch legacy", "torch dynamo", "netdsl (ORT-optimized)",
               "legacy (ORT-optimized)", "dynamo (ORT-optimized)"], node_rows),
        "",
        node_note,
    ])


def gpu_text(res: dict, headlines: list[str]) -> str:
    """The GPU table (``children/gpu.py``), or why it was not run."""
    if "skipped" in res:
        headlines.append("GPU: not run (no GPU in this environment)")
        return (f"Not run: {res['skipped']}. The code path is `benchmarks/children/gpu.py` "
                "(onnxruntime CUDA with I/O binding vs PyTorch eager CUDA, resnet50, batch 1 "
                "and 64, fp32 and fp16); it runs wherever CUDA is present.")
    rows = [[r["precision"], r["batch"], r["runtime"],
             f"{r['median_ms']:.2f} ms ({r['min_ms']:.2f}–{r['max_ms']:.2f})",
             f"{r['images_per_s']:,.0f}", f"{r['max_abs_diff']:.1e}"] for r in res["rows"]]
    return (f"{res['device']}; fp16 model: {res['fp16_model']}.\n\n"
            + table(["precision", "batch", "runtime", "latency", "images/s", "max abs diff"],
                    rows))


def precision_text(res: dict) -> str:
    """The reduced-precision table (``children/precision.py``)."""
    rows = []
    for name, v in res["variants"].items():
        if "error" in v:
            rows.append([name, mib(v.get("file_bytes", 0)), f"not run: {v['error']}", "",
                         ""])
            continue
        lat = []
        for batch, b in res["batches"].items():
            med = b["median_ms"]
            lat.append(f"b{batch}: {med[name]:.1f} ms ({med[name] / med['fp32']:.2f}×)")
        drift = ("reference" if name == "fp32" else
                 f"max {v['max_abs_diff']:.3g}, mean {v['mean_abs_diff']:.3g} "
                 f"({100 * v['mean_abs_diff'] / v['ref_mean_abs']:.2f}% of the mean absolute "
                 "logit)")
        top1 = "—" if name == "fp32" else f"{100 * v['top1_agreement']:.0f}%"
        rows.append([name, mib(v["file_bytes"]), "; ".join(lat), drift, top1])
    return (
        "resnet50 (netdsl's ONNX, He-initialized, untrained) on onnxruntime CPU. int8: "
        "`quant_pre_process` (BN folded) then `quantize_static` (QDQ, per-channel int8 "
        "weights, uint8 activations), calibrated on random inputs; fp16: the float tensors "
        "cast to fp16 (meant for GPUs: x86 CPUs have few fp16 kernels). Drift against "
        "fp32 on other random inputs: |Δ logit| and top-1 agreement. Latency: median per "
        "call, interleaved, and its ratio to fp32. Untrained weights give large logits "
        "(BN is the identity), so the relative drift is the number to read. `netdsl "
        "compile` has no `--precision` option in this checkout; the fp16 file is made "
        "here (`benchmarks/children/gpu.py: cast_fp16`).\n\n"
        + table(["precision", "file", "latency (× fp32)", "drift vs fp32",
                 "top-1 agreement"], rows))
