"""PKI and report writes in a directory someone else prepared: no symlink is followed, a full disk or a short
write never leaves a truncated key behind a success, modes are exact whatever the umask (issue 16)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward import safefile
from kubeward.cli.main import cli
from kubeward.pki.files import key_matches, load_cert, load_key
from kubeward.pki.layout import InitOptions, init
from kubeward.safefile import SafeFileError, ensure_dir, write_file

run = CliRunner().invoke


@pytest.fixture()
def umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def _leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.endswith(".tmp")]


def test_force_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    (pki / "apiserver.key").unlink()
    (pki / "apiserver.key").symlink_to(victim)
    res = run(cli, ["pki", "init", str(pki), "--node-name", "cp1", "--key-type", "ecdsa", "--force"])
    assert res.exit_code == 2 and "apiserver.key: is a symbolic link; refusing to write through it" in res.output
    assert victim.read_text() == "do not touch\n"


def test_rotate_never_writes_through_a_symlink(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    real = tmp_path / "elsewhere.crt"
    real.write_bytes((pki / "apiserver.crt").read_bytes())
    (pki / "apiserver.crt").unlink()
    (pki / "apiserver.crt").symlink_to(real)
    before = real.read_bytes()
    res = run(cli, ["pki", "rotate", str(pki), "--cert", "apiserver"])
    assert res.exit_code == 2 and "symbolic link" in res.output
    assert real.read_bytes() == before and (pki / "apiserver.crt").is_symlink()


def test_no_replace_refuses_even_a_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "k.key").symlink_to(tmp_path / "nowhere")
    with pytest.raises(SafeFileError, match="symbolic link"):
        write_file(tmp_path / "k.key", b"secret", mode=0o600, replace=False)
    assert not (tmp_path / "nowhere").exists() and _leftovers(tmp_path) == []


def test_a_symlink_raced_in_after_the_check_is_replaced_not_followed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is checked, then someone plants a symlink before the rename: rename replaces the link itself."""
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    target = tmp_path / "report.json"
    real_temp = safefile._temp

    def temp_then_plant(parent: Path, name: str, mode: int) -> tuple[int, Path]:
        out = real_temp(parent, name, mode)
        target.symlink_to(victim)
        return out

    monkeypatch.setattr(safefile, "_temp", temp_then_plant)
    write_file(target, b"{}", mode=0o644, replace=True)
    assert victim.read_text() == "keep\n" and not target.is_symlink() and target.read_bytes() == b"{}"


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    load_key(pki / "ca.key")  # complete and valid, written 7 bytes at a time


@pytest.mark.parametrize("failure", ["no-progress", "enospc"])
def test_full_disk_is_an_error_and_leaves_the_old_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      failure: str) -> None:
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    before = (pki / "ca.key").read_bytes()
    real_write = os.write
    budget = [100]  # the disk fills up 100 bytes into the first key of the next run

    def full(fd: int, data: bytes) -> int:
        if budget[0] <= 0:
            if failure == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return 0
        n = real_write(fd, bytes(data)[:budget[0]])
        budget[0] -= n
        return n

    monkeypatch.setattr(os, "write", full)
    res = run(cli, ["pki", "init", str(pki), "--node-name", "cp1", "--key-type", "ecdsa", "--force"])
    monkeypatch.setattr(os, "write", real_write)
    assert res.exit_code == 2, res.output
    assert "No space left on device" in res.output and res.output.count("\n") == 1
    assert (pki / "ca.key").read_bytes() == before  # the key that was there is intact, not truncated
    assert _leftovers(pki) == []


def test_keys_are_private_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.umask(0)
    try:
        seen: list[int] = []
        real_write = os.write

        def spy(fd: int, data: bytes) -> int:
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", spy)
        write_file(tmp_path / "a.key", b"-----BEGIN EC PRIVATE KEY-----\n", mode=0o600, replace=False)
        assert seen == [0o600] and _mode(tmp_path / "a.key") == 0o600
    finally:
        os.umask(0o022)


@pytest.mark.usefixtures("umask")
def test_directories_have_exact_modes_whatever_the_umask(tmp_path: Path) -> None:
    pki = tmp_path / "a" / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    assert _mode(tmp_path / "a") == 0o755 and _mode(pki) == 0o755 and _mode(pki / "etcd") == 0o755
    assert _mode(pki / "ca.crt") == 0o644 and _mode(pki / "ca.key") == 0o600
    assert run(cli, ["pki", "issue-user", str(pki), "alice"]).exit_code == 0
    assert _mode(pki / "users") == 0o700 and _mode(pki / "users/alice.key") == 0o600
    os.umask(0)
    ensure_dir(tmp_path / "b" / "c", 0o700)
    assert _mode(tmp_path / "b") == 0o700 and _mode(tmp_path / "b" / "c") == 0o700


def test_ensure_dir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(SafeFileError, match=r"(?i)not a directory"):
        ensure_dir(tmp_path / "f" / "sub")


def test_report_output_refuses_symlink_and_is_atomic(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "out.json").symlink_to(victim)
    res = run(cli, ["pki", "check", str(pki), "-o", "json", "--output", str(tmp_path / "out.json")])
    assert res.exit_code == 2 and "symbolic link" in res.output
    assert victim.read_text() == "keep\n"
    out = tmp_path / "report.json"
    out.write_text("old")
    out.chmod(0o640)
    res = run(cli, ["pki", "check", str(pki), "-o", "json", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("{") and _mode(out) == 0o640  # replaced whole, keeping its mode
    assert _leftovers(tmp_path) == []


def test_scan_json_output_refuses_symlink(tmp_path: Path) -> None:
    m = tmp_path / "pod.yaml"
    m.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "r.json").symlink_to(victim)
    res = run(cli, ["scan", str(m), "-o", "json", "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "symbolic link" in res.output
    assert victim.read_text() == "keep\n"


def test_report_output_short_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    res = run(cli, ["pki", "check", str(pki), "-o", "json", "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "short write" in res.output
    assert not (tmp_path / "r.json").exists() and _leftovers(tmp_path) == []


def test_output_dash_is_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = tmp_path / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["pki", "check", str(pki), "-o", "json", "--output", "-"])
    assert res.exit_code == 0 and res.stdout.lstrip().startswith("{")
    assert not (tmp_path / "-").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=5000), chunk=st.integers(min_value=1, max_value=600), replace=st.booleans())
def test_any_sequence_of_short_writes_gives_the_whole_file(tmp_path: Path, data: bytes, chunk: int,
                                                           replace: bool) -> None:
    """Property: however the kernel splits the writes, the file holds exactly the data, with exactly its mode."""
    real_write = os.write
    target = tmp_path / f"f-{chunk}-{len(data)}-{replace}"
    if replace:
        target.write_bytes(b"old content")
    elif target.exists():
        target.unlink()
    try:
        os.write = lambda fd, buf: real_write(fd, bytes(buf)[:chunk])  # type: ignore[assignment]
        write_file(target, data, mode=0o640, replace=replace)
    finally:
        os.write = real_write  # type: ignore[assignment]
    assert target.read_bytes() == data and _mode(target) == 0o640 and _leftovers(tmp_path) == []


@pytest.fixture()
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 512 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("needs root and tmpfs mounts")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _fill(fs: Path) -> None:
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while os.write(fd, b"\0" * 512) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_really_full_disk_never_leaves_a_truncated_key(small_fs: Path) -> None:
    pki = small_fs / "pki"
    res = run(cli, ["pki", "init", str(pki), "--node-name", "cp1", "--key-type", "ecdsa"])
    assert res.exit_code == 0, res.output
    before = {p: p.read_bytes() for p in pki.rglob("*.key")}
    _fill(small_fs)
    res = run(cli, ["pki", "rotate", str(pki), "--new-keys"])
    assert res.exit_code == 2 and "No space left on device" in res.output, res.output
    for p in pki.rglob("*.key"):  # all or nothing: every key whole, the old one, beside its old certificate
        assert p.read_bytes() == before[p]
        if p.with_suffix(".crt").exists():
            assert key_matches(load_cert(p.with_suffix(".crt")), load_key(p))
    assert not [p for p in pki.rglob("*.tmp")]
    (small_fs / "filler").unlink()
    fresh = small_fs / "fresh"
    _fill(small_fs)
    res = run(cli, ["pki", "init", str(fresh), "--key-type", "ecdsa"])
    assert res.exit_code == 2 and "No space left on device" in res.output
    assert not [p for p in fresh.rglob("*") if p.is_file()] if fresh.exists() else True  # no half PKI
