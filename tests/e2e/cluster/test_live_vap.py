"""`admission vap` on the real kube-apiserver: the exported policies type-check clean, and for the demo's pod-carrying
objects, their good/bad variants and every vendored upstream PSS fixture, the ValidatingAdmissionPolicy
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
from kubeward.admission.decide import Decider, StaticNamespaces
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
        ("unmasked-host", lambda s: s["containers"][0]["securityContext"].update(procMount="Unmasked")),
        ("root-init", lambda s: s.setdefault("initContainers", []).append(
            {"name": "kwinit", "image": "busybox", "securityContext": {"runAsNonRoot": False}})),
        ("no-seccomp", lambda s: s["securityContext"].pop("seccompProfile")),
        ("hostport", lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 8080}])),
        ("root-uid", lambda s: s["securityContext"].update(runAsUser=0)),
        ("unmasked", lambda s: (s.update(hostUsers=False),
                                s["containers"][0]["securityContext"].update(procMount="Unmasked"))),
        ("hostnet", lambda s: s.update(hostNetwork=True)),
        ("hostipc", lambda s: s.update(hostIPC=True)),
        ("nodrop", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"])),
        ("addtime", lambda s: s["containers"][-1]["securityContext"]["capabilities"].update(add=["SYS_TIME"])),
        ("unconfined", lambda s: s["containers"][0]["securityContext"].update(
            seccompProfile={"type": "Unconfined"})),
        ("aa-field", lambda s: s["securityContext"].update(appArmorProfile={"type": "Unconfined"})),
        ("selinux", lambda s: s["containers"][0]["securityContext"].update(seLinuxOptions={"user": "system_u"})),
        ("seltype", lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"})),
        ("sysctl", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "65536"}])),
        ("nfs", lambda s: s["volumes"].append({"name": "kwnfs", "nfs": {"server": "10.0.0.1", "path": "/x"}})),
        ("gitrepo", lambda s: s["volumes"].append({"name": "kwgit", "gitRepo": {"repository": "https://x/y.git"}})),
        ("defaultcap", lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["CHOWN"])),
        ("foldcap", lambda s: s["containers"][-1]["securityContext"]["capabilities"].update(
            add=["\u017fys_admin", "Net_Raw", "sys_module", "cap_chown", "NET_BIND_SERVICE"])),
        ("probehost", lambda s: s["containers"][0].update(
            livenessProbe={"tcpSocket": {"port": 80, "host": "10.0.0.1"}})),
    ]
    for tag, mutate in bads:
        bad = copy.deepcopy(good)
        mutate(_pod_spec(bad))
        bad["metadata"]["name"] = f"{bad['metadata']['name'][:40]}-{tag}"
        out.append(bad)
    aa = copy.deepcopy(good)  # the beta AppArmor annotation, on the metadata beside the pod spec
    meta = _pod_meta(aa)
    meta.setdefault("annotations", {})[
        f"container.apparmor.security.beta.kubernetes.io/{_pod_spec(aa)['containers'][0]['name']}"] = "unconfined"
    aa["metadata"]["name"] = f"{aa['metadata']['name'][:40]}-aa-annotation"
    out.append(aa)
    return out


def _pod_meta(obj: dict[str, Any]) -> dict[str, Any]:
    from kubeward.resource import POD_SPEC_PATHS

    cur = obj
    for k in POD_SPEC_PATHS[obj["kind"]]:
        cur = cur[k]
    return cur.setdefault("metadata", {})  # type: ignore[no-any-return]


def corpus() -> list[dict[str, Any]]:
    """The demo's variants, then every vendored PSS fixture (all levels and versions; the same pod written for
    several versions is sent once)."""
    objs = [d for f in sorted(DEMO.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
            if isinstance(d, dict) and d.get("kind") in POD_KINDS]
    out = [v for o in objs for v in variants(o)]
    seen: set[bytes] = set()
    for f in sorted(pss_fixtures().glob("*/v1.*/*/*.yaml")):
        doc = yaml.safe_load(f.read_text())
        key = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        if key not in seen:
            seen.add(key)
            out.append(doc)
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

    objs = corpus()
    seen: set[str] = set()
    invalid: set[str] = set()
    agree, denied, warned, skipped, problems = _differential(admin, ns, decider, objs, seen, invalid)
    print(f"vap differential: {len(objs)} objects, {agree} agree ({denied} denied, {warned} allowed with warnings), "
          f"{len(problems)} disagree, {skipped} rejected by API validation (422)")
    assert not problems, "\n".join(problems[:20])
    assert agree > 300 and denied > 100 and warned > 50
    # Every exported control failed on some object both sides decided, or only on objects the apiserver's own
    # validation rejects (KW-W030: procMount Unmasked needs hostUsers: false, which the check exempts).
    assert seen | invalid == set(RULES), f"never failed in the corpus: {sorted(set(RULES) - seen - invalid)}"
    print(f"controls failing only on objects API validation rejects: {sorted(set(RULES) - seen)}")

    # Per-namespace kubeward.io/* labels, read by the policies through namespaceObject: stricter, looser, off,
    # unparsable (enforce fails closed, warn fails open) and mixed case, each decided as the webhook does.
    labelled = {
        "strict": {"kubeward.io/enforce": "medium"},
        "off": {"kubeward.io/enforce": "none", "kubeward.io/warn": "none"},
        "bad": {"kubeward.io/enforce": "bogus", "kubeward.io/warn": "bogus"},
        "critical": {"kubeward.io/enforce": "Critical", "kubeward.io/warn": "HIGH"},
        "lowwarn": {"kubeward.io/enforce": "critical", "kubeward.io/warn": "medium"},
    }
    sample = [o for i, o in enumerate(objs) if i % 3 == 0]
    for tag, labels in labelled.items():
        lns = f"vap-{tag}-{uuid.uuid4().hex[:4]}"
        namespace(admin, lns, labels)
        wait_default_sa(admin, [lns])
        d = Decider(AdmissionConfig(include=tuple(RULES)), namespaces=StaticNamespaces({lns: labels}))
        a, dn, w, sk, probs = _differential(admin, lns, d, sample)
        print(f"vap differential, namespace labels {labels}: {a} agree ({dn} denied, {w} allowed with warnings), "
              f"{len(probs)} disagree, {sk} rejected (422)")
        assert not probs, "\n".join(probs[:20])
        assert a > 50


def _differential(admin: Any, ns: str, decider: Decider, objs: list[dict[str, Any]], seen: set[str] | None = None,
                  invalid: set[str] | None = None) -> tuple[int, int, int, int, list[str]]:
    """Server-side dry-run create of each object in `ns` against the applied policies, and the webhook's decision
    for the same request: (agree, denied, allowed with warnings, rejected by validation, disagreements). `seen`
    collects the controls that denied or warned on an object both sides agree on, `invalid` those that would have
    on an object the apiserver rejects before admission (422)."""
    agree = skipped = denied = warned = 0
    problems: list[str] = []
    for i, obj in enumerate(objs):
        obj = copy.deepcopy(obj)
        meta = obj.get("metadata", {})
        obj["metadata"] = {"name": f"o{i}", "namespace": ns, "labels": meta.get("labels", {}),
                           "annotations": meta.get("annotations", {})}
        status, raw, hdrs = admin.call("POST", _path(obj["kind"], ns), body=obj, query={"dryRun": "All"})
        request = {"uid": "u", "operation": "CREATE", "namespace": ns, "object": obj,
                   "userInfo": {"username": "admin"}}
        d = decider.decide(request)
        if status == 422:
            skipped += 1
            if invalid is not None:
                invalid.update(f.control.id for f in (*d.denied, *d.warned))
            continue
        assert status in (201, 403), (status, raw[:500])
        server_warned = set(CONTROL.findall(" ".join(v for k, v in hdrs.items() if k.lower() == "warning")))
        ours_warned = {f.control.id for f in d.warned}
        if (status == 201) == d.allowed and (status != 201 or server_warned == ours_warned):
            agree += 1
            if seen is not None:
                seen.update(f.control.id for f in (*d.denied, *d.warned))
            denied += status == 403
            warned += bool(server_warned) and status == 201
        else:
            problems.append(f"{obj['kind']} {i}: server {status} warned {sorted(server_warned)}; kubeward "
                            f"{d.reason} {[f.control.id for f in d.denied]} warned {sorted(ours_warned)}: "
                            f"{orjson.loads(raw).get('message', '')[:300] if status != 201 else ''}")
    return agree, denied, warned, skipped, problems
