"""The README's install commands are what CI runs, and they are right on a CPU-only machine."""

from __future__ import annotations

import re

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def quickstart() -> list[str]:
    block = README[README.index("<!-- quickstart"):README.index("<!-- /quickstart -->")]
    return [ln for ln in block.splitlines() if re.match(r"(pip|python|netdsl) ", ln)]


def test_ci_installs_nothing_the_readme_does_not_say() -> None:
    code = [ln for ln in CI.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    installs = [ln for ln in code if re.search(r"pip3? install|-m pip", ln)]
    assert not installs, "CI must not install anything before the README's commands"
    assert "<!-- quickstart" in CI and 'bash -euo pipefail -c "$cmd"' in CI


def test_quickstart_installs_the_cpu_torch_before_anything_could_pull_cuda() -> None:
    lines = quickstart()
    assert lines and all(" && " in ln or ln.startswith("netdsl") for ln in lines)
    tests = next(ln for ln in lines if "pytest" in ln)
    first = tests.split(" && ")[0]
    assert first == ("pip install torch==2.13.0 torchvision==0.28.0 "
                     "--index-url https://download.pytorch.org/whl/cpu")
    dev = re.search(r"^dev = \[(.*?)\]$", PYPROJECT, re.M | re.S)
    assert dev and "torch" not in dev.group(1)  # the test extra never asks pip for PyTorch
    assert not any("torch]" in ln or ",torch" in ln for ln in lines)
