"""Device choice against a stand-in onnxruntime whose CUDA provider is listed but cannot start,
as onnxruntime-gpu behaves without its CUDA/cuDNN libraries (no GPU is needed here)."""

from __future__ import annotations

from typing import Any

import pytest

from netdsl import NetdslError, runtime


class FakeOrt:
    """Lists CUDA in get_available_providers(); every session gets only the CPU."""

    def __init__(self, preload: bool = True) -> None:
        self.calls: list[str] = []
        if preload:
            self.preload_dlls = self._preload

    def _preload(self) -> None:
        self.calls.append("preload_dlls")
        print("Failed to load libcudnn.so.9")  # onnxruntime prints, never raises

    def get_available_providers(self) -> list[str]:
        return [runtime.CUDA, runtime.CPU]

    def InferenceSession(self, data: Any, providers: list[str]) -> Any:  # noqa: N802
        self.calls.append(f"session {providers}")

        class Session:
            def get_providers(self) -> list[str]:
                return [runtime.CPU]

        return Session()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeOrt:
    ort = FakeOrt()
    monkeypatch.setattr(runtime, "_ort", lambda: ort)
    return ort


def test_cuda_asked_but_the_session_lacks_it_is_an_error(
        fake: FakeOrt, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NetdslError, match="CUDA provider failed to start"):
        runtime.open_session(b"model", "cuda")
    assert fake.calls[:2] == ["preload_dlls", f"session {[runtime.CUDA, runtime.CPU]}"]
    out = capsys.readouterr()
    assert out.out == "" and "Failed to load libcudnn.so.9" in out.err  # stdout stays clean


def test_auto_falls_back_and_says_why(fake: FakeOrt) -> None:
    s = runtime.open_session(b"model", "auto")
    assert s.provider == runtime.CPU and "fell back to the CPU" in s.note


def test_cpu_never_touches_cuda(fake: FakeOrt) -> None:
    runtime.open_session(b"model", "cpu")
    assert fake.calls == [f"session {[runtime.CPU]}"]


def test_an_onnxruntime_without_preload_dlls_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    ort = FakeOrt(preload=False)
    monkeypatch.setattr(runtime, "_ort", lambda: ort)
    with pytest.raises(NetdslError, match="--device cuda"):
        runtime.open_session(b"model", "cuda")
