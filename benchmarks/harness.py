"""Measuring whole processes: wall time from spawn to exit, and the child's own peak RSS.

Every timed row of the suite is a fresh interpreter (``python -m netdsl …`` or a script in
``benchmarks/children/``), so import and start-up costs are part of what is measured, as a
user running the command would see them. ``os.wait4`` returns the resource usage of exactly
that child, so its ``ru_maxrss`` is the peak resident memory of that one process, with one
caveat: Linux carries the parent's peak into a child across fork/vfork + exec, so a child never
reports less than the parent's own peak. The driver therefore stays small (it only spawns and
formats; anything that loads a model runs in a child) and reports its own peak beside the rows.
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
from collections.abc import Callable, Sequence
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
    cpu_s: float  # user + system time of the child
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
    return Run(wall, usage.ru_maxrss * scale, usage.ru_utime + usage.ru_stime, proc.returncode,
               stdout, stderr)


def driver_peak_rss() -> int:
    """The measuring process's own peak RSS: the floor under every child's reported peak."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


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


@dataclass
class Series:
    """The timed runs of one command."""

    wall: Stats = field(default_factory=Stats)
    cpu: Stats = field(default_factory=Stats)
    rss: Stats = field(default_factory=Stats)
    runs: list[Run] = field(default_factory=list)

    def add(self, r: Run) -> None:
        self.wall.values.append(r.wall_s)
        self.cpu.values.append(r.cpu_s)
        self.rss.values.append(float(r.maxrss_bytes))
        self.runs.append(r)

    def raw(self) -> dict[str, list[float]]:
        return {"wall_s": self.wall.values, "cpu_s": self.cpu.values,
                "maxrss_bytes": self.rss.values}


@dataclass
class Job:
    """A command to time, the file it must produce, and how many timed runs it gets."""

    argv: Sequence[str]
    output: Path | None = None
    repeats: int = 1
    timeout: float = 900.0
    warmup: int | None = None  # untimed runs first; None: interleave()'s default
    exit_code: int = 0  # what a correct run returns (1: timing the rejection of a bad spec)


def run_job(job: Job) -> Run:
    if job.output is not None and job.output.exists():
        job.output.unlink()
    r = run_process(job.argv, timeout=job.timeout)
    if r.returncode != job.exit_code:
        raise ChildFailed(f"exit {r.returncode}: {' '.join(map(str, job.argv))}\n"
                          f"{r.stderr[-3000:]}")
    if job.output is not None and not job.output.exists():
        raise ChildFailed(f"no output file {job.output}: {' '.join(map(str, job.argv))}")
    return r


def interleave(jobs: dict[str, Job], warmup: int = 1,
               on_error: Callable[[str, ChildFailed], None] | None = None) -> dict[str, Series]:
    """Time every job, round-robin: round i runs each job that wants an i-th run, in turn.

    Alternating the commands spreads a slow phase of a shared machine over all of them, so
    their ratio is fairer than back-to-back blocks would give. ``warmup`` untimed rounds come
    first (they fill the page cache). A failing job is reported to ``on_error`` (or raised)
    and dropped from the rest of the rounds.
    """
    out = {k: Series() for k in jobs}
    live = dict(jobs)
    rounds = max((j.repeats for j in jobs.values()), default=0)
    warm = {k: warmup if j.warmup is None else j.warmup for k, j in jobs.items()}
    for i in range(-max(warm.values(), default=0), rounds):
        for key, job in list(live.items()):
            if i >= job.repeats or i < -warm[key]:
                continue
            try:
                r = run_job(job)
            except ChildFailed as e:
                if on_error is None:
                    raise
                on_error(key, e)
                del live[key]
                out.pop(key)
                continue
            if i >= 0:
                out[key].add(r)
    return out


def measure(argv: Sequence[str], repeats: int, output: Path | None = None, warmup: int = 1,
            timeout: float = 900.0, exit_code: int = 0) -> Series:
    """Run one command ``warmup + repeats`` times; the timed runs' statistics."""
    job = Job(argv, output, repeats, timeout, exit_code=exit_code)
    return interleave({"_": job}, warmup)["_"]


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x: 1.0 is linear growth."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / den


def fit_linear(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares ``y = a + b·x``: (a, b, largest |residual| relative to y)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    worst = max(abs(y - (a + b * x)) / y for x, y in zip(xs, ys, strict=True))
    return a, b, worst


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


def ok(flag: bool) -> str:
    """A target's verdict, bold in the report."""
    return "**met**" if flag else "**missed**"


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"
