"""Hostile input, issue 13: nothing is written where it must not be (classes 4-8), nothing is read
that must not be (classes 9, 10), and every writing command follows one output convention."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from netdsl import cli
from netdsl.errors import NetdslError
from netdsl.fsutil import atomic_write_text

from .conftest import ROOT

SPEC = "input 3x8x8\nconv3-4\nrelu\nFC-10\n"
UGLY = "input 3x8x8\nconv3-4 ;relu\nFC-10\n"  # fmt -w changes it
DOT = shutil.which("dot") is not None


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "s.net"
    p.write_text(SPEC)
    return p


# ---- 4. only regular files are replaced; symlinks are written through ---------------------------
def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


@pytest.mark.parametrize(("make", "kind"), [
    (None, "a character device"), (_fifo, "a FIFO"), (_socket, "a socket"),
    (Path.mkdir, "a directory")], ids=["device", "fifo", "socket", "directory"])
@pytest.mark.parametrize("cmd", ["compile", "emit", "fmt"])
def test_non_regular_outputs_are_refused(spec: Path, tmp_path: Path, make, kind: str, cmd: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = Path("/dev/null") if make is None else tmp_path / "target"
    if make is not None:
        make(target)
    if cmd == "fmt":  # fmt -w writes the spec itself: make the spec a link to the target
        link = tmp_path / "link.net"
        link.symlink_to(target)
        code, _, err = run(capsys, "fmt", "-w", str(link))
        assert code == 1 and "Traceback" not in err
    else:
        code, _, err = run(capsys, cmd, str(spec), "-o", str(target))
        assert code == 1 and f"output path is {kind}" in err, err
    assert Path("/dev/null").is_char_device()
    if make is not None:
        assert not target.is_file()


@pytest.mark.parametrize("cmd", ["compile", "emit"])
def test_a_symlinked_output_is_written_through(spec: Path, tmp_path: Path, cmd: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real.out"
    real.write_text("old")
    link = tmp_path / "link.out"
    link.symlink_to(real)
    assert run(capsys, cmd, str(spec), "-o", str(link))[0] == 0
    assert link.is_symlink() and real.read_bytes() != b"old"


# ---- 5. an output is never one of the inputs -------------------------------------------------
@pytest.mark.parametrize("cmd", ["compile", "emit", "draw"])
@pytest.mark.parametrize("alias", ["same", "hardlink", "symlink", "included", "weights"])
def test_output_that_is_an_input_is_refused(spec: Path, tmp_path: Path, cmd: str, alias: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    args: list[str] = []
    if alias == "same":
        target = spec
    elif alias == "hardlink":
        target = tmp_path / "h.net"
        os.link(spec, target)
    elif alias == "symlink":
        target = tmp_path / "l.onnx"
        target.symlink_to(spec)
    elif alias == "included":
        target = tmp_path / "lib.net"
        target.write_text("block b() { relu }\n")
        spec.write_text('include "lib.net"\n' + SPEC + "b()\n")
    else:
        if cmd != "compile":
            pytest.skip("only compile reads weights")
        target = tmp_path / "w.safetensors"
        target.write_bytes(b"not really weights")
        args = ["--weights", str(target)]
    before = target.read_bytes()
    code, _, err = run(capsys, cmd, str(spec), "-o", str(target), *args)
    assert code == 1 and "the output is one of the inputs" in err, err
    assert target.read_bytes() == before


# ---- 6 and the output convention: default names come from the spec's file name ---------------
@pytest.mark.parametrize("name", ['"/tmp/netdsl-abs"', '"../x"', "../../etc/passwd", "x.y"],
                         ids=["absolute", "parent", "bare-dotted", "plain"])
def test_the_spec_text_never_chooses_where_compile_writes(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "cifar.net").write_text(f"network {name}\n{SPEC}")
    code, out, err = run(capsys, "compile", "cifar.net")
    if code == 1:  # not a valid network name at all
        assert "error" in err and list(work.iterdir()) == [work / "cifar.net"]
        return
    assert code == 0, err
    assert out.startswith("wrote cifar.onnx: ")
    assert sorted(p.name for p in work.iterdir()) == ["cifar.net", "cifar.onnx"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == \
        ["cifar.net", "cifar.onnx"]
    assert not Path("/tmp/netdsl-abs.onnx").exists()


def test_an_empty_network_name_is_a_located_error(spec: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec.write_text('network ""\n' + SPEC)
    for cmd in ("check", "compile", "emit", "draw"):
        code, _, err = run(capsys, cmd, str(spec))
        assert code == 1 and f"{spec}:1:9: error: the network name is empty" in err


@pytest.mark.parametrize(("ref", "name"), [
    ("specs/cifar.net", "cifar"), ("paper.md#2", "paper-2"), ("/x/..hidden.net", "hidden"),
    ("a b;rm -rf.net", "a_b_rm_-rf"), ("-o.net", "o"), ("....net", "model")])
def test_default_output_is_a_plain_file_name(ref: str, name: str) -> None:
    assert cli.default_output(ref, ".onnx") == name + ".onnx"


@pytest.mark.parametrize(("cmd", "ext"), [
    ("compile", ".onnx"),
    pytest.param("draw", ".svg", marks=pytest.mark.skipif(not DOT, reason="no Graphviz")),
])
def test_file_commands_default_to_the_spec_name_and_say_what_they_wrote(
        spec: Path, tmp_path: Path, cmd: str, ext: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, cmd, str(spec))
    assert code == 0, err
    assert out.startswith(f"wrote s{ext}: ") and (tmp_path / f"s{ext}").is_file()


def test_every_writing_command_says_wrote(spec: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "emit", str(spec), "-o", "m.py")
    assert code == 0 and out.startswith("wrote m.py: ")
    code, out, _ = run(capsys, "emit", str(spec))
    assert code == 0 and out.startswith('"""')  # no -o: the source itself, on stdout
    spec.write_text(UGLY)
    code, out, _ = run(capsys, "fmt", "-w", str(spec))
    assert code == 0 and out == f"wrote {spec}\n"
    code, out, _ = run(capsys, "fmt", "-w", str(spec))  # already formatted: nothing written
    assert code == 0 and out == ""


@pytest.mark.parametrize("cmd", ["compile", "emit", "draw"])
@pytest.mark.parametrize("value", ["", "-"])
def test_empty_or_dash_output_is_a_usage_error(spec: Path, tmp_path: Path, cmd: str, value: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, cmd, str(spec), "-o", value)
    if cmd == "emit" and value == "-":
        assert code == 0 and out.startswith('"""')  # emit -o - is standard output
        return
    assert code == 2 and "netdsl: error: -o" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.net"]


# ---- 7. fmt -w keeps owner, mode, hard links and symlinks -----------------------------------
def test_fmt_w_keeps_mode_and_hard_links(spec: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec.write_text(UGLY)
    spec.chmod(0o640)
    twin = tmp_path / "twin.net"
    os.link(spec, twin)
    ino = spec.stat().st_ino
    assert run(capsys, "fmt", "-w", str(spec))[0] == 0
    assert spec.stat().st_ino == ino and spec.stat().st_nlink == 2
    assert twin.read_text() == spec.read_text() != UGLY
    assert spec.stat().st_mode & 0o777 == 0o640


def test_fmt_w_formats_a_symlinks_target_and_keeps_the_link(
        spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real.net"
    real.write_text(UGLY)
    spec.unlink()
    spec.symlink_to(real)
    assert run(capsys, "fmt", "-w", str(spec))[0] == 0
    assert spec.is_symlink() and real.read_text() != UGLY
    assert run(capsys, "fmt", "--check", str(real))[0] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_fmt_w_keeps_another_users_file_theirs(spec: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec.write_text(UGLY)
    os.chown(spec, 12345, 23456)
    spec.chmod(0o664)
    assert run(capsys, "fmt", "-w", str(spec))[0] == 0
    st = spec.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (12345, 23456, 0o664)
    assert spec.read_text() != UGLY


# ---- 8. SIGHUP unwinds like SIGTERM; SIGKILL's temporaries are removed by the next write -----
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".model.onnx.{_dead_pid()}.abcd_123.tmp"
        alive = tmp_path / f".model.onnx.{live.pid}.abcd_123.tmp"
        other = tmp_path / f".other.onnx.{_dead_pid()}.abcd_123.tmp"  # another target's
        for p in (dead, alive, other):
            p.write_bytes(b"x" * 1000)
        atomic_write_text(target, "new")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [alive.name, other.name, "model.onnx"])
    finally:
        live.kill()
        live.wait()


def test_sighup_unwinds_like_sigterm(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("previous")
    code = ("import signal, time\nfrom netdsl import cli\n"
            "from netdsl.fsutil import atomic_write\n"
            "def slow(f):\n    f.write(b'x'); f.flush(); print('writing', flush=True)\n"
            "    time.sleep(60)\n"
            "for s in (signal.SIGTERM, signal.SIGHUP): signal.signal(s, cli.on_sigterm)\n"
            f"atomic_write({str(target)!r}, slow)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert p.stdout is not None and p.stdout.readline() == "writing\n"
    p.send_signal(signal.SIGHUP)
    assert p.wait(timeout=10) == 128 + signal.SIGHUP
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out.txt"]
    assert target.read_text() == "previous"


def test_main_installs_the_sighup_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: dict[int, object] = {}
    monkeypatch.setattr(cli.signal, "signal", lambda s, h: installed.setdefault(s, h))
    monkeypatch.setattr(cli.signal, "getsignal", lambda s: signal.SIG_DFL)
    cli.main(["check", "specs/lenet5.net"] if (ROOT / "specs/lenet5.net").exists() else [])
    assert installed.get(signal.SIGHUP) is cli.on_sigterm


def test_unresolvable_output_paths_are_errors(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(NetdslError):
        atomic_write_text(loop, "x")


# ---- 9. include reads only the spec's tree, the shipped libraries and --include-path ----------
SECRET = "root:x:0:0:SECRET-LINE\n" * 12


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the spec's directory, and a .net twin of it (passes the suffix rule)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET)
    (outside / "passwd.net").write_text(SECRET)
    return outside


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "symlinked-dir", "not-net"])
def test_includes_outside_the_spec_tree_are_refused_without_reading(
        how: str, tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "proj" / "specs"
    work.mkdir(parents=True)
    if how == "absolute":
        path = str(secret / "passwd.net")
    elif how == "dotdot":
        path = "../" * 12 + str(secret / "passwd.net").lstrip("/")
    elif how == "symlink":
        (work / "lib.net").symlink_to(secret / "passwd.net")
        path = "lib.net"
    elif how == "symlinked-dir":
        (work / "lib").symlink_to(secret)
        path = "lib/passwd.net"
    else:
        (work / "passwd").write_text(SECRET)
        path = "passwd"
    (work / "net.net").write_text(f'include "{path}"\ninput 3x8x8\nrelu\n')
    code, _, err = run(capsys, "check", str(work / "net.net"))
    assert code == 1 and "cannot include" in err, err
    assert "SECRET" not in err and err.count("\n  1 |") == 1


def test_include_path_allows_a_directory_explicitly(tmp_path: Path, secret: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (secret / "blocks.net").write_text("block b() { conv3-4 }\n")
    spec = tmp_path / "proj" / "net.net"
    spec.parent.mkdir()
    spec.write_text(f'include "{secret / "blocks.net"}"\ninput 3x8x8\nb()\n')
    assert run(capsys, "check", str(spec))[0] == 1
    code, out, err = run(capsys, "check", "--include-path", str(secret), str(spec))
    assert code == 0 and ": ok (" in out, err


def test_the_shipped_block_library_can_always_be_included(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from netdsl.network import library_dirs

    (lib,) = library_dirs()[:1]
    spec = tmp_path / "net.net"
    spec.write_text(f'include "{lib / "resnet.net"}"\ninput 3x32x32\nbasic(16)\n')
    code, out, err = run(capsys, "check", str(spec))
    assert code == 0, err


# ---- 10. include of a symlink loop is a located error ------------------------------------------
@pytest.mark.parametrize("loop", ["self", "pair", "dir"])
def test_include_of_a_symlink_loop_is_a_located_error(
        loop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if loop == "self":
        (tmp_path / "a.net").symlink_to("a.net")
        path = "a.net"
    elif loop == "pair":
        (tmp_path / "a.net").symlink_to("b.net")
        (tmp_path / "b.net").symlink_to("a.net")
        path = "a.net"
    else:
        (tmp_path / "d").symlink_to("d")
        path = "d/x.net"
    spec = tmp_path / "net.net"
    spec.write_text(f'include "{path}"\ninput 3x8x8\nrelu\n')
    code, _, err = run(capsys, "check", str(spec))
    assert code == 1 and err.startswith(f"{spec}:1:1: error: cannot include"), err


@pytest.mark.parametrize("reader", ["spec", "onnx"])
def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str) -> None:
    """The type is checked again on the opened descriptor, opened non-blocking: a FIFO put in
    place between the path check and the open (simulated: the path check says "a regular
    file") is refused at once, where a plain open() would wait for a writer forever."""
    from netdsl.importer.read import read_model
    from netdsl.network import read_spec

    fifo = tmp_path / ("s.net" if reader == "spec" else "m.onnx")
    os.mkfifo(fifo)
    monkeypatch.setattr(Path, "is_file", lambda self: True)
    monkeypatch.setattr(Path, "is_dir", lambda self: False)
    signal.signal(signal.SIGALRM, lambda *a: pytest.fail("blocked opening a FIFO"))
    signal.alarm(5)
    try:
        with pytest.raises(NetdslError, match="FIFO"):
            read_spec(fifo) if reader == "spec" else read_model(fifo)
    finally:
        signal.alarm(0)
