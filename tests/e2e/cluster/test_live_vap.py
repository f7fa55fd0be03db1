"""`admission vap` on the real kube-apiserver: the exported policies type-check clean, and for the demo's pod-carrying
objects, their good/bad variants and the upstream PSS fixtures of the exported checks, the ValidatingAdmissionPolicy
decision (server-side dry-run create) equals the webhook's (`Decider`, as `admission test`) for the same controls:
denied exactly when the webhook denies, and warned of exactly the controls the webhook warns of.

Excluded, with the count printed: objects the apiserver rejects before validating admission runs (422).
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from livekube import namespace, wait_default_sa

from kubeward.admission.config import AdmissionConfig
from kubeward.admission.decide import Decider
from kubeward.admission.vap import RULES, export
from kubeward.resource import POD_KINDS
from vendored import pss_fixtures

DEMO = Path(__file__).resolve().parents[3] / "src" / "kubeward" / "demo"
PLURAL = {"Pod": "pods", "Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
          "DaemonSet": "daemonsets", "Job": "jobs", "CronJob": "cronjobs", "ReplicationController":
          "replicationcontrollers", "PodTemplate": "podtemplates"}
GROUP = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
         "Job": "batch/v1", "CronJob": "batch/v1"}
CONTROL = re.compile(r"kubeward: (KW-[A-Z]+[0-9]*(?:-[A-Za-z_]+)?) ")


def _path(kind: str, ns: str) -> str:
    gv = GROUP.get(kind)
    base = f"/apis/{gv}" if gv else "/api/v1"
    return f"{base}/namespaces/{ns}/{PLURAL[kind]}"


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    from kubeward.resource import POD_SPEC_PATHS

    cur = obj
    for k in POD_SPEC_PATHS[obj["kind"]]:
        cur = cur[k]
    return cur["spec"]  # type: ignore[no-any-return]


def variants(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The object, a hardened copy and copies that each break one or more exported checks."""
    out = [obj]
    good = copy.deepcopy(obj)
    spec = _pod_spec(good)
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        spec.pop(k, None)
    spec["volumes"] = [v for v in spec.get("volumes", []) if "hostPath" not in v]
    names = {v["name"] for v in spec["volumes"]}
    spec["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for c in spec.get("initContainers", []) + spec["containers"]:
        c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m.get("name") in names]
        c["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    out.append(good)
    bads: list[tuple[str, Any]] = [
        ("privileged", lambda s: s["containers"][-1]["securityContext"].update(privileged=True,
                                                                              allowPrivilegeEscalation=True)),
        ("hostpid", lambda s: s.update(hostPID=True)),
        ("hostpath", lambda s: s["volumes"].append({"name": "kwhost", "hostPath": {"path": "/var"}})),
        ("netadmin", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
        ("sysadmin", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["cap_sys_admin"])),
        ("extracap", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["CAP_CHOWN", "SYS_NICE"])),
        ("unconfined", lambda s: s["containers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"})),
        ("unmasked-host", lambda s: s["containers"][0]["securityContext"].update(procMount="Unmasked")),
        ("root-init", lambda s: s.setdefault("initContainers", []).append(
            {"name": "kwinit", "image": "busybox", "securityContext": {"runAsNonRoot": False}})),
        ("no-seccomp", lambda s: s["securityContext"].pop("seccompProfile")),
        ("hostport", lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 8080}])),
        ("root-uid", lambda s: s["securityContext"].update(runAsUser=0)),
        ("unmasked", lambda s: (s.update(hostUsers=False),
                                s["containers"][0]["securityContext"].update(procMount="Unmasked"))),
    ]
    for tag, mutate in bads:
        bad = copy.deepcopy(good)
        mutate(_pod_spec(bad))
        bad["metadata"]["name"] = f"{bad['metadata']['name'][:40]}-{tag}"
        out.append(bad)
    return out


def corpus() -> list[dict[str, Any]]:
    objs = [d for f in sorted(DEMO.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
            if isinstance(d, dict) and d.get("kind") in POD_KINDS]
    out = [v for o in objs for v in variants(o)]
    checks = {r.check for r in RULES.values()}
    root = pss_fixtures()
    for level in ("baseline", "restricted"):
        for f in sorted((root / level / "v1.37").glob("*/*.yaml")):
            if re.sub(r"\d+$", "", f.stem) in checks:
                out.append(yaml.safe_load(f.read_text()))
    return out


def _apply(admin: Any, obj: dict[str, Any]) -> None:
    status, doc = admin.json("POST", f"/apis/admissionregistration.k8s.io/v1/{_plural(obj)}", body=obj)
    assert status in (201, 409), (status, doc)


def _plural(obj: dict[str, Any]) -> str:
    return ("validatingadmissionpolicies" if obj["kind"] == "ValidatingAdmissionPolicy"
            else "validatingadmissionpolicybindings")


@pytest.fixture
def exported(admin: Any) -> Iterator[Any]:
    """The default export applied; removed afterwards (the cluster is shared by the session's other tests) and
    waited out, so no later test meets these policies."""
    out = export()
    try:
        for obj in out.objects:
            _apply(admin, obj)
        yield out
    finally:
        for obj in out.objects:
            admin.call("DELETE", f"/apis/admissionregistration.k8s.io/v1/{_plural(obj)}/{obj['metadata']['name']}")
        ns = f"vap-gone-{uuid.uuid4().hex[:6]}"
        namespace(admin, ns, {})
        wait_default_sa(admin, [ns])
        deadline = time.monotonic() + 60
        while admin.call("POST", _path("Pod", ns), body=_probe(ns), query={"dryRun": "All"})[0] != 201:
            assert time.monotonic() < deadline, "the exported policies still act after their deletion"
            time.sleep(0.5)


def _probe(ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}


def test_vap_export_matches_the_webhook(admin: Any, exported: Any) -> None:
    out = exported
    assert {c.meta.id for c in out.exported} == set(RULES)
    names = [o["metadata"]["name"] for o in out.objects if o["kind"] == "ValidatingAdmissionPolicy"]
    deadline = time.monotonic() + 60
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for n in sorted(pending):
            _, doc = admin.json("GET", f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{n}")
            st = doc.get("status") or {}
            if st.get("observedGeneration") == doc["metadata"]["generation"]:
                assert not (st.get("typeChecking") or {}).get("expressionWarnings"), (n, st)
                pending.discard(n)
        time.sleep(0.5)
    assert not pending, f"type checking never reported for {sorted(pending)}"

    ns = f"vap-{uuid.uuid4().hex[:6]}"
    namespace(admin, ns, {})
    wait_default_sa(admin, [ns])
    decider = Decider(AdmissionConfig(include=tuple(RULES)))
    # The policies take effect once the apiserver's policy source has synced: probe with a privileged pod.
    deadline = time.monotonic() + 60
    while admin.call("POST", _path("Pod", ns), body=_probe(ns), query={"dryRun": "All"})[0] != 403:
        assert time.monotonic() < deadline, "the exported policies never took effect"
        time.sleep(0.5)

    agree = disagree = skipped = denied = warned = 0
    problems: list[str] = []
    for i, obj in enumerate(corpus()):
        obj = copy.deepcopy(obj)
        obj["metadata"] = {"name": f"o{i}", "namespace": ns, "labels": obj.get("metadata", {}).get("labels", {})}
        status, raw, hdrs = admin.call("POST", _path(obj["kind"], ns), body=obj, query={"dryRun": "All"})
        if status == 422:
            skipped += 1
            continue
        assert status in (201, 403), (status, raw[:500])
        request = {"uid": "u", "operation": "CREATE", "namespace": ns, "object": obj,
                   "userInfo": {"username": "admin"}}
        d = decider.decide(request)
        server_warned = set(CONTROL.findall(" ".join(v for k, v in hdrs.items() if k.lower() == "warning")))
        ours_warned = {f.control.id for f in d.warned}
        ok = (status == 201) == d.allowed and (status != 201 or server_warned == ours_warned)
        if ok:
            agree += 1
            denied += status == 403
            warned += bool(server_warned) and status == 201
        else:
            disagree += 1
            problems.append(f"{obj['kind']} {i}: server {status} warned {sorted(server_warned)}; kubeward "
                            f"{d.reason} {[f.control.id for f in d.denied]} warned {sorted(ours_warned)}: "
                            f"{orjson.loads(raw).get('message', '')[:300] if status != 201 else ''}")
    print(f"vap differential: {agree} agree ({denied} denied, {warned} allowed with warnings), {disagree} disagree, {skipped} rejected by API "
          f"validation (422)")
    assert not problems, "\n".join(problems[:20])
    assert agree > 100 and denied > 20 and warned > 20
