"""prefilter.idle_filter never hides an event from the analyzer: over generated event streams (every rule's trigger
fields: verbs, resources, subresources, users, namespaces, codes, sources, impersonation, bodies; case variants,
wrong types, missing fields), analysis with the filter in the reader equals analysis that feeds every event, alert
for alert and count for count, and an event the filter passes over is one feed would raise nothing on. The lines
are written as a user's log would hold them: key order shuffled, whitespace, strings spelled with JSON escapes
("\\u0073ecrets")."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.audit.analyzer import Analyzer, AnalyzerConfig
from kubeward.audit.detections import Settings, builtin
from kubeward.audit.parallel import analyze_file_parallel, report_json
from kubeward.audit.prefilter import idle_filter
from kubeward.audit.reader import ReadStats, iter_events
from kubeward.audit.rules import compile_rule
from kubeward.formats import document

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*", "Create", "proxy"]
RESOURCES = ["pods", "secrets", "Secrets", "configmaps", "services", "ingresses", "clusterroles", "roles",
             "clusterrolebindings", "rolebindings", "serviceaccounts", "certificatesigningrequests", "events",
             "daemonsets", "cronjobs", "deployments", "nodes", "subjectaccessreviews", "leases",
             "validatingwebhookconfigurations", "namespaces", *["leases"] * 12]  # most of a real log: no rule
SUBRESOURCES = [None, "", "exec", "attach", "portforward", "ephemeralcontainers", "token", "approval", "proxy",
                "status", "log", "Exec"]
USERS = ["jane@example.com", "jane@example.com", "system:anonymous", "System:Anonymous", "system:kube-controller-manager",
         "system:node:worker-1", "system:serviceaccount:kube-system:replicaset-controller",
         "system:serviceaccount:web:app", "mallory"]
STAGES = ["ResponseComplete", "ResponseComplete", "ResponseComplete", "ResponseStarted", "RequestReceived", "Panic",
          None]
CODES = [200, 200, 403, 403, 401, 201, 101, 404, 500, 403.0, None]
IPS = ["10.0.0.1", "10.0.0.2", "192.168.7.7", "::1", "not-an-ip", ""]
AGENTS = ["kubectl/v1.30.2", "kubelet/v1.30.2", "curl/8.0", ""]
BODIES: list[Any] = [
    None,
    {"spec": {"containers": [{"name": "a", "image": "x", "securityContext": {"privileged": True}}]}},
    {"spec": {"containers": [{"name": "a", "image": "x"}], "hostNetwork": True}},
    {"spec": {"type": "NodePort"}},
    {"data": {"password": "hunter2"}},
    {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "x"}]},
    {"roleRef": {"kind": "ClusterRole", "name": "edit"}},
    {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}]},
    {"spec": {"resourceAttributes": {"resource": "nodes", "subresource": "proxy"}, "user": "mallory"}},
    "not an object",
]

ODD_ONCE_IN_TEN = [False] * 9 + [True]
RARE, USUAL = [True] * 3 + [False] * 17, [True] * 19 + [False]


CASES = yaml.safe_load((Path(__file__).parent.parent / "data/audit/detection_cases.yaml").read_text())
BASE = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "requestURI": "/x",
        "user": {"username": "jane"}, "sourceIPs": ["10.0.0.1"], "responseStatus": {"code": 200},
        "stageTimestamp": "2024-05-01T10:00:00Z"}


@st.composite
def case_events(draw: Any) -> dict[str, Any]:
    """One of the detection cases (each rule's trigger event), with who, outcome, stage or a field varied."""
    ev = copy.deepcopy({**BASE, **draw(st.sampled_from(CASES))["event"], "auditID": str(draw(st.integers(0, 6)))})
    change = draw(st.sampled_from(["none", "user", "user", "user", "code", "stage", "drop", "subresource"]))
    if change == "user":
        ev["user"] = {"username": draw(st.sampled_from(USERS)), "groups": ["system:authenticated"]}
    elif change == "code":
        ev["responseStatus"] = {"code": draw(st.sampled_from(CODES))}
    elif change == "stage":
        ev["stage"] = draw(st.sampled_from(STAGES[:-1]))
    elif change == "drop":
        ev.pop(draw(st.sampled_from(sorted(ev))))
    elif change == "subresource" and isinstance(ev.get("objectRef"), dict):
        ev["objectRef"]["subresource"] = draw(st.sampled_from(SUBRESOURCES))
    return ev


@st.composite
def events(draw: Any) -> dict[str, Any]:
    """Mostly well-formed events; now and then a field is missing or of an odd shape."""
    pick = lambda xs: draw(st.sampled_from(xs))  # noqa: E731

    def choose(normal: list[Any], odd: list[Any]) -> Any:
        return pick(odd) if pick(ODD_ONCE_IN_TEN) else pick(normal)

    ev: dict[str, Any] = {"kind": "Event", "apiVersion": pick(["audit.k8s.io/v1", "audit.k8s.io/v1beta1"]),
                          "auditID": str(draw(st.integers(0, 6))), "requestURI": "/api/v1/x"}
    ref = draw(st.fixed_dictionaries({"resource": st.sampled_from(RESOURCES)},
                                     optional={"subresource": st.sampled_from(SUBRESOURCES),
                                               "namespace": st.sampled_from(["kube-system", "default", "prod"]),
                                               "name": st.sampled_from(["a", "system:node", "cluster-admin"]),
                                               "apiGroup": st.sampled_from(["", "rbac.authorization.k8s.io"])}))
    fields: dict[str, Any] = {
        "stage": choose(STAGES[:-1], [None]),
        "verb": pick(VERBS),
        "user": choose([{"username": u, "groups": ["system:authenticated"]} for u in USERS], [{}, "jane", None]),
        "sourceIPs": choose([[ip] for ip in IPS] + [["192.168.7.7", "10.0.0.1"]], [[], "10.0.0.1, ::1", 5]),
        "userAgent": choose(AGENTS, [7, None]),
        "objectRef": choose([ref], [{}, "pods", {"resource": ["pods"]}]),
        "responseStatus": choose([{"code": c} for c in CODES] + [{"code": 500, "status": "Failure"}], ["403", {}]),
        "impersonatedUser": pick([{"username": "bob"}, {"username": "system:kube-scheduler"}, {}]),
        "requestObject": pick(BODIES),
        "stageTimestamp": pick(["2024-05-01T10:00:00Z", "2024-05-01T10:00:30Z", "2024-05-01T10:00:31Z", "bad"]),
    }
    for k, v in fields.items():
        rare = k in ("impersonatedUser", "requestObject")
        if pick(RARE if rare else USUAL) and (v is not None or draw(st.booleans())):
            ev[k] = v
    return ev


def _escape(line: bytes, rnd: random.Random) -> bytes:
    """Spell some ASCII letters inside strings as \\u00XX escapes: "\\u0073ecrets" is the string "secrets"."""
    out = bytearray()
    in_string = escaped = False
    for b in line:
        if in_string and not escaped and b != 0x5C and b != 0x22 and chr(b).isalpha() and rnd.random() < 0.2:
            out += b"\\u%04x" % b
            continue
        out.append(b)
        if escaped:
            escaped = False
        elif b == 0x5C:
            escaped = True
        elif b == 0x22:
            in_string = not in_string
    return bytes(out)


def _line(ev: dict[str, Any], variant: int, rnd: random.Random) -> bytes:
    if variant == 1:  # other key order
        ev = dict(reversed(list(ev.items())))
    line = orjson.dumps(ev, option=orjson.OPT_INDENT_2 if variant == 2 else 0)
    if variant == 2:
        line = line.replace(b"\n", b" ")  # whitespace everywhere, still one line
    if variant == 3:
        line = _escape(line, rnd)
    return line


CONFIGS = [
    (AnalyzerConfig(burst_threshold=2, burst_window=3600), Settings()),
    (AnalyzerConfig(burst_threshold=3, allowed_cidrs=("10.0.0.0/16",), allowed_user_agents=("^kube",)), Settings()),
    (AnalyzerConfig(burst_threshold=0, allowed_cidrs=("10.0.0.0/8", "::1/128")),
     Settings(disallowed_users=frozenset({"mallory"}), disallowed_namespaces=frozenset({"prod"}))),
]
CUSTOM = compile_rule({"id": "lease-write", "match": {"verb": ["update"], "objectRef.resource": "leases",
                                                        "user.username": {"prefix": "jane"}}}, "test")


def _analyzer(i: int) -> Analyzer:
    config, s = CONFIGS[i % len(CONFIGS)]
    return Analyzer(builtin(s) + ([CUSTOM] if i >= len(CONFIGS) else []), config)


def _run(path: str, an: Analyzer, with_filter: bool) -> tuple[list[Any], dict[str, Any], int, int]:
    rs = ReadStats()
    alerts: list[Any] = []
    for ev in iter_events([path], rs, skip=idle_filter(an) if with_filter else None):
        alerts.extend(a.to_json() for a in an.feed(ev))
    return alerts, an.stats.to_json(), rs.events, rs.bad_lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(events(), case_events(), case_events()), min_size=4, max_size=30), st.integers(0, 2 * len(CONFIGS) - 1), st.integers(0, 2**16))
def test_filtered_analysis_equals_full_analysis(tmp_path: Path, evs: list[dict[str, Any]], config: int,
                                                seed: int) -> None:
    rnd = random.Random(seed)
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(_line(e, rnd.randrange(4), rnd) + b"\n" for e in evs))
    full = _run(str(path), _analyzer(config), with_filter=False)
    assert _run(str(path), _analyzer(config), with_filter=True) == full
    # Event by event: whatever the filter passes over, feed (with the same history) raises nothing on.
    probe, twin = _analyzer(config), _analyzer(config)
    idle = idle_filter(probe)
    assert idle is not None
    for e in evs:
        ev, same = orjson.loads(orjson.dumps(e)), orjson.loads(orjson.dumps(e))
        if idle(ev):
            assert twin.feed(same) == [], e
        else:
            probe.feed(ev)
            twin.feed(same)
    if seed % 3:
        return
    # The workers' merge of byte ranges keeps the single-process report, bursts in place; so do the children's
    # alerts sent as JSON records (a JSON report), severity and rule read back with them.
    an = _analyzer(config)
    rs = ReadStats()
    got = analyze_file_parallel(str(path), str(path), 3, an, rs, records=bool(seed & 8))
    alerts = [a.to_json() for a in got]
    assert [(a.rule, a.severity.label) for a in got] == [(a["rule"], a["severity"]) for a in alerts]
    assert (rs.events, rs.bad_lines) == full[2:] and an.stats.events == full[1]["events"]
    if not any(a["rule"] in PER_RANGE for a in full[0]):
        assert alerts == full[0]
    # The JSON report with the children's records spliced in unread is the one formats.document writes.
    rest = {"stats": an.stats.to_json(), "errors": [e.to_json() for e in rs.errors]}
    assert report_json(got, rest).decode() + "\n" == document({"alerts": alerts, **rest}, "json")


# Rules whose memory is per byte range under --workers (parallel.py): their alerts may differ at range bounds.
PER_RANGE = frozenset({"exec-attach", "port-forward", "escalation-binding",
                       "pod-in-kube-namespace", "workload-in-kube-namespace"})


def test_filter_passes_over_quiet_events_and_counts_them() -> None:
    an = Analyzer(None, AnalyzerConfig(allowed_cidrs=("10.0.0.0/16",)))
    idle = idle_filter(an)
    assert idle is not None
    lease = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "verb": "get",
             "user": {"username": "system:kube-scheduler"}, "sourceIPs": ["10.0.0.1"], "userAgent": "k",
             "objectRef": {"resource": "leases"}, "responseStatus": {"code": 200}}
    assert not idle(dict(lease))  # the source pair is not known yet: feed judges it
    assert an.feed(dict(lease)) == []
    assert idle(dict(lease)) and an.stats.events == 2
    secret = {**lease, "objectRef": {"resource": "secrets"}, "user": {"username": "jane"}}
    assert not idle(secret) and an.feed(secret)
    assert not idle({**lease, "responseStatus": {"code": 403}})  # feeds the burst detector
    assert not idle({**lease, "impersonatedUser": {"username": "bob"}})
    assert not idle({**lease, "user": {"username": "system:anonymous"}})
    assert not idle({**lease, "sourceIPs": ["192.168.0.1"]})
    assert not idle({**lease, "kind": "EventList"}) and an.stats.events == 3  # not one plain Event: feed's path


def test_refusals_on_quiet_resources_still_make_bursts(tmp_path: Path) -> None:
    lease = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "verb": "get",
             "user": {"username": "jane"}, "sourceIPs": ["10.0.0.1"], "objectRef": {"resource": "leases"},
             "responseStatus": {"code": 403}, "stageTimestamp": "2024-05-01T10:00:00Z"}
    path = tmp_path / "a.log"
    path.write_bytes(b"".join(orjson.dumps({**lease, "auditID": str(i)}) + b"\n" for i in range(4)))
    got = _run(str(path), _analyzer(0), with_filter=True)
    assert got == _run(str(path), _analyzer(0), with_filter=False)
    assert got[1]["byRule"] == {"forbidden-burst": 2}  # per user and per source IP


def test_counts_are_written_when_the_consumer_stops_mid_block(tmp_path: Path) -> None:
    # The loop counts per block; a consumer that stops at an event still finds every event before it counted,
    # the idle ones by the analyzer too, and none after it.
    lease = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "verb": "get",
             "user": {"username": "system:kube-scheduler"}, "sourceIPs": ["10.0.0.1"], "userAgent": "k",
             "objectRef": {"resource": "leases"}, "responseStatus": {"code": 200}}
    secret = {**lease, "objectRef": {"resource": "secrets"}, "user": {"username": "jane"}}
    path = tmp_path / "a.log"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [lease, lease, lease, secret, lease, lease]))
    an = Analyzer(None, AnalyzerConfig())
    rs = ReadStats()
    it = iter_events([str(path)], rs, skip=idle_filter(an))
    assert next(it)["objectRef"]["resource"] == "secrets"
    it.close()
    assert (rs.events, an.stats.events) == (4, 3)
