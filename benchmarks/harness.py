"""Measuring whole processes: wall time from spawn to exit, and the child's own peak RSS.

Every timed row of the suite is a fresh interpreter (``python -m netdsl …`` or a script in
``benchmarks/children/``), so import and start-up costs are part of what is measured, as a
user running the command would see them. ``os.wait4`` returns the resource usage of exactly
that child, so its ``ru_maxrss`` is the peak resident memory of that one process.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: children import netdsl from here
CHILDREN = Path(__file__).resolve().parent / "children"


def child_env() -> dict[str, str]:
    """The environment of every child: this checkout's netdsl first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


@dataclass
class Run:
    """One finished child process."""

    wall_s: float
    maxrss_bytes: int
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        """The last stdout line parsed as JSON (children report their phases this way)."""
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


class ChildFailed(RuntimeError):
    pass


def run_process(argv: Sequence[str], cwd: Path = ROOT, timeout: float = 900.0) -> Run:
    """Spawn ``argv``, wait for it, and return its wall time and its own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            open(os.devnull, "rb") as devnull:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=child_env(), stdin=devnull,
                                stdout=out, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            # wait4, not Popen.wait: it also returns the rusage of exactly this child.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode == -9 and wall >= timeout:
        stderr += f"\n(killed after the {timeout:.0f} s timeout)"
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return Run(wall, usage.ru_maxrss * scale, proc.returncode, stdout, stderr)


@dataclass
class Stats:
    """Median and spread of repeated measurements."""

    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else math.nan

    def fmt(self, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
        """``1.23 s (1.20–1.31, n=5)``: the median, then min–max over the runs."""
        if not self.values:
            return "—"
        m, lo, hi = (v * scale for v in (self.median, self.lo, self.hi))
        if self.n == 1:
            return f"{m:.{digits}f} {unit} (n=1)"
        return f"{m:.{digits}f} {unit} ({lo:.{digits}f}–{hi:.{digits}f}, n={self.n})"


def measure(argv: Sequence[str], repeats: int, check_output: Path | None = None,
            warmup: int = 1, timeout: float = 900.0) -> tuple[Stats, Stats, list[Run]]:
    """Run ``argv`` ``warmup + repeats`` times; wall-time and max-RSS stats of the timed runs.

    The warm-up run fills the OS page cache (Python's and torch's files), so every timed run
    sees the same warm-cache start a developer at a terminal sees after the first one.
    """
    wall, rss, runs = Stats(), Stats(), []
    for i in range(warmup + repeats):
        if check_output is not None and check_output.exists():
            check_output.unlink()
        r = run_process(argv, timeout=timeout)
        if r.returncode != 0:
            raise ChildFailed(f"exit {r.returncode}: {' '.join(map(str, argv))}\n"
                              f"{r.stderr[-3000:]}")
        if check_output is not None and not check_output.exists():
            raise ChildFailed(f"no output file {check_output}: {' '.join(map(str, argv))}")
        if i >= warmup:
            wall.values.append(r.wall_s)
            rss.values.append(float(r.maxrss_bytes))
            runs.append(r)
    return wall, rss, runs


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x: 1.0 is linear growth."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / den


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):  # other work on the machine shows up as noise in the timings
        info["load average (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m\n"
         "for p in ('torch', 'onnx', 'onnxruntime', 'onnxruntime-gpu', 'onnxscript', 'numpy',"
         " 'torchvision'):\n"
         "    try: print(p, m.version(p))\n"
         "    except m.PackageNotFoundError: pass"],
        capture_output=True, text=True, env=child_env()).stdout
    for line in versions.splitlines():
        name, _, ver = line.partition(" ")
        info[name] = ver
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=ROOT)
    if rev.returncode == 0:
        info["netdsl commit"] = rev.stdout.strip() + (" (modified)" if dirty.stdout.strip()
                                                      else "")
    return info


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"
