"""sourceIPs as the apiserver builds them (utilnet.SourceIPs: X-Forwarded-For entries, X-Real-Ip, then always the
connection's address last), bounded per-identity state, folded table lines, alert fields."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kubeward.alerts import Alert, connection_ip, fold
from kubeward.audit.analyzer import Analyzer, AnalyzerConfig, BurstDetector

BASE: dict[str, Any] = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "verb": "list",
    "requestURI": "/api/v1/namespaces/a/secrets", "user": {"username": "mallory", "groups": ["system:authenticated"]},
    "objectRef": {"resource": "secrets", "namespace": "a"}, "responseStatus": {"code": 403},
    "userAgent": "curl/8.5", "stageTimestamp": "2024-05-01T10:00:00Z",
}


def ev(i: int, ips: Any, user: str = "mallory", t: int = 0) -> dict[str, Any]:
    e = copy.deepcopy(BASE)
    e.update(auditID=f"e{i}", sourceIPs=ips, user={"username": user}, stageTimestamp=f"2024-05-01T10:00:{t:02d}Z")
    return e


def test_connection_address_is_the_last_entry() -> None:
    assert connection_ip(ev(0, ["1.2.3.4", "5.6.7.8", "10.0.0.9"])) == "10.0.0.9"
    assert connection_ip(ev(0, "1.2.3.4, 10.0.0.9")) == "10.0.0.9"  # flattened by an exporter
    assert connection_ip(ev(0, [])) == ""


def test_burst_cannot_be_spread_over_forged_forwarded_for() -> None:
    # Each request claims another client in X-Forwarded-For; the connection is the same: one IP burst.
    an = Analyzer([], AnalyzerConfig(burst_threshold=5, burst_window=60))
    alerts = [a for i in range(5) for a in an.feed(ev(i, [f"198.51.100.{i}", "203.0.113.7"], user=f"u{i}"))]
    assert [a.message.split(" from ")[1].split(" within")[0] for a in alerts] == ["source IP 203.0.113.7"]


def test_allowed_cidr_is_judged_on_the_connection_not_the_claim() -> None:
    an = Analyzer([], AnalyzerConfig(burst_threshold=0, allowed_cidrs=("10.0.0.0/8",)))
    [a] = an.feed(ev(0, ["10.0.0.5", "203.0.113.7"]))  # claims an inside address, connects from outside
    assert "203.0.113.7 outside" in a.message and "forwarded for 10.0.0.5" in a.message
    assert an.feed(ev(1, ["203.0.113.7", "10.1.1.1"], user="bob")) == []  # behind an inside proxy: allowed


def test_burst_state_is_bounded_and_the_drop_counted() -> None:
    an = Analyzer([], AnalyzerConfig(burst_threshold=3, burst_window=60, burst_capacity=100))
    for i in range(1000):
        an.feed(ev(i, [f"10.{i // 250}.{i % 250}.1"], user="mallory"))
    assert an.burst is not None and len(an.burst._times) <= 100
    assert an.stats.state_dropped == an.burst.dropped == 1000 - 99  # the user key stays, most recently used
    assert an.stats.to_json()["stateDropped"] == 901


def test_burst_keeps_at_most_threshold_timestamps_per_key() -> None:
    b = BurstDetector(threshold=4, window=3600)
    for i in range(50):
        list(b.feed(ev(i, ["10.0.0.1"], t=i % 60)))
    assert all(len(q) <= 4 for q in b._times.values())


def test_identical_alerts_fold_within_the_window() -> None:
    an = Analyzer(config=AnalyzerConfig(burst_threshold=0))
    alerts = [a for i in range(24) for a in an.feed(ev(i, ["10.0.0.1"], t=i))]
    alerts += an.feed(ev(99, ["10.0.0.1"], user="other"))
    folded = list(fold(alerts, 60))
    assert [(a.rule, a.user, n) for a, n in folded] == [("secret-access-denied", "mallory", 24),
                                                        ("secret-access-denied", "other", 1)]
    late = copy.deepcopy(alerts[0])
    late.time = "2024-05-01T10:05:00Z"
    assert [n for _, n in fold([*alerts[:24], late], 60)] == [24, 1]


def test_alert_carries_who_what_where_outcome_why() -> None:
    e = ev(0, ["198.51.100.1", "10.0.0.2"])
    e["impersonatedUser"] = {"username": "bob", "groups": ["dev"]}
    [a] = [x for x in Analyzer(config=AnalyzerConfig(burst_threshold=0)).feed(e) if x.rule == "secret-access-denied"]
    d = a.to_json()
    assert d["user"] == "mallory" and d["impersonatedUser"] == {"username": "bob", "groups": ["dev"]}
    assert d["sourceIPs"] == ["198.51.100.1", "10.0.0.2"] and d["userAgent"] == "curl/8.5"
    assert d["outcome"] == {"code": 403, "allowed": False} and d["requestURI"] == BASE["requestURI"]
    assert Alert.from_json(d).to_json() == d
    assert "mallory as bob from 10.0.0.2 list secrets in a [denied 403]" in a.line()


def test_table_line_escapes_terminal_control_from_the_event() -> None:
    e = ev(0, ["10.0.0.1"], user="evil\x1b[2J\rname")
    [a] = Analyzer(config=AnalyzerConfig(burst_threshold=0)).feed(e)
    assert "\x1b" not in a.line() and "\\x1b[2J\\x0dname" in a.line()


def test_cli_folds_table_and_keeps_json_per_event(tmp_path: Path) -> None:
    import orjson

    from kubeward.cli.main import cli

    log = tmp_path / "a.log"
    log.write_bytes(b"".join(orjson.dumps(ev(i, ["10.0.0.1"], t=i)) + b"\n" for i in range(24)))
    r = CliRunner().invoke(cli, ["audit", "analyze", "--burst-threshold", "0", str(log)])
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("×24") and lines[1].startswith("24 events, 24 alerts")
    r = CliRunner().invoke(cli, ["audit", "analyze", "--burst-threshold", "0", "-o", "json", str(log)])
    assert len(orjson.loads(r.stdout)["alerts"]) == 24


def test_rules_file_sets_control_plane_and_disallowed_lists(tmp_path: Path) -> None:
    import orjson

    from kubeward.cli.main import cli

    rules = tmp_path / "rules.yaml"
    rules.write_text("controlPlane: {users: [mallory], userPrefixes: [], groups: []}\n"
                     "disallowedUsers: [bob]\ndisallowedNamespaces: [a]\n")
    log = tmp_path / "a.log"
    log.write_bytes(orjson.dumps(ev(0, ["10.0.0.1"])) + b"\n" + orjson.dumps(ev(1, ["10.0.0.1"], user="bob")) + b"\n")
    r = CliRunner().invoke(cli, ["audit", "analyze", "--burst-threshold", "0", "--rules", str(rules), "-o", "json",
                                 str(log)])
    got = sorted((a["user"], a["rule"]) for a in orjson.loads(r.stdout)["alerts"])
    assert got == [("bob", "disallowed-user"), ("bob", "secret-access-denied")]  # mallory is exempt; reads: no write
    bad = tmp_path / "bad.yaml"
    bad.write_text("controlPlane: {user: [x]}\n")
    r = CliRunner().invoke(cli, ["audit", "analyze", "--rules", str(bad), str(log)])
    assert r.exit_code == 2 and "unknown key(s) user" in r.stderr


def test_source_verdicts_are_memoised_within_a_bound_and_judged_alike() -> None:
    # The per-address / per-agent memo must give the verdict a fresh parse gives, whatever the list shape, and
    # never grow past its bound on a log of ever-new addresses.
    import kubeward.audit.analyzer as mod

    an = Analyzer([], AnalyzerConfig(burst_threshold=0, allowed_cidrs=("10.0.0.0/8",),
                                     allowed_user_agents=("^kubectl/",)))
    shapes: list[Any] = [["10.0.0.1"], ["10.0.0.1"], ["192.0.2.1", "10.0.0.1"], [5, "10.0.0.1"],
                         "192.0.2.9, 203.0.113.4", ["10.0.0.1", 7], ["not-an-ip"], ["not-an-ip"]]
    got = [[a.message for a in an.feed(ev(i, ips, user=f"u{i}"))] for i, ips in enumerate(shapes)]
    ua = "; unexpected user agent 'curl/8.5'"
    assert got == [["unexpected user agent 'curl/8.5'"]] * 4 + [
        [f"source IP 203.0.113.4 outside the allowed networks (forwarded for 192.0.2.9){ua}"],
        ["unexpected user agent 'curl/8.5'"], [f"unparsable source IP 'not-an-ip'{ua}"],
        [f"unparsable source IP 'not-an-ip'{ua}"]]
    src = an.source
    assert src is not None
    for i in range(mod.VERDICT_MEMO_CAPACITY + 10):
        src._ip_verdict(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(src._ips) == mod.VERDICT_MEMO_CAPACITY
