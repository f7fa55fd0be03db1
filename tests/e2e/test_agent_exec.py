"""Exec allowlisting on the real kernel: fanotify permission events on a tmpfs we mount, real cgroups we create.

Nothing here marks a filesystem the test did not create; every mount, cgroup and process is cleaned up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

pytestmark = pytest.mark.e2e

if os.geteuid() != 0:
    pytest.skip("needs root (fanotify permission events, mounts, cgroups)", allow_module_level=True)

CG_V2 = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.procs").exists() \
    else Path("/sys/fs/cgroup")
CG_V1_PIDS = Path("/sys/fs/cgroup/pids")


# --- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Path]:
    """A private tmpfs holding copies of small binaries: the only place these tests mark."""
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200m", "none", str(target)], check=True)
    try:
        for name, src in (("ok", "/bin/true"), ("other", "/bin/true"), ("echo", "/bin/echo")):
            shutil.copy2(src, target / name)
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], check=False)


class Cgroups:
    """Test cgroup trees (kubepods shapes) under a kubeward-test-<rand> root, removed deepest first."""

    def __init__(self) -> None:
        self.roots: list[Path] = []

    def make(self, base: Path, rel: str) -> Path:
        root = base / f"kubeward-test-{uuid.uuid4().hex[:8]}"
        path = root / rel
        path.mkdir(parents=True)
        self.roots.append(root)
        return path

    def cleanup(self) -> None:
        for root in self.roots:
            for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                _rmdir(d)
            _rmdir(root)


def _rmdir(d: Path) -> None:
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


@pytest.fixture
def cgroups() -> Iterator[Cgroups]:
    cg = Cgroups()
    try:
        yield cg
    finally:
        cg.cleanup()


def run_in(cgroup: Path | None, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[bytes]:
    """Run argv with the child moved into `cgroup` before its exec (so the exec event carries that cgroup)."""
    def enter() -> None:
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    return subprocess.run(argv, preexec_fn=enter if cgroup else None, capture_output=True, timeout=timeout)


def try_exec(path: Path | str, cgroup: Path | None = None) -> int:
    """0 on success, -1 when the exec was refused with EPERM."""
    try:
        return run_in(cgroup, [str(path)]).returncode
    except PermissionError:
        return -1


def write_allowlist(path: Path, rules: list[dict], default: str = "deny") -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "kubeward.io/v1", "kind": "ExecAllowlist",
                                    "metadata": {"name": "test"},
                                    "spec": {"defaultAction": default, "rules": rules}}))
    return path


class Agent:
    """`kubeward agent …` as a child process; waits for its ready line on stderr."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", "agent", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(20):
            self.stop()
            raise AssertionError(f"agent not ready: {self.err}")

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.err.append(line)
            if "ready" in line or "watching" in line:
                self._ready.set()

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


@contextlib.contextmanager
def agent(*args: str) -> Iterator[Agent]:
    a = Agent(*args)
    try:
        yield a
    finally:
        a.stop()


def read_alerts(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []


def stats(a: Agent) -> dict:
    line = next(x for x in a.err if "stopped" in x)
    return orjson.loads(line.split("stopped ", 1)[1])


ENFORCE = ("exec", "enforce", "--mode", "enforce")  # alert mode is the default
UID = str(uuid.uuid4())
CID = uuid.uuid4().hex + uuid.uuid4().hex


def snapshot_file(tmp_path: Path) -> Path:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop", "uid": UID},
           "spec": {"containers": [{"name": "app", "image": "registry.local/app:1"}]},
           "status": {"containerStatuses": [{"name": "app", "image": "registry.local/app:1",
                                             "containerID": f"containerd://{CID}"}]}}
    p = tmp_path / "pods.yaml"
    p.write_text(yaml.safe_dump(pod))
    return p


# --- enforce ----------------------------------------------------------------------------------------------------
def test_enforce_allows_listed_and_denies_the_rest(mnt: Path, tmp_path: Path) -> None:
    al = write_allowlist(tmp_path / "al.yaml", [{"name": "host-ok", "scope": {"host": True},
                                                 "executables": [str(mnt / "ok"), str(mnt / "e*o")]}])
    alerts = tmp_path / "alerts.jsonl"
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", str(alerts)) as a:
        assert try_exec(mnt / "ok") == 0
        assert run_in(None, [str(mnt / "echo"), "hi"]).stdout == b"hi\n"  # glob rule
        assert try_exec(mnt / "other") == -1
        assert try_exec("/bin/true") == 0  # not on the marked mount
        assert a.stop() == 0
    [alert] = read_alerts(alerts)
    assert alert["exe"] == str(mnt / "other") and alert["decision"] == "deny"
    assert alert["reason"] == "not-allowlisted" and alert["rule"] is None and alert["uid"] == 0
    assert alert["ppid"] == os.getpid() and isinstance(alert["pid"], int) and alert["time"].endswith("Z")
    assert "pod" not in alert["scope"]
    s = stats(a)
    assert (s["allowed"], s["denied"]) == (2, 1)


def test_alert_mode_allows_but_reports(mnt: Path, tmp_path: Path) -> None:
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [str(mnt / "ok")]}])
    alerts = tmp_path / "alerts.jsonl"
    with agent("exec", "enforce", "--allowlist", str(al), "--mount", str(mnt), "--mode", "alert",
               "--alerts", str(alerts)):
        assert try_exec(mnt / "other") == 0
        assert try_exec(mnt / "ok") == 0
    [alert] = read_alerts(alerts)
    assert (alert["exe"], alert["decision"], alert["mode"]) == (str(mnt / "other"), "alert", "alert")


def test_filesystem_mark(mnt: Path, tmp_path: Path) -> None:
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [str(mnt / "ok")]}])
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--filesystem", "--alerts", "-"):
        assert try_exec(mnt / "ok") == 0
        assert try_exec(mnt / "other") == -1


@pytest.mark.parametrize("layout", ["v2-systemd-containerd", "v1-cgroupfs"])
def test_pod_scopes_from_real_cgroups(mnt: Path, tmp_path: Path, cgroups: Cgroups, layout: str) -> None:
    if layout.startswith("v2"):
        esc = UID.replace("-", "_")
        rel = (f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{esc}.slice/"
               f"cri-containerd-{CID}.scope")
        base = CG_V2
    else:
        if not CG_V1_PIDS.is_dir():
            pytest.skip("no cgroup v1 pids hierarchy on this host")
        rel, base = f"kubepods/besteffort/pod{UID}/{CID}", CG_V1_PIDS
    container_cg = cgroups.make(base, rel)
    al = write_allowlist(tmp_path / "al.yaml", [
        {"name": "app", "scope": {"namespace": "shop", "pod": "web-*", "container": "app"},
         "executables": [str(mnt / "ok")]},
        {"name": "by-image", "scope": {"image": "registry.local/app:*"}, "executables": [str(mnt / "echo")]},
        {"name": "host", "scope": {"host": True}, "executables": [str(mnt / "other")]},
    ])
    alerts = tmp_path / "alerts.jsonl"
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", str(alerts),
               "--snapshot", str(snapshot_file(tmp_path))):
        assert try_exec(mnt / "ok", container_cg) == 0
        assert try_exec(mnt / "echo", container_cg) == 0
        assert try_exec(mnt / "other", container_cg) == -1  # a host rule does not cover pods
        assert try_exec(mnt / "ok") == -1  # and the pod rule does not cover the host
        assert try_exec(mnt / "other") == 0
    pod_alert, host_alert = read_alerts(alerts)
    assert pod_alert["exe"] == str(mnt / "other")
    assert pod_alert["scope"]["podUID"] == UID and pod_alert["scope"]["containerID"] == CID
    assert (pod_alert["scope"]["namespace"], pod_alert["scope"]["pod"], pod_alert["scope"]["container"]) == (
        "shop", "web-0", "app")
    assert pod_alert["scope"]["image"] == "registry.local/app:1"
    assert "podUID" not in host_alert["scope"]


def test_own_process_tree_is_never_denied(mnt: Path, tmp_path: Path) -> None:
    """The enforcer runs inside this test process with a deny-everything list: our own children still exec."""
    from kubeward.agent.enforce import EnforceConfig, Enforcer
    from kubeward.alertsinks import AlertSink

    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"cgroup": "/nowhere"}, "executables": ["/none"]}])
    sink = AlertSink(str(tmp_path / "alerts.jsonl"))
    enf = Enforcer(EnforceConfig(str(al), [str(mnt)], mode="enforce", decision_timeout_ms=5000), sink)
    t = threading.Thread(target=enf.run, daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        assert try_exec(mnt / "ok") == 0
        assert run_in(None, ["/bin/sh", "-c", f"{mnt / 'ok'} && {mnt / 'other'}"]).returncode == 0  # grandchildren
    finally:
        enf.stop()
        t.join(5)
        sink.close()
    assert enf.stats.self_tree == 3 and enf.stats.denied == 0
    # and a process outside our tree is denied by the same list: a fresh agent, its parent is not this test
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", "-"):
        assert try_exec(mnt / "ok") == -1


def test_sha256_pins(mnt: Path, tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha256((mnt / "ok").read_bytes()).hexdigest()
    al = write_allowlist(tmp_path / "al.yaml", [{"name": "pinned", "scope": {"host": True}, "executables": [
        {"path": str(mnt / "ok"), "sha256": digest}, {"path": str(mnt / "echo"), "sha256": digest}]}])
    alerts = tmp_path / "alerts.jsonl"
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", str(alerts)):
        assert try_exec(mnt / "ok") == 0
        assert try_exec(mnt / "echo") == -1  # the path matches, the content does not
    [alert] = read_alerts(alerts)
    assert (alert["rule"], alert["reason"]) == ("pinned", "sha256-mismatch")


def test_sighup_reload_without_dropping_events(mnt: Path, tmp_path: Path) -> None:
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [str(mnt / "ok")]}])
    alerts = tmp_path / "alerts.jsonl"
    results: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            results.append(try_exec(mnt / "other"))

    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", str(alerts)) as a:
        t = threading.Thread(target=hammer)
        t.start()
        time.sleep(0.5)
        # a broken file is refused and the previous list stays in force
        (tmp_path / "al.yaml").write_text("kind: [\n")
        a.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        denied_before = results.count(-1)
        write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True},
                                               "executables": [str(mnt / "ok"), str(mnt / "other")]}])
        a.proc.send_signal(signal.SIGHUP)
        time.sleep(0.8)
        stop.set()
        t.join(30)
        assert not t.is_alive()
        assert try_exec(mnt / "other") == 0
        assert a.stop() == 0
    assert denied_before > 0 and results[-1] == 0 and results.count(0) > 0
    assert all(r in (0, -1) for r in results)
    # every refused exec produced exactly one alert: no event was lost across the reloads
    assert len(read_alerts(alerts)) == results.count(-1)
    s = stats(a)
    assert s["reloads"] == 1 and s["reload_errors"] == 1
    assert any("reload refused" in line for line in a.err)


def _big_binary(mnt: Path, mb: int) -> Path:
    """A real ELF (a copy of true) padded to `mb` MiB so hashing it takes a measurable while."""
    big = mnt / "big"
    shutil.copy2("/bin/true", big)
    with big.open("ab") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(mb):
            f.write(chunk)
    return big


@pytest.mark.parametrize("on_timeout,expected", [("deny", -1), ("allow", 0)])
def test_decision_timeout(mnt: Path, tmp_path: Path, on_timeout: str, expected: int) -> None:
    big = _big_binary(mnt, 256)
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [
        {"path": str(big), "sha256": "0" * 64}, str(mnt / "ok")]}])
    alerts = tmp_path / "alerts.jsonl"
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", str(alerts),
               "--decision-timeout-ms", "40", "--on-timeout", on_timeout) as a:
        box: dict[str, float] = {}

        def queued() -> None:  # behind the stuck decision: decided by the watchdog from paths, not starved
            time.sleep(0.08)
            t1 = time.monotonic()
            box["ok"] = try_exec(mnt / "ok")
            box["other"] = try_exec(mnt / "other")
            box["dt"] = time.monotonic() - t1

        t = threading.Thread(target=queued)
        t.start()
        t0 = time.monotonic()
        rc = try_exec(big)
        elapsed = time.monotonic() - t0
        t.join(10)
        time.sleep(0.6)  # let the hash finish so stats are final
        a.stop()
    assert rc == expected
    assert elapsed < 0.2, elapsed  # hashing takes ~0.25 s; the exec was answered at the 40 ms deadline
    # an allowlisted exec still runs and a refused one is still refused, whatever --on-timeout says
    assert (box["ok"], box["other"]) == (0, -1) and box["dt"] < 0.4, box
    got = read_alerts(alerts)
    timeouts = [x for x in got if x["reason"] == "decision-timeout"]
    assert [x["exe"] for x in timeouts] == [str(big)] and timeouts[0]["decision"] == on_timeout
    assert [(x["exe"], x["decision"]) for x in got if x["reason"] == "not-allowlisted"] == [
        (str(mnt / "other"), "deny")]
    assert stats(a)["timeouts"] == 1


def test_kill_9_releases_pending_execs(mnt: Path, tmp_path: Path) -> None:
    """SIGKILL mid-load: the kernel answers every pending permission event when the fanotify fd closes."""
    big = _big_binary(mnt, 768)
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [
        {"path": str(big), "sha256": "0" * 64}, str(mnt / "ok")]}])
    a = Agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", "-",
              "--decision-timeout-ms", "60000")
    try:
        results: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                results.append(try_exec(mnt / "ok"))

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        big_box: dict[str, int] = {}
        tb = threading.Thread(target=lambda: big_box.setdefault("rc", try_exec(big)))
        tb.start()
        time.sleep(0.15)  # the big exec is pending while the agent hashes 768 MiB; the others queue behind it
        assert tb.is_alive()
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        tb.join(10)
        assert not tb.is_alive() and big_box["rc"] == 0  # released by the kernel, not by the agent
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join(20)
            assert not w.is_alive()
        assert results and all(r == 0 for r in results)
        assert try_exec(mnt / "ok") == 0 and try_exec(mnt / "other") == 0  # no mark survives the agent
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait(5)


# --- learn ------------------------------------------------------------------------------------------------------
def test_learn_on_mount_then_enforce(mnt: Path, tmp_path: Path, cgroups: Cgroups) -> None:
    esc = UID.replace("-", "_")
    container_cg = cgroups.make(CG_V2, f"kubepods.slice/kubepods-pod{esc}.slice/crio-{CID}.scope")
    out = tmp_path / "learned.yaml"
    with agent("exec", "learn", "--duration", "3", "--output", str(out), "--mount", str(mnt),
               "--snapshot", str(snapshot_file(tmp_path))) as a:
        assert try_exec(mnt / "ok") == 0
        assert try_exec(mnt / "echo", container_cg) == 0
        assert a.wait(20) == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["apiVersion"] == "kubeward.io/v1" and doc["kind"] == "ExecAllowlist"
    rules = {r["name"]: r for r in doc["spec"]["rules"]}
    assert rules["host"]["scope"] == {"host": True} and rules["host"]["executables"] == [str(mnt / "ok")]
    pod_rule = rules["shop/web-0/app"]
    assert pod_rule["scope"] == {"namespace": "shop", "pod": "web-0", "container": "app"}
    assert pod_rule["executables"] == [str(mnt / "echo")]
    with agent(*ENFORCE, "--allowlist", str(out), "--mount", str(mnt), "--alerts", "-",
               "--snapshot", str(snapshot_file(tmp_path))):
        assert try_exec(mnt / "ok") == 0
        assert try_exec(mnt / "echo", container_cg) == 0
        assert try_exec(mnt / "echo") == -1
        assert try_exec(mnt / "other") == -1


def test_learn_with_proc_connector(tmp_path: Path) -> None:
    out = tmp_path / "learned.yaml"
    sleeper = tmp_path / "kw-sleeper"
    shutil.copy2("/bin/sleep", sleeper)
    with agent("exec", "learn", "--duration", "2", "--output", str(out)) as a:
        p = subprocess.Popen([str(sleeper), "0.5"])
        p.wait(5)
        assert a.wait(20) == 0
    doc = yaml.safe_load(out.read_text())
    host = next(r for r in doc["spec"]["rules"] if r["scope"] == {"host": True})
    assert str(sleeper) in host["executables"]


def test_sighup_also_reloads_the_snapshot(mnt: Path, tmp_path: Path, cgroups: Cgroups) -> None:
    """A pod that starts after the agent is named once the snapshot is re-read."""
    esc = UID.replace("-", "_")
    container_cg = cgroups.make(CG_V2, f"kubepods.slice/kubepods-pod{esc}.slice/cri-containerd-{CID}.scope")
    snap = tmp_path / "pods.yaml"
    snap.write_text("apiVersion: v1\nkind: List\nitems: []\n")
    al = write_allowlist(tmp_path / "al.yaml", [{"name": "app", "scope": {"namespace": "shop", "pod": "web-0"},
                                                 "executables": [str(mnt / "ok")]}])
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", "-",
               "--snapshot", str(snap)) as a:
        assert try_exec(mnt / "ok", container_cg) == -1  # the pod is unknown: no rule applies, default deny
        snapshot_file(tmp_path)  # rewrites pods.yaml with the pod and its container
        a.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while try_exec(mnt / "ok", container_cg) != 0:
            assert time.monotonic() < deadline, "the snapshot was not reloaded"
            time.sleep(0.1)


def test_without_cap_sys_admin_is_one_line(tmp_path: Path) -> None:
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": ["/bin/true"]}])
    r = subprocess.run(["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable, "-m",
                        "kubeward.cli.main", "agent", "exec", "enforce", "--mode", "enforce", "--allowlist", str(al), "--mount",
                        str(tmp_path), "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == ("kubeward: exec enforce: fanotify_init: Operation not permitted "
                                "(needs root with CAP_SYS_ADMIN)")


def test_learn_notify_mode(mnt: Path, tmp_path: Path, cgroups: Cgroups) -> None:
    """Notification mode never holds an exec; a process that lives long enough is attributed to its pod."""
    esc = UID.replace("-", "_")
    container_cg = cgroups.make(CG_V2, f"kubepods.slice/kubepods-pod{esc}.slice/cri-containerd-{CID}.scope")
    shutil.copy2("/bin/sleep", mnt / "sleep")
    out = tmp_path / "learned.yaml"
    with agent("exec", "learn", "--duration", "2.5", "--output", str(out), "--mount", str(mnt), "--notify") as a:
        assert run_in(container_cg, [str(mnt / "sleep"), "0.5"]).returncode == 0
        assert run_in(None, [str(mnt / "sleep"), "0.5"]).returncode == 0
        assert a.wait(20) == 0
    rules = {r["name"]: r for r in yaml.safe_load(out.read_text())["spec"]["rules"]}
    assert rules["host"]["executables"] == [str(mnt / "sleep")]
    assert rules[UID] == {"name": UID, "scope": {"podUID": UID}, "executables": [str(mnt / "sleep")]}


def test_kill_9_of_the_learner_releases_execs(mnt: Path, tmp_path: Path) -> None:
    """Learning with a permission group holds execs briefly; killing it mid-load releases them all."""
    a = Agent("exec", "learn", "--duration", "60", "--output", str(tmp_path / "l.yaml"), "--mount", str(mnt),
              "--filesystem")
    try:
        results: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                results.append(try_exec(mnt / "ok"))

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(0.3)
        a.proc.send_signal(signal.SIGSTOP)  # the learner stops answering: execs queue up
        time.sleep(0.3)
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        time.sleep(0.2)
        stop.set()
        for w in workers:
            w.join(20)
            assert not w.is_alive()
        assert len(results) > 3 and all(r == 0 for r in results)
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait(5)


def test_container_rootfs_overlay_is_covered_by_a_filesystem_mark(mnt: Path, tmp_path: Path) -> None:
    """Container root filesystems are overlays over the runtime's snapshot filesystem: marking that filesystem
    (--filesystem) covers execs made through the overlay, so pods started later are enforced without new marks."""
    for d in ("lower", "upper", "work"):
        (mnt / d).mkdir()
    shutil.copy2("/bin/true", mnt / "lower" / "app")
    shutil.copy2("/bin/true", mnt / "lower" / "tool")
    merged = tmp_path / "merged"
    merged.mkdir()
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True},
                                                 "executables": ["/app", f"{merged}/app", f"{mnt}/lower/app"]}])
    alerts = tmp_path / "alerts.jsonl"
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--filesystem",
               "--alerts", str(alerts)):
        # the overlay is mounted after the agent started, as a container's would be
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={mnt}/lower,upperdir={mnt}/upper,workdir={mnt}/work", str(merged)], check=True)
        try:
            assert try_exec(merged / "app") == 0
            assert try_exec(merged / "tool") == -1
        finally:
            subprocess.run(["umount", str(merged)], check=False)
    [alert] = read_alerts(alerts)
    assert alert["exe"] in ("/tool", f"{merged}/tool"), alert["exe"]


# --- a stuck or gone alert reader -------------------------------------------------------------------------------
def test_unread_alert_pipe_never_holds_an_exec(mnt: Path, tmp_path: Path) -> None:
    """Alerts go to a pipe nobody reads (the Agent helper never reads stdout): once it is full, execs must still be
    decided at once, the losses counted, and SIGTERM must still stop the agent."""
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [str(mnt / "ok")]}])
    n = 1200  # ~300 bytes an alert: the 64 KiB pipe and the 64-slot queue are full after a few hundred
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", "-", "--alert-queue", "64",
               "--decision-timeout-ms", "500") as a:
        worst = 0.0
        refused = 0
        for _ in range(n):
            t0 = time.monotonic()
            refused += try_exec(mnt / "other") == -1
            worst = max(worst, time.monotonic() - t0)
        assert try_exec(mnt / "ok") == 0
        t0 = time.monotonic()
        assert a.stop() == 0
        stop_took = time.monotonic() - t0
    assert refused == n  # every exec decided by the allowlist, none by a timeout
    assert worst < 0.5, worst  # hung for ever before, as soon as the pipe was full
    assert stop_took < 8, stop_took
    s = stats(a)
    assert s["denied"] == n and s["timeouts"] == 0
    assert s["alerts_dropped"] > 0 and s["alerts_dropped"] <= n
    assert any("dropping (counted)" in line for line in a.err)
    assert any(f"{s['alerts_dropped']} alerts dropped" in line for line in a.err)


def test_broken_alert_pipe_keeps_the_watchdog(mnt: Path, tmp_path: Path) -> None:
    """EPIPE on the alert output used to kill the watchdog thread: later decisions then waited for the hash."""
    big = _big_binary(mnt, 256)
    al = write_allowlist(tmp_path / "al.yaml", [{"scope": {"host": True}, "executables": [
        {"path": str(big), "sha256": "0" * 64}, str(mnt / "ok")]}])
    with agent(*ENFORCE, "--allowlist", str(al), "--mount", str(mnt), "--alerts", "-",
               "--decision-timeout-ms", "40", "--on-timeout", "allow") as a:
        assert a.proc.stdout is not None
        a.proc.stdout.close()  # the reader is gone: every alert write now fails with EPIPE
        for i in range(3):  # each timeout alert is written by the watchdog and fails
            os.utime(big, ns=(i * 10**9, i * 10**9))  # a new mtime: the cached digest does not apply
            t0 = time.monotonic()
            assert try_exec(big) == 0
            assert time.monotonic() - t0 < 0.2  # answered at the 40 ms deadline, every time
            time.sleep(0.6)  # let the hash finish
        assert a.stop() == 0
    s = stats(a)
    assert s["timeouts"] == 3 and s["alerts_failed"] >= 1
    assert any("cannot write" in line for line in a.err)
