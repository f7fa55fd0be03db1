"""One alert record for the audit streams and the node agent: each kind keeps its JSON line, and every sink,
fold and table line takes any of them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from kubeward.alerts import Alert, fold
from kubeward.alertsinks import AlertSink, FileSink, StreamSink
from kubeward.findings import Severity

EXEC_KEYS = ["time", "type", "pid", "ppid", "uid", "exe", "scope", "decision", "rule", "reason", "mode", "severity"]
SCOPE = {"cgroup": "/kubepods/pod1/c1", "podUID": "1", "namespace": "shop", "pod": "web", "container": "app"}


def _exec(decision: str = "deny", rule: str | None = None) -> Alert:
    return Alert.exec_alert(time="2024-05-01T10:00:00.000001Z", pid=42, ppid=1, uid=0, exe="/tmp/x", scope=SCOPE,
                            decision=decision, rule=rule, reason="not-allowlisted", mode="enforce")


def _flow() -> Alert:
    return Alert.flow_alert(time="2024-05-01T10:00:01Z", message="unauthorized communication attempt",
                            flow={"src": "shop/web", "dst": "shop/db", "port": 5432, "protocol": "TCP",
                                  "denied": ["ingress"], "policies": ["shop/db-in"], "srcIP": "10.0.0.1",
                                  "dstIP": "10.0.0.2"})


def _audit() -> Alert:
    ev = {"auditID": "a1", "stageTimestamp": "2024-05-01T10:00:02Z", "verb": "get",
          "user": {"username": "jane", "groups": ["dev"]}, "impersonatedUser": {"username": "admin"},
          "sourceIPs": ["10.0.0.9"], "userAgent": "kubectl/1.30", "requestURI": "/api/v1/namespaces/shop/secrets/db",
          "objectRef": {"resource": "secrets", "namespace": "shop", "name": "db"}, "responseStatus": {"code": 200}}
    return Alert.of("secret-read", Severity.MEDIUM, ev, "read secret shop/db", "/objectRef")


def test_exec_alert_keeps_the_agents_json_line() -> None:
    d = _exec().to_json()
    assert list(d) == EXEC_KEYS
    assert (d["type"], d["pid"], d["exe"], d["decision"], d["rule"], d["reason"]) == (
        "exec", 42, "/tmp/x", "deny", None, "not-allowlisted")
    assert d["scope"] == SCOPE and d["severity"] == "high"
    assert _exec("alert", "pinned").to_json()["rule"] == "pinned" and _exec("alert").severity is Severity.MEDIUM
    assert _exec().outcome == {"allowed": False, "decision": "deny"}


def test_flow_and_audit_alerts_keep_their_json() -> None:
    d = _flow().to_json()
    assert (d["type"], d["alert"], d["src"], d["dst"], d["port"], d["srcIP"], d["policies"]) == (
        "flow", "unauthorized communication attempt", "shop/web", "shop/db", 5432, "10.0.0.1", ["shop/db-in"])
    a = _audit().to_json()
    assert "type" not in a and (a["user"], a["groups"], a["impersonatedUser"]["username"]) == ("jane", ["dev"], "admin")
    assert (a["verb"], a["objectRef"]["name"], a["sourceIPs"], a["userAgent"], a["field"]) == (
        "get", "db", ["10.0.0.9"], "kubectl/1.30", "/objectRef")
    assert a["outcome"] == {"code": 200, "allowed": True} and Alert.from_json(a).to_json() == a


def test_every_sink_takes_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    out = io.StringIO()
    file_sink, agent_sink, table = FileSink(str(path)), AlertSink(str(tmp_path / "b.jsonl")), StreamSink("table", out)
    for a in (_exec(), _flow(), _audit()):
        for s in (file_sink, agent_sink, table):
            s.emit(a)
    for s in (file_sink, agent_sink, table):
        s.close(2.0)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x.get("type", "audit") for x in lines] == ["exec", "flow", "audit"]
    assert (tmp_path / "b.jsonl").read_text() == path.read_text() and agent_sink.count == 3
    text = out.getvalue().splitlines()
    assert "uid 0 in shop/web" in text[0] and "/tmp/x [denied]" in text[0]
    assert "shop/web -> shop/db 5432/TCP [denied]" in text[1] and "jane as admin from 10.0.0.9" in text[2]
    assert [n for _, n in fold([_exec(), _exec(), _flow()])] == [2, 1]
