"""Audit policy differential proof: the live apiserver runs e2e/apiserver/audit-policy.yaml (mixed levels, users,
groups, resources, resourceNames, namespaces, non-resource URLs, omitStages). We drive requests as several users;
every event in the real audit log must carry the level kubeward's evaluator predicts (and a stage the predicted
omitStages allows), every driven request predicted above None must be logged, and none predicted None may be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml
from livekube import namespace, wait_for

from kubeward.engines.auditpolicy import Attributes, UserInfo, attributes_from_event, parse_policy
from kubeward.sources.cluster import Client

USERS = {"audit-rr": (), "audit-req": ("audit-request-group",), "audit-plain": ("plain",)}


def _user_client(live: Any, tmp: Path, name: str, groups: tuple[str, ...]) -> Client:
    kc = tmp / f"{name}.kubeconfig"
    args = ["pki", "issue-user", str(live.pki), name, "--kubeconfig-out", str(kc), "--server", live.server]
    for g in groups:
        args += ["--group", g]
    out = subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return Client(str(kc))


def _requests() -> list[tuple[str, str, dict[str, Any] | None, Any]]:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    out: list[tuple[str, str, dict[str, Any] | None, Any]] = []
    for ns in ("audit-rr-ns", "default"):
        base = f"/api/v1/namespaces/{ns}"
        out += [
            ("POST", f"{base}/configmaps", None, cm),
            ("GET", f"{base}/configmaps/a", None, None),
            ("GET", f"{base}/configmaps", None, None),
            ("PUT", f"{base}/configmaps/a/status", None, cm),
            ("GET", f"{base}/secrets", None, None),
            ("GET", f"{base}/pods", None, None),
            ("GET", f"{base}/pods/x/log", None, None),
            ("GET", f"/apis/apps/v1/namespaces/{ns}/deployments", None, None),
            # A create names no object in its URL: the policy's resourceNames rule does not select it, although
            # the logged objectRef.name is "audited-role" (filled from the body after the policy was evaluated).
            ("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", None,
             {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "audited-role"},
              "rules": []}),
            ("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/audited-role", None, None),
            ("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/other-role", None, None),
            ("DELETE", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/audited-role", None, None),
            ("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", None, None),
            ("GET", f"{base}/configmaps", {"watch": "true", "timeoutSeconds": "1"}, None),
            ("GET", f"{base}/secrets", {"watch": "true", "timeoutSeconds": "1"}, None),
            ("DELETE", f"{base}/configmaps/a", None, None),
        ]
    out += [("GET", p, None, None) for p in ("/api", "/apis/apps", "/healthz", "/version", "/metrics", "/openapi/v2",
                                                 "/logs/x")]
    out += [("GET", "/api/v1/nodes", None, None), ("GET", "/api/v1/namespaces", None, None)]
    return out


def _events(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [orjson.loads(line) for line in lines if line.strip()]


def _attributes(user: UserInfo, method: str, path: str, query: dict[str, Any] | None) -> Attributes:
    """requestinfo.go, reduced to the URLs this test drives: /api/v1/…, /apis/G/V/…, else non-resource."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return Attributes.non_resource(method.lower(), path, user)
    ns = ""
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        ns, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "watch" if (query or {}).get("watch") == "true" else "get" if name else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}[method]
    return Attributes(verb, resource, sub, group, ns, name, path, user=user)


def test_every_audit_event_has_the_predicted_level(live: Any, admin: Client, tmp_path: Path) -> None:
    policy = parse_policy(yaml.safe_load(live.audit_policy.read_text()))
    namespace(admin, "audit-rr-ns")
    clients = {"kubeward-admin": (admin, ("system:masters",))}
    clients |= {u: (_user_client(live, tmp_path, u, g), g) for u, g in USERS.items()}
    driven: dict[str, tuple[str, str]] = {}  # Audit-Id → (what, predicted level)
    for who, (client, groups) in clients.items():
        user = UserInfo(who, (*groups, "system:authenticated"))
        for method, path, query, body in _requests():
            _, _, headers = client.call(method, path, query=query, body=body)
            audit_id = {k.lower(): v for k, v in headers.items()}.get("audit-id")
            assert audit_id, f"{who} {method} {path}: no Audit-Id header"
            level = policy.evaluate(_attributes(user, method, path, query)).level
            driven[audit_id] = (f"{who} {method} {path} {query or ''}", level)

    must_log = {i for i, (_, level) in driven.items() if level != "None"}
    wait_for("driven requests in the audit log",
             lambda: must_log <= {e["auditID"] for e in _events(live.audit_log)}, 15)
    events = _events(live.audit_log)
    mismatches, levels, stages = [], {}, set()
    for ev in events:
        stages.add(ev["stage"])
        decision = policy.evaluate(attributes_from_event(ev))
        levels[ev["level"]] = levels.get(ev["level"], 0) + 1
        if ev["level"] != decision.level or ev["stage"] in decision.omit_stages:
            mismatches.append(f"event {ev['auditID']} {ev['verb']} {ev['requestURI']} user={ev['user']}: logged "
                              f"level={ev['level']} stage={ev['stage']}, predicted level={decision.level} "
                              f"omitStages={sorted(decision.omit_stages)} (rule {decision.rule})")
    assert not mismatches, "\n".join(mismatches[:20])
    created = [e for e in events if e["verb"] == "create" and (e.get("objectRef") or {}).get("name") == "audited-role"]
    assert created and all(e["level"] == "Metadata" for e in created), created  # not the resourceNames rule's Request
    logged = {e["auditID"] for e in events}
    wrongly_logged = [what for i, (what, level) in driven.items() if level == "None" and i in logged]
    assert not wrongly_logged, wrongly_logged
    assert {"Metadata", "Request", "RequestResponse"} <= set(levels), levels
    assert stages == {"ResponseStarted", "ResponseComplete"}, stages  # watches start responses; RequestReceived omitted
    none = len(driven) - len(must_log)
    print(f"\naudit: {len(events)}/{len(events)} logged events have the predicted level and stage {levels}; "
          f"of {len(driven)} driven requests {len(must_log)} logged and {none} predicted None absent")
