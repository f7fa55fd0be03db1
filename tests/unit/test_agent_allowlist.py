"""ExecAllowlist parsing, scope matching, glob semantics, sha256 pins, learned output round-trip."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from kubeward.agent.allowlist import (
    AllowlistError,
    ProcessScope,
    compile_glob,
    dump_allowlist,
    learned_scope,
    load_allowlist,
    parse_allowlist,
)
from kubeward.agent.cgroups import parse_cgroup_path
from kubeward.agent.pods import PodIndex
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

UID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
CID = "ab" * 32
POD_CGROUP = f"/kubepods/burstable/pod{UID}/{CID}"


def doc(rules: list[dict], default: str | None = None) -> dict:
    spec: dict = {"rules": rules}
    if default:
        spec["defaultAction"] = default
    return {"apiVersion": "kubeward.io/v1", "kind": "ExecAllowlist", "metadata": {"name": "t"}, "spec": spec}


def pod_index() -> PodIndex:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-7d9", "namespace": "shop", "uid": UID},
           "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]},
           "status": {"containerStatuses": [{"name": "nginx", "image": "docker.io/library/nginx:1.25",
                                             "containerID": f"containerd://{CID}"}]}}
    return PodIndex.from_snapshot(Snapshot([Resource(pod)]))


HOST = ProcessScope.resolve(parse_cgroup_path("/system.slice/sshd.service"))
POD = ProcessScope.resolve(parse_cgroup_path(POD_CGROUP), pod_index())
POD_UNKNOWN = ProcessScope.resolve(parse_cgroup_path(POD_CGROUP))
NO_HASH = lambda: None  # noqa: E731


def test_pod_lookup_resolves_names() -> None:
    assert (POD.namespace, POD.pod, POD.container, POD.image) == ("shop", "web-7d9", "nginx",
                                                                  "docker.io/library/nginx:1.25")
    assert POD_UNKNOWN.pod_uid == UID and POD_UNKNOWN.pod is None
    assert POD.to_json()["pod"] == "web-7d9" and "pod" not in HOST.to_json()


def test_scopes() -> None:
    al = parse_allowlist(doc([
        {"name": "host", "scope": {"host": True}, "executables": ["/usr/bin/*"]},
        {"name": "web", "scope": {"namespace": "shop", "pod": "web-*", "container": "nginx"},
         "executables": ["/usr/sbin/nginx"]},
        {"name": "img", "scope": {"image": "docker.io/library/nginx:*"}, "executables": ["/bin/sh"]},
        {"name": "cg", "scope": {"cgroup": "/kubepods/burstable"}, "executables": ["/bin/cat"]},
        {"name": "uid", "scope": {"podUID": UID.upper()}, "executables": ["/bin/ls"]},
    ]))
    assert al.decide("/usr/bin/id", HOST, NO_HASH).rule == "host"
    assert not al.decide("/usr/sbin/nginx", HOST, NO_HASH).allowed
    assert al.decide("/usr/bin/id", POD, NO_HASH).reason == "not-allowlisted"  # host rule is not for pods
    for exe, rule in [("/usr/sbin/nginx", "web"), ("/bin/sh", "img"), ("/bin/cat", "cg"), ("/bin/ls", "uid")]:
        v = al.decide(exe, POD, NO_HASH)
        assert (v.allowed, v.rule) == (True, rule), exe
    # without the pod lookup only the cgroup and podUID scopes can match
    assert not al.decide("/usr/sbin/nginx", POD_UNKNOWN, NO_HASH).allowed
    assert al.decide("/bin/cat", POD_UNKNOWN, NO_HASH).allowed
    # the cgroup scope is a path prefix on segment boundaries
    other = ProcessScope.resolve(parse_cgroup_path(f"/kubepods/burstable2/pod{UID}/{CID}"))
    assert not al.decide("/bin/cat", other, NO_HASH).allowed


def test_default_action_applies_only_without_applicable_rule() -> None:
    al = parse_allowlist(doc([{"scope": {"host": True}, "executables": ["/bin/true"]}], default="allow"))
    v = al.decide("/bin/anything", POD, NO_HASH)
    assert v.allowed and v.reason == "no-rule-for-scope"
    assert not al.decide("/bin/false", HOST, NO_HASH).allowed  # host has a rule: not listed means denied
    strict = parse_allowlist(doc([{"scope": {"host": True}, "executables": ["/bin/true"]}]))
    assert not strict.decide("/bin/anything", POD, NO_HASH).allowed


def test_sha256_pin() -> None:
    good = hashlib.sha256(b"binary").hexdigest()
    al = parse_allowlist(doc([{"name": "pinned", "scope": {"host": True},
                               "executables": [{"path": "/opt/tool", "sha256": good.upper()}]}]))
    calls: list[int] = []

    def digest(value: str) -> object:
        return lambda: calls.append(1) or value

    assert al.decide("/opt/tool", HOST, digest(good)).allowed
    v = al.decide("/opt/tool", HOST, digest("0" * 64))
    assert (v.allowed, v.rule, v.reason) == (False, "pinned", "sha256-mismatch")
    calls.clear()
    al.decide("/opt/other", HOST, digest(good))
    assert calls == []  # no hashing when no pinned entry matches the path


@pytest.mark.parametrize("pattern,path,expected", [
    ("/usr/bin/*", "/usr/bin/ls", True),
    ("/usr/bin/*", "/usr/bin/sub/ls", False),
    ("/usr/**", "/usr/bin/sub/ls", True),
    ("/usr/lib/**/helper", "/usr/lib/a/b/helper", True),
    ("/bin/?s", "/bin/ls", True),
    ("/bin/?s", "/bin//s", False),
    ("/bin/[a-c]at", "/bin/cat", True),
    ("/bin/[!a-c]at", "/bin/rat", True),
    ("/bin/[!a-c]at", "/bin/bat", False),
    ("/bin/l*", "/bin/ls.old", True),
    ("/bin/ls", "/bin/ls2", False),
    ("/a.b/*", "/aXb/c", False),
])
def test_glob(pattern: str, path: str, expected: bool) -> None:
    assert (compile_glob(pattern).match(path) is not None) == expected


@given(st.lists(st.sampled_from(["a", "b", ".", "*", "?"]), min_size=1, max_size=6),
       st.lists(st.sampled_from(["a", "b", ".", "/"]), max_size=8))
def test_glob_single_segment_property(pattern: list[str], path: list[str]) -> None:
    """Within one segment the glob agrees with a reference regex; `*` and `?` never consume a '/'."""
    pat, p = "/" + "".join(pattern), "/" + "".join(path)
    assume("**" not in pat)  # `**` is the one operator that crosses segments
    ref = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pat)
    assert (compile_glob(pat).match(p) is not None) == (re.fullmatch(ref, p) is not None)


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(kind="Other"), "kind ExecAllowlist"),
    (lambda d: d.update(spec=[]), "spec must be a mapping"),
    (lambda d: d["spec"].update(defaultAction="maybe"), "defaultAction"),
    (lambda d: d["spec"]["rules"][0].update(scope={}), "scope must be a non-empty mapping"),
    (lambda d: d["spec"]["rules"][0].update(scope={"node": "x"}), "unknown key 'node'"),
    (lambda d: d["spec"]["rules"][0].update(scope={"host": "yes"}), "host must be true or false"),
    (lambda d: d["spec"]["rules"][0].update(scope={"host": True, "pod": "x"}), "cannot be combined"),
    (lambda d: d["spec"]["rules"][0].update(scope={"cgroup": "kubepods"}), "absolute cgroup path"),
    (lambda d: d["spec"]["rules"][0].update(executables=[]), "non-empty list"),
    (lambda d: d["spec"]["rules"][0].update(executables=["bin/ls"]), "absolute path"),
    (lambda d: d["spec"]["rules"][0].update(executables=[{"path": "/x", "sha256": "zz"}]), "64 hex"),
    (lambda d: d["spec"]["rules"][0].update(executables=[{"path": "/x", "md5": "a"}]), "unknown key 'md5'"),
])
def test_invalid(mutate: object, needle: str) -> None:
    d = doc([{"scope": {"host": True}, "executables": ["/bin/ls"]}])
    mutate(d)  # type: ignore[operator]
    with pytest.raises(AllowlistError) as err:
        parse_allowlist(d, "al.yaml")
    msg = str(err.value)
    assert msg.startswith("al.yaml: ") and needle in msg and "\n" not in msg


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match=r"missing\.yaml: no such file"):
        load_allowlist(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [\n")
    with pytest.raises(AllowlistError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_allowlist(str(bad))
    with pytest.raises(AllowlistError, match="is a directory"):
        load_allowlist(str(tmp_path))
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(AllowlistError, match=r"empty\.yaml: no ExecAllowlist document"):
        load_allowlist(str(empty))


def test_load_refuses_alias_bombs(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdef", "bcdefg", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(AllowlistError, match="alias bomb"):
        load_allowlist(str(bomb))


def test_load_picks_the_allowlist_document(tmp_path: Path) -> None:
    f = tmp_path / "multi.yaml"
    f.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                                     doc([{"scope": {"host": True}, "executables": ["/bin/ls"]}])]))
    assert load_allowlist(str(f)).rules[0].executables[0].path == "/bin/ls"
    f.write_text(yaml.safe_dump_all([doc([]), doc([])]))
    with pytest.raises(AllowlistError, match="2 ExecAllowlist documents, expected one"):
        load_allowlist(str(f))


def test_learned_roundtrip(tmp_path: Path) -> None:
    groups = {learned_scope(HOST): {"/bin/true", "/usr/bin/id"},
              learned_scope(POD): {"/usr/sbin/nginx"},
              learned_scope(POD_UNKNOWN): {"/bin/sh"}}
    text = dump_allowlist(groups, "node-a")
    out = tmp_path / "learned.yaml"
    out.write_text(text)
    al = load_allowlist(str(out))
    assert al.name == "node-a" and not al.default_allow
    assert {r.name for r in al.rules} == {"host", "shop/web-7d9/nginx", UID}
    assert al.decide("/usr/bin/id", HOST, NO_HASH).allowed
    assert al.decide("/usr/sbin/nginx", POD, NO_HASH).allowed
    assert al.decide("/bin/sh", POD, NO_HASH).allowed  # via the podUID rule
    assert not al.decide("/bin/sh", HOST, NO_HASH).allowed
    assert yaml.safe_load(text)["spec"]["rules"][0]["executables"] == sorted(
        yaml.safe_load(text)["spec"]["rules"][0]["executables"])


_EXES = ["/bin/a", "/bin/b", "/usr/bin/c", "/opt/x/d"]
_PATTERNS = ["/bin/a", "/bin/*", "/usr/**", "/opt/?/d", "/nothing"]
_SCOPES = [{"host": True}, {"namespace": "shop"}, {"pod": "web-*"}, {"container": "nginx"},
           {"cgroup": "/kubepods"}, {"podUID": UID}, {"image": "other:*"}]


@given(st.lists(st.tuples(st.sampled_from(_SCOPES), st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=3)),
                max_size=6),
       st.sampled_from(_EXES), st.sampled_from([HOST, POD, POD_UNKNOWN]), st.booleans(), st.randoms())
def test_decision_is_the_documented_union(rules: list, exe: str, proc: ProcessScope, default_allow: bool,
                                          rnd: object) -> None:
    """allowed ⇔ (some applicable rule lists exe) or (no rule applies and defaultAction is allow); rule order and
    the memo never change the answer."""
    raw = [{"name": f"r{i}", "scope": scope, "executables": pats} for i, (scope, pats) in enumerate(rules)]
    al = parse_allowlist(doc(raw, default="allow" if default_allow else None))
    applicable = [r for r in al.rules if r.applies(proc)]
    expected = any(e.path_matches(exe) for r in applicable for e in r.executables) or (
        not applicable and default_allow)
    first = al.decide(exe, proc, NO_HASH)
    assert first.allowed == expected
    assert al.decide(exe, proc, NO_HASH) == first  # memoised answer is the same
    shuffled = list(raw)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert parse_allowlist(doc(shuffled, default="allow" if default_allow else None)).decide(
        exe, proc, NO_HASH).allowed == expected
