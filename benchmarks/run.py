"""netdsl's benchmark suite: one command, every row measured side by side in one run.

    python benchmarks/run.py            # the full suite (about 8 minutes on 2 cores)
    python benchmarks/run.py --quick    # fewer repetitions (about 4 minutes)
    python benchmarks/run.py --only compile check   # some sections (writes RESULTS.partial.md)

Writes ``benchmarks/RESULTS.md`` (and the raw numbers in ``benchmarks/results.json``). Timed
rows are whole processes from spawn to exit (see ``harness.py``): median and min–max over the
runs, after one untimed warm-up run that fills the page cache. Not part of the test suite:
performance is measured here, never asserted in timed unit tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    CHILDREN,
    ROOT,
    ChildFailed,
    Job,
    Series,
    Stats,
    child_env,
    driver_peak_rss,
    fit_exponent,
    fit_linear,
    interleave,
    machine,
    measure,
    mib,
    ok,
    table,
)
from inference_report import gpu_text, latency_text, precision_text  # noqa: E402

PY = sys.executable
SPECS = ROOT / "specs"
HERE = Path(__file__).resolve().parent
NETDSL = [PY, "-m", "netdsl"]

# Targets of issue 6.
COMPILE_R152_S = 1.5
COMPILE_SPEEDUP = 4.0
CHECK_SMALL_S = 0.3
CHECK_R1202_S = 0.6
# Targets of issue 10 (torchvision's models)
CHECK_ZOO_S = 0.5
ZOO_LATENCY_RATIO = 1.02
ZOO_LATENCY = ("mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
RSS_FACTOR, RSS_EXTRA = 2.0, 150 * 2**20
LIMIT_CHECK_S = 2.0  # issue 13: any spec under the size limit
VIT_RATIO = 1.0  # issue 11: netdsl's vit_b_16 no slower than torch's exports of torchvision's

TORCHVISION = {"resnet50": "resnet50", "resnet152": "resnet152", "vgg16": "vgg16",
               "googlenet": "googlenet"}


@dataclass
class Config:
    repeats: int  # timed runs of each fast process
    torch_repeats: int  # timed runs of each torch export (5–10 s each)
    depths: tuple[int, ...]  # CIFAR ResNet n: depth 6n+2
    lat_rounds: int
    lat_iters: int


DEPTHS = (3, 18, 200, 475, 1666)  # ResNet-20, -110, -1202, ~10,000 layers, ResNet-9998
FULL = Config(repeats=5, torch_repeats=3, depths=DEPTHS, lat_rounds=12, lat_iters=1)
QUICK = Config(repeats=2, torch_repeats=1, depths=DEPTHS, lat_rounds=4, lat_iters=1)


NO_TORCH = "PyTorch is not installed (the bench extra: pip install 'netdsl[bench]')"
NO_ONNXSCRIPT = ("the dynamo exporter needs onnxscript (the bench extra: "
                 "pip install 'netdsl[bench]')")


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Suite:
    def __init__(self, cfg: Config, work: Path, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.work = work
        self.log = log
        self.raw: dict = {}
        self.sections: dict[str, str] = {}
        self.headlines: list[str] = []
        self.compiled: dict[str, Path] = {}
        self.compile_rss: dict[str, tuple[Stats, int]] = {}

    # ---- helpers -----------------------------------------------------------------------------
    def has_command(self, name: str) -> bool:
        r = subprocess.run([*NETDSL, name, "--help"], capture_output=True, env=child_env(),
                           cwd=ROOT)
        return r.returncode == 0

    def compile_argv(self, spec: Path, out: Path, params: tuple[str, ...] = ()) -> list[str]:
        return [*NETDSL, "compile", str(spec), "-o", str(out),
                *(a for p in params for a in ("--param", p))]

    def weight_bytes(self, onnx_path: Path) -> int:
        """Bytes of the model's initializers, counted in a child (the driver stays small)."""
        r = subprocess.run([PY, str(CHILDREN / "weight_bytes.py"), str(onnx_path)],
                           capture_output=True, text=True, env=child_env(), cwd=ROOT, check=True)
        return int(r.stdout.split()[-1])

    # ---- 1. compile vs the torch path --------------------------------------------------------
    def compile_section(self, models: tuple[str, ...]) -> None:
        if not self.has_command("compile"):
            self.sections["compile"] = "Not run: this checkout has no `netdsl compile` yet."
            return
        torch_ok = have("torch")
        emit = self.has_command("emit")
        rows, raw, failures = [], {}, []
        for name in models:
            spec = SPECS / f"{name}.net"
            out = self.work / f"{name}.onnx"
            jobs = {"netdsl": Job(self.compile_argv(spec, out), out, self.cfg.repeats)}
            labels = {"netdsl": "`netdsl compile`"}
            if not torch_ok:
                failures.append([name, "the torch path", f"skipped: {NO_TORCH}", "", "", "", "",
                                 ""])
            if torch_ok:
                variants = []
                if emit:
                    source = self.work / f"{name}_model.py"
                    subprocess.run([*NETDSL, "emit", str(spec), "--no-aux", "-o", str(source)],
                                   check=True, env=child_env(), cwd=ROOT, capture_output=True)
                    variants.append(("module", "netdsl-generated module", ["--source",
                                                                           str(source)]))
                else:
                    variants.append(("module", "`netdsl.to_torch` module", []))
                if have("torchvision") and name in TORCHVISION:
                    variants.append(("torchvision", f"torchvision `{TORCHVISION[name]}`",
                                     ["--torchvision", TORCHVISION[name]]))
                for key, label, extra in variants:
                    for exporter in ("legacy", "dynamo"):
                        if exporter == "dynamo" and not have("onnxscript"):
                            failures.append([name, f"{label}, `torch.onnx.export` dynamo",
                                             f"skipped: {NO_ONNXSCRIPT}", "", "", "", "", ""])
                            continue
                        tout = self.work / f"{name}.{key}-{exporter}.onnx"
                        argv = [PY, str(CHILDREN / "torch_export.py"), "--spec", str(spec),
                                "--exporter", exporter, "-o", str(tout), *extra]
                        # one warm-up of each torch path fills the page cache for all models
                        jobs[f"{key}-{exporter}"] = Job(argv, tout, self.cfg.torch_repeats, 600,
                                                        warmup=int(name == models[0]))
                        labels[f"{key}-{exporter}"] = f"{label}, `torch.onnx.export` {exporter}"
            self.log(f"compile {name}: {', '.join(jobs)} interleaved")
            errors: dict[str, ChildFailed] = {}
            series = interleave(jobs, on_error=errors.__setitem__)
            failures += [[name, labels[k], f"failed: {_first(e)}", "", "", "", "", ""]
                         for k, e in errors.items()]
            nd = series["netdsl"]
            self.compiled[name] = out
            wbytes = self.weight_bytes(out)
            self.compile_rss[name] = (nd.rss, wbytes)
            raw[name] = {"weight_bytes": wbytes, **{k: v.raw() for k, v in series.items()}}
            for key, ser in series.items():
                ratio = ser.wall.median / nd.wall.median
                phases, no_import = "", ""
                if key != "netdsl":
                    ph = {k: statistics.median(r.json()[k] for r in ser.runs)
                          for k in ("import_s", "build_s", "export_s")}
                    raw[name][key]["phases"] = ph
                    phases = (f"import {ph['import_s']:.2f} s, build {ph['build_s']:.2f} s, "
                              f"export {ph['export_s']:.2f} s")
                    raw[name][key]["ratio"] = ratio
                    # what the torch path costs a session that has imported torch already
                    ex = (ser.wall.median - ph["import_s"]) / nd.wall.median
                    raw[name][key]["ratio_without_torch_import"] = ex
                    no_import = f"{ex:.1f}×"
                rows.append([name, labels[key], ser.wall.fmt(), f"{ser.cpu.median:.2f} s",
                             mib(ser.rss.median), f"{ratio:.1f}×", no_import, phases])
        rows += failures
        self.raw["compile"] = raw
        text = [
            "Process start to `.onnx` on disk, whole processes, the commands interleaved "
            "round by round. The torch path is a fresh process that imports torch, builds the "
            "PyTorch module netdsl generates for the same spec"
            + (" (the file `netdsl emit` writes: plain torch code with PyTorch's default "
               "init, no netdsl import)" if emit else " (`netdsl.to_torch`)")
            + " and runs `torch.onnx.export` with a dynamic batch axis. CPU: user + system "
            "time of the process (less sensitive to other load on the machine than wall "
            "time). ×: median wall time over netdsl's; without the import: the torch path's "
            "median wall time less its median torch import, over netdsl's whole process (a "
            "session that has imported torch already pays the rest)."
            + ("" if have("torchvision") else
               " torchvision is not importable here (no CPU build for this torch), so it has "
               "no rows."),
            "",
            table(["model", "path", "wall time, median (min–max, runs)", "CPU", "peak RSS",
                   "× netdsl", "× netdsl, torch import excluded", "torch phases (median)"],
                  rows),
        ]
        r152 = raw.get("resnet152", {})
        if "netdsl" in r152:
            t = Stats(r152["netdsl"]["wall_s"]).median
            sp = r152.get("module-legacy", {}).get("ratio")
            spd = r152.get("module-dynamo", {}).get("ratio")
            spx = r152.get("module-legacy", {}).get("ratio_without_torch_import")
            line = (f"Target: `netdsl compile` resnet152 ≤ {COMPILE_R152_S} s: {t:.2f} s, "
                    f"{ok(t <= COMPILE_R152_S)}")
            if sp is not None:
                line += (f"; ≥ {COMPILE_SPEEDUP:.0f}× faster than the torch path: "
                         f"{sp:.1f}× (legacy exporter)"
                         + (f", {spd:.1f}× (dynamo)" if spd is not None else "")
                         + f", {ok(sp >= COMPILE_SPEEDUP)}"
                         + (" against legacy, the faster torch path" if spd and sp < spd
                            else ""))
            text += ["", line + "."]
            self.headlines.append(
                f"`netdsl compile` resnet152: {t:.2f} s"
                + (f", {sp:.1f}× faster than the torch path with the legacy exporter" if sp
                   else "")
                + (f", {spd:.1f}× faster than with the dynamo exporter" if spd else "")
                + (f"; {spx:.1f}× (legacy) with the torch import excluded" if spx else ""))
        self.sections["compile"] = "\n".join(text)

    # ---- 2. check cold start and depth scaling -----------------------------------------------
    def check_section(self) -> None:
        rows = []
        raw: dict = {}
        base = [("`python -c pass` (interpreter start, the floor)", [PY, "-c", "pass"]),
                ("`python -c 'import netdsl'`", [PY, "-c", "import netdsl"])]
        for label, argv in base:
            self.log(f"check: {label}")
            ser = measure(argv, self.cfg.repeats)
            rows.append([label, ser.wall.fmt(), f"{ser.cpu.median:.2f} s", mib(ser.rss.median),
                         ""])
            raw[label] = ser.raw()
        for spec, target in (("lenet5", CHECK_SMALL_S), ("resnet1202", CHECK_R1202_S)):
            self.log(f"check {spec}")
            ser = measure([*NETDSL, "check", str(SPECS / f"{spec}.net")], self.cfg.repeats)
            w = ser.wall
            raw[spec] = ser.raw()
            rows.append([f"`netdsl check specs/{spec}.net`", w.fmt(), f"{ser.cpu.median:.2f} s",
                         mib(ser.rss.median),
                         f"≤ {target} s: {w.median:.2f} s, {ok(w.median <= target)}"])
            self.headlines.append(f"`netdsl check` {spec}: {w.median:.2f} s "
                                  f"(target ≤ {target} s)")
        self.raw["check"] = raw
        self.sections["check"] = (
            "Cold start, whole process (`python -m netdsl check`), against the interpreter's "
            "own start in the same run. CPU: user + system time of the process.\n\n"
            + table(["command", "wall time", "CPU", "peak RSS", "target"], rows))

    def depth_section(self) -> None:
        can_compile = self.has_command("compile")
        spec = SPECS / "resnet20.net"
        pts = []
        for n in self.cfg.depths:
            jobs = {"check": Job([*NETDSL, "check", str(spec), "--param", f"n={n}"],
                                 repeats=self.cfg.repeats)}
            out = self.work / f"resnet-n{n}.onnx"
            if can_compile:
                jobs["compile"] = Job(self.compile_argv(spec, out, (f"n={n}",)), out,
                                      self.cfg.repeats)
            self.log(f"depth n={n}: {', '.join(jobs)} interleaved")
            series = interleave(jobs)
            first = series["check"].runs[0].stdout
            layers = int(first.split("(")[1].split()[0].replace(",", ""))
            pt: dict = {"n": n, "depth": 6 * n + 2, "layers": layers, **series}
            if can_compile:
                pt["weight_bytes"] = self.weight_bytes(out)
                out.unlink()
            pts.append(pt)
        keys = [k for k in ("check", "compile") if k in pts[0]]
        rows = []
        prev = None
        for pt in pts:
            row = [f"ResNet-{pt['depth']} (n={pt['n']})", f"{pt['layers']:,}"]
            for k in keys:
                row += [pt[k].wall.fmt(), f"{pt[k].cpu.median:.2f} s"]
            marg = []
            for k in keys:
                if prev is not None:
                    dl = pt["layers"] - prev["layers"]
                    marg.append(f"{1e6 * (pt[k].cpu.median - prev[k].cpu.median) / dl:.0f} µs")
            row.append(" / ".join(marg) or "—")
            if can_compile:
                row.append(f"{pt['weight_bytes'] / 2**20:,.1f} MiB")
            rows.append(row)
            prev = pt
        # Growth: a straight line t = a + b·layers through all points (a: start-up, b: cost per
        # layer), and the exponent of t - t_smallest against layers over the networks of 1,000+
        # layers, where that difference is well above the noise (1.00 is linear).
        notes = []
        big = [p for p in pts[1:] if p["layers"] >= 1000]
        for k in keys:
            for what in ("cpu", "wall"):
                ts = [getattr(p[k], what).median for p in pts]
                a, b, worst = fit_linear([p["layers"] for p in pts], ts)
                note = (f"`{k}` {what}: {a:.2f} s + {1e6 * b:.0f} µs × layers (largest "
                        f"residual {100 * worst:.0f}%)")
                ys = [getattr(p[k], what).median - ts[0] for p in big]
                if len(big) >= 2 and all(y > 0 for y in ys):
                    e = fit_exponent([p["layers"] for p in big], ys)
                    note += f", exponent {e:.2f}"
                    self.raw.setdefault("depth_exponent", {})[f"{k} {what}"] = e
                notes.append(note)
        header = ["network (`specs/resnet20.net --param n=…`)", "layers (as `check` counts)"]
        for k in keys:
            header += [f"`{k}` wall", f"`{k}` CPU"]
        header.append("CPU time per added layer (" + " / ".join(keys) + ")")
        if can_compile:
            header.append("weights")
        self.raw["depth"] = [{k: (v.raw() if isinstance(v, Series) else v) for k, v in p.items()}
                             for p in pts]
        text = ("CIFAR ResNets (basic blocks, option A shortcuts) of growing depth, each "
                "command interleaved with the other; one has about 10,000 layers as `netdsl check` "
                "counts them (conv, BN, ReLU and add each count one), the last is ResNet-9998 "
                "(10,000 weight layers in the paper's count). CPU: user + system time of the "
                "process.\n\n" + table(header, rows))
        if notes:
            text += ("\n\nFits over the medians: a straight line (start-up + cost per layer) "
                     "through all networks, and the exponent k of (time − the smallest "
                     "network's time) ∝ layers^k over the networks of 1,000+ layers (k = 1.00 "
                     "is linear):\n\n" + "\n".join(f"- {n}" for n in notes))
            self.headlines += [f"growth with depth: {n}" for n in notes if " cpu:" in n]
        self.sections["depth"] = text
        self.depth_points = pts

    # ---- 3. memory -------------------------------------------------------------------------
    def memory_section(self) -> None:
        rows = []
        items = [(k, rss, w) for k, (rss, w) in self.compile_rss.items()]
        items += [(f"ResNet-{p['depth']}", p["compile"].rss, p["weight_bytes"])
                  for p in getattr(self, "depth_points", []) if "compile" in p]
        worst = None
        for name, rss, w in items:
            limit = RSS_FACTOR * w + RSS_EXTRA
            met = rss.median <= limit
            rows.append([name, mib(w), mib(rss.median), f"{rss.median / w:.2f}×"
                         if w else "—", mib(limit), ok(met)])
            if worst is None or rss.median - limit > worst[1]:
                worst = (name, rss.median - limit)
        if not rows:
            self.sections["memory"] = "Not run: needs `netdsl compile`."
            return
        self.sections["memory"] = (
            "Peak resident memory of the `netdsl compile` process (its own `ru_maxrss`, "
            "median over the runs above) against the bytes of the weights it writes. "
            f"Target: ≤ {RSS_FACTOR:.0f}× weight bytes + 150 MiB. (A child cannot report "
            f"less than the measuring process's own peak, {mib(driver_peak_rss())} here.)\n\n"
            + table(["model", "weight bytes", "compile peak RSS", "RSS / weights",
                     "target limit", "target"], rows))
        self.raw["memory"] = {n: {"rss": r.values, "weight_bytes": w} for n, r, w in items}
        r152 = self.compile_rss.get("resnet152")
        if r152:
            self.headlines.append(f"compile peak RSS resnet152: {mib(r152[0].median)} for "
                                  f"{mib(r152[1])} of weights")

    # ---- 4. CPU latency --------------------------------------------------------------------
    def latency_section(self, models: tuple[str, ...]) -> None:
        if not (have("torch") and have("onnxruntime")) or not self.has_command("compile"):
            self.sections["latency"] = "Not run: needs torch, onnxruntime and `netdsl compile`."
            return
        text = []
        self.raw["latency"] = {}
        for name in models:
            spec = SPECS / f"{name}.net"
            onnx_path = self.compiled.get(name) or self.work / f"{name}.onnx"
            if not onnx_path.exists():
                measure(self.compile_argv(spec, onnx_path), 0, onnx_path)
            self.log(f"latency {name}")
            argv = [PY, str(CHILDREN / "latency.py"), "--spec", str(spec), "--onnx",
                    str(onnx_path), "--workdir", str(self.work / f"lat-{name}"),
                    "--rounds", str(self.cfg.lat_rounds), "--iters", str(self.cfg.lat_iters)]
            try:
                res = measure(argv, 1, warmup=0, timeout=900).runs[0].json()
            except ChildFailed as e:
                text.append(f"### {name}\n\nfailed: {_first(e)}")
                continue
            self.raw["latency"][name] = res
            text.append(latency_text(name, res, self.headlines))
        self.sections["latency"] = "\n\n".join(text)

    # ---- 7. the Vision Transformer against torchvision's exported ViT ----------------------------
    def vit_section(self) -> None:
        """netdsl's vit_b_16 vs torchvision's vit_b_16 exported by torch (same weights)."""
        if not (have("torch") and have("onnxruntime")) or not self.has_command("compile"):
            self.sections["vit"] = "Not run: needs torch, onnxruntime and `netdsl compile`."
            return
        onnx_path = self.work / "vit_b_16.onnx"
        measure(self.compile_argv(SPECS / "vit_b_16.net", onnx_path), 0, onnx_path)
        self.log("latency vit_b_16 (torchvision's exported)")
        argv = [PY, str(CHILDREN / "latency.py"), "--spec", str(SPECS / "vit_b_16.net"),
                "--onnx", str(onnx_path), "--workdir", str(self.work / "lat-vit"),
                "--torchvision", "vit_b_16", "--rounds", str(max(3, self.cfg.lat_rounds // 2)),
                "--iters", str(self.cfg.lat_iters), "--profile-batch", "1", "--profile-runs",
                "3", "--skip", "eager-1t"]
        if (res := self.child("vit", argv, timeout=3600)) is not None:  # 17.6 GMACs a call
            self.sections["vit"] = latency_text(
                "vit_b_16", res, self.headlines, target=VIT_RATIO,
                source="torchvision's `vit_b_16`, netdsl's weights loaded by name; its "
                         "eager rows are torchvision's module")

    # ---- 6. reduced precision (optional row) --------------------------------------------------
    def precision_section(self) -> None:
        if not have("onnxruntime") or not self.has_command("compile"):
            self.sections["precision"] = "Not run: needs onnxruntime and `netdsl compile`."
            return
        onnx_path = self.resnet50_onnx()
        self.log("precision resnet50")
        argv = [PY, str(CHILDREN / "precision.py"), "--onnx", str(onnx_path), "--workdir",
                str(self.work / "precision"), "--rounds", str(self.cfg.lat_rounds // 2 or 1),
                "--iters", str(self.cfg.lat_iters)]
        if (res := self.child("precision", argv)) is not None:
            self.sections["precision"] = precision_text(res)

    # ---- 5. GPU ----------------------------------------------------------------------------
    def gpu_section(self) -> None:
        if not self.has_command("compile"):
            self.sections["gpu"] = "Not run: needs `netdsl compile`."
            return
        onnx_path = self.resnet50_onnx()
        argv = [PY, str(CHILDREN / "gpu.py"), "--spec", str(SPECS / "resnet50.net"), "--onnx",
                str(onnx_path), "--workdir", str(self.work / "gpu")]
        self.log("gpu")
        if (res := self.child("gpu", argv)) is not None:
            self.sections["gpu"] = gpu_text(res, self.headlines)

    def resnet50_onnx(self) -> Path:
        """netdsl's ResNet-50 model, from the compile section or compiled now."""
        onnx_path = self.compiled.get("resnet50") or self.work / "resnet50.onnx"
        if not onnx_path.exists():
            measure(self.compile_argv(SPECS / "resnet50.net", onnx_path), 0, onnx_path)
        return onnx_path

    def child(self, section: str, argv: list[str], timeout: float = 900) -> dict | None:
        """Run one measuring child; keep its JSON in raw, or its failure as the section."""
        try:
            res = measure(argv, 1, warmup=0, timeout=timeout).runs[0].json()
        except ChildFailed as e:
            self.sections[section] = f"failed: {_first(e)}"
            return None
        self.raw[section] = res
        return res

    # ---- 7. torchvision's models (issue 10) -------------------------------------------------
    def zoo_section(self) -> None:
        from zoo import zoo_check_rows, zoo_latency_text

        specs = sorted(p for p in SPECS.glob("*.net") if "_" in p.stem)  # torchvision's names
        rows = []
        for spec in specs:
            self.log(f"check {spec.stem}")
            ser = measure([*NETDSL, "check", str(spec)], self.cfg.repeats)
            rows.append((spec.stem, ser))
        text = [zoo_check_rows(rows, CHECK_ZOO_S, self.headlines)]
        for name in ZOO_LATENCY:
            self.log(f"latency {name} vs torchvision")
            argv = [PY, str(CHILDREN / "zoo_latency.py"), "--model", name, "--workdir",
                    str(self.work / f"zoo-{name}"), "--rounds", str(self.cfg.lat_rounds)]
            try:
                res = measure(argv, 1, warmup=0, timeout=1200).runs[0].json()
            except ChildFailed as e:
                text.append(f"### {name}\n\nfailed: {_first(e)}")
                continue
            self.raw.setdefault("zoo", {})[name] = res
            text.append(zoo_latency_text(res, ZOO_LATENCY_RATIO, self.headlines))
        self.sections["zoo"] = "\n\n".join(text)

    # ---- 9. import --------------------------------------------------------------------------
    def import_section(self) -> None:
        """`netdsl import --no-verify` of netdsl's own ONNX: ResNet-152, then CIFAR ResNets up to
        about 10,000 layers for the growth with the number of ONNX nodes."""
        cases = [("ResNet-152", SPECS / "resnet152.net", ())]
        cases += [(f"ResNet-{6 * n + 2} (n={n})", SPECS / "resnet20.net", (f"n={n}",))
                  for n in self.cfg.depths]
        rows, pts = [], []
        for name, spec, params in cases:
            model = self.work / "import.onnx"
            subprocess.run(self.compile_argv(spec, model, params), check=True,
                           capture_output=True, env=child_env(), cwd=ROOT)
            out = self.work / "import.net"
            self.log(f"import {name}")
            series = measure([*NETDSL, "import", str(model), "--no-verify", "-o", str(out)],
                             self.cfg.repeats)
            inner = [r.json() for r in measure([PY, str(CHILDREN / "import_time.py"), str(model)],
                                               self.cfg.repeats).runs]
            nodes, lines = inner[0]["nodes"], inner[0]["lines"]
            cpu = statistics.median(r["cpu_s"] for r in inner)
            rows.append([name, f"{nodes:,}", str(lines), series.wall.fmt(),
                         f"{series.cpu.median:.2f} s", f"{cpu:.2f} s"])
            pts.append((name, nodes, series, cpu))
            model.unlink()
        depth = pts[1:]
        notes = []
        for what, get in (("CPU in the importer", lambda p: p[3]),
                          ("CPU of the process", lambda p: p[2].cpu.median)):
            a, b, worst = fit_linear([p[1] for p in depth], [get(p) for p in depth])
            note = (f"`import` {what}: {a:.2f} s + {1e6 * b:.0f} µs × ONNX nodes (largest "
                    f"residual {100 * worst:.0f}%)")
            big = [p for p in depth if p[1] >= 1000]
            ys = [get(p) - get(depth[0]) for p in big]
            if len(big) >= 2 and all(y > 0 for y in ys):
                note += f", exponent {fit_exponent([p[1] for p in big], ys):.2f}"
            notes.append(note)
        r152 = pts[0]
        self.headlines.append(f"`netdsl import` resnet152 ({r152[1]} ONNX nodes): "
                              f"{r152[3]:.2f} s CPU in the importer, {r152[2].cpu.median:.2f} s "
                              f"CPU for the whole process (target ≤ 2 s)")
        self.headlines += [f"growth: {n}" for n in notes[:1]]
        self.raw["import"] = [{"name": p[0], "nodes": p[1], "inproc_s": p[3],
                               **p[2].raw()} for p in pts]
        self.sections["import"] = (
            "`netdsl import MODEL.onnx --no-verify` on models compiled by netdsl: wall and CPU "
            "of the whole process (Python start-up and `import onnx` included), and the CPU "
            "time of `from_onnx(…, verify=False)` inside a process that has imported onnx "
            "(read, recognize, structure, fold, write, check the spec, match the weights; "
            "`benchmarks/children/import_time.py`).\n\n" +
            table(["network", "ONNX nodes", "spec lines", "wall", "CPU",
                   "CPU in the importer"],
                  rows) + "\n\nFits over the CIFAR ResNets (t = start-up + cost per node; "
            "exponent of t − t_smallest over the models of 1,000+ nodes, 1.00 is linear):\n\n"
            + "\n".join(f"- {n}" for n in notes))

    # ---- 10. specs at the size limit (issue 13) --------------------------------------------
    def limits_section(self) -> None:
        """`check` and `compile` of the slowest spec shapes found just under MAX_SPEC_CHARS."""
        from netdsl.limits import MAX_SPEC_CHARS

        rows = []
        for label, (text, code) in limit_specs(MAX_SPEC_CHARS).items():
            spec = self.work / "limit.net"
            spec.write_text(text, encoding="utf-8")
            cmds = [("check", [*NETDSL, "check", str(spec)], None)]
            if code == 0:
                out = self.work / "limit.onnx"
                cmds.append(("compile", self.compile_argv(spec, out), out))
            for cmd, argv, out in cmds:
                self.log(f"{cmd} at the size limit: {label}")
                ser = measure(argv, self.cfg.repeats, out, exit_code=code)
                self.raw.setdefault("limits", {})[f"{cmd} {label}"] = ser.raw()
                w = ser.wall.median
                rows.append([f"`{cmd}`", label, f"{len(text):,}", ser.wall.fmt(),
                             f"{ser.cpu.median:.2f} s", mib(ser.rss.median),
                             f"{w:.2f} s, {ok(w <= LIMIT_CHECK_S)}" if cmd == "check" else ""])
        worst = max((r for r in rows if r[0] == "`check`"), key=lambda r: float(r[3].split()[0]))
        self.headlines.append(f"`netdsl check` at the {MAX_SPEC_CHARS:,}-character spec limit: "
                              f"slowest {worst[1]} {worst[3].split()[0]} s "
                              f"(target ≤ {LIMIT_CHECK_S} s)")
        self.sections["limits"] = (
            "The slowest spec shapes found for their size (the hostile-input issue), each just "
            "under the spec size limit; cold start, whole process. The bad spec's `check` exits 1 "
            "after reporting its errors (at most the error limit).\n\n"
            + table(["command", "spec", "characters", "wall time", "CPU", "peak RSS",
                     f"target ≤ {LIMIT_CHECK_S} s"], rows))

    # ---- report ----------------------------------------------------------------------------
    def render(self, cfg_name: str, elapsed: float, info: dict[str, str]) -> str:
        titles = {"compile": "1. `netdsl compile` vs the torch path",
                  "check": "2a. `netdsl check` cold start",
                  "depth": "2b. Growth with depth",
                  "memory": "3. Peak memory of `compile`",
                  "latency": "4. onnxruntime CPU latency",
                  "gpu": "5. GPU",
                  "precision": "6. Reduced precision (optional)",
                  "zoo": "7. torchvision's models: `check` and onnxruntime latency",
                  "vit": "8. Vision Transformer: onnxruntime CPU latency against torchvision's",
                  "import": "9. `netdsl import`",
                  "limits": "10. Specs at the size limit"}
        out = ["# netdsl benchmark results", "",
               "<!-- generated by `python benchmarks/run.py`: do not edit by hand -->", "",
               f"Generated by `python benchmarks/run.py{' --quick' if cfg_name == 'quick' else ''}`"
               f" in {elapsed / 60:.1f} min.", "",
               table(["", ""], [[k, v] for k, v in info.items()]), "",
               "## Headlines", ""]
        out += [f"- {h}" for h in self.headlines] + [""]
        for key, title in titles.items():
            out += [f"## {title}", "", self.sections.get(key, "Not run (`--only`)."), ""]
        return "\n".join(out)


README_BEGIN = "<!-- benchmarks:begin (written by benchmarks/run.py) -->"
README_END = "<!-- benchmarks:end -->"


def update_readme(headlines: list[str], cfg_name: str, date: str) -> bool:
    """Refresh the README's block of headline numbers (between the markers) from this run."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    run = "python benchmarks/run.py" + (" --quick" if cfg_name == "quick" else "")
    block = [README_BEGIN,
             f"Headlines of the last run (`{run}`, {date}; details and machine in "
             "[benchmarks/RESULTS.md](benchmarks/RESULTS.md)):", ""]
    block += [f"- {h}" for h in headlines]
    readme.write_text(head + "\n".join(block) + "\n" + README_END + tail, encoding="utf-8")
    return True


def _first(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else repr(e))[:300]


SECTIONS = ("compile", "check", "depth", "latency", "gpu", "precision", "zoo", "vit", "import",
            "limits")


def limit_specs(limit: int) -> dict[str, tuple[str, int]]:
    """The slowest shapes found per character (tests/test_hostile_resources.py's BULK), each
    filled to just under ``limit`` characters: label -> (spec text, check's exit code)."""
    shapes = {"one-word statements": ("", "relu\n", "", 0),
              "convs reading 64 defaults": ("default conv bias=off\n" * 64, "conv3-4\n", "", 0),
              "concat branches": ("concat { relu", " | relu", " }\n", 0),
              "error lines": ("", "conv3-0\n", "", 1)}
    out = {}
    for label, (head, unit, tail, code) in shapes.items():
        head = "input 3x8x8\n" + head
        n = (limit - len(head) - len(tail)) // len(unit)
        out[label] = (head + unit * n + tail, code)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run these sections only")
    p.add_argument("-o", "--output", type=Path,
                   help="report path (default benchmarks/RESULTS.md; RESULTS.partial.md with "
                        "--only)")
    args = p.parse_args()
    cfg = QUICK if args.quick else FULL
    only = set(args.only or SECTIONS)
    out = args.output or HERE / ("RESULTS.md" if not args.only else "RESULTS.partial.md")
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    info = machine()  # before the run: the load average then is other work on the machine
    work = Path(tempfile.mkdtemp(prefix="netdsl-bench-"))
    try:
        s = Suite(cfg, work, log)
        if "check" in only:
            s.check_section()
        if "compile" in only:
            s.compile_section(("resnet50", "resnet152", "vgg16"))
        if "depth" in only:
            s.depth_section()
        if "compile" in only or "depth" in only:
            s.memory_section()
        if "latency" in only:
            s.latency_section(("resnet50", "googlenet"))
        if "gpu" in only:
            s.gpu_section()
        if "precision" in only:
            s.precision_section()
        if "zoo" in only:
            s.zoo_section()
        if "vit" in only:
            s.vit_section()
        if "import" in only:
            s.import_section()
        if "limits" in only:
            s.limits_section()
        elapsed = time.perf_counter() - t0
        text = s.render("quick" if args.quick else "full", elapsed, info)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.write_text(text, encoding="utf-8")
    out.with_name(out.stem.replace("RESULTS", "results") + ".json").write_text(
        json.dumps(s.raw, indent=1, default=str), encoding="utf-8")
    log(f"wrote {out}")
    if not args.only and args.output is None and update_readme(s.headlines, "quick" if args.quick
                                                               else "full", info["date"]):
        log("updated the headlines in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
