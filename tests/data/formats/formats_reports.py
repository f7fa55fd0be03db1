"""Reports for the format tests: one from the real pipeline, plus hand-built edge cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from kubeward.controls.registry import Selection, all_controls, run
from kubeward.exceptions import ExceptionRule, Exceptions
from kubeward.findings import (
    ControlMeta,
    ControlResult,
    Finding,
    InputError,
    Location,
    NotAssessed,
    ObjectRef,
    Report,
    Severity,
)
from kubeward.snapshot import Snapshot
from kubeward.sources.files import load_paths

MANIFESTS = Path(__file__).resolve().parent / "manifests"


def pipeline_report() -> Report:
    """Scan tests/data/formats/manifests with every registered control, an exceptions rule and an expired one."""
    loaded = load_paths([str(MANIFESTS)])
    snapshot = Snapshot(loaded.resources, errors=loaded.errors)
    exceptions = Exceptions(
        rules=[ExceptionRule(("*",), (), ("legacy",), (), "legacy namespace is being retired", dt.date(2099, 1, 1))],
        expired=["tests/.kubeward.yaml: exceptions[1] (controls=* names=web expired 2020-01-01): temporary"],
    )
    return run(snapshot, Selection().choose(all_controls()), exceptions)


def meta(cid: str, sev: str, title: str = "", frameworks: tuple[str, ...] = ("nsa", "cis-5.2.2")) -> ControlMeta:
    return ControlMeta(
        id=cid,
        title=title or f"Check {cid}",
        severity=Severity.parse(sev),
        category="workload",
        frameworks=frameworks,
        remediation=f"Fix {cid}.",
    )


CRIT = meta("T-CRIT", "critical", "Privileged container", ("nsa", "cis-5.2.2", "mitre-T1611"))
HIGH = meta("T-HIGH", "high", "Host network", ("nsa", "cis-5.2.5"))
MED = meta("T-MED", "medium", "No resource limits", ("nsa",))
LOW = meta("T-LOW", "low", "Image pull policy", ("cis-5.7.4",))
INFO = meta("T-INFO", "info", "Informational", ("mitre-T1610",))

HOSTILE_NAME = "<script>alert('x')</script>"


def ref(name: str, ns: str | None = "apps", kind: str = "Deployment") -> ObjectRef:
    return ObjectRef("apps/v1" if kind == "Deployment" else "v1", kind, ns, name)


def edge_report() -> Report:
    """Every severity, a hostile object name, both suppression kinds, a cluster object, errors and not-assessed."""
    web, api, evil = ref("web"), ref("api"), ref(HOSTILE_NAME)
    node = ObjectRef("v1", "Pod", "kube-system", "kube-proxy-x1")
    f_loc = Location("deploy/web.yaml", 12)
    findings = [
        Finding(CRIT, web, f_loc, "/spec/template/spec/containers/0/securityContext/privileged", 'container "a" runs privileged'),
        Finding(CRIT, evil, Location("deploy/evil.yaml", 3), "/spec/template/spec/containers/0", f"bad {HOSTILE_NAME}"),
        Finding(HIGH, web, Location("deploy/web.yaml", 20), "/spec/template/spec/hostNetwork", "uses the host network"),
        Finding(MED, api, Location("deploy/api.yaml", 7), "/spec/template/spec/containers/0/resources", "no limits"),
        Finding(LOW, node, Location(cluster="prod-eu"), "/spec/containers/0/imagePullPolicy", "pull policy IfNotPresent"),
        Finding(INFO, api, Location("deploy/api.yaml"), "", "informational note"),
    ]
    suppressed = [
        Finding(HIGH, api, Location("deploy/api.yaml", 9), "/spec/template/spec/hostNetwork", "uses the host network",
                suppressed_by="annotation: needs host network for metrics"),
        Finding(MED, web, Location("deploy/web.yaml", 22), "/spec/template/spec/containers/0/resources", "no limits",
                suppressed_by="capacity is managed by the team quota"),
    ]
    controls = {
        m.id: ControlResult(m, evaluated=3, failed=failed)
        for m, failed in ((CRIT, 2), (HIGH, 1), (MED, 1), (LOW, 1), (INFO, 1))
    }
    evaluated = {
        CRIT.id: [web, api, evil],
        HIGH.id: [web, api, evil],
        MED.id: [web, api, evil],
        LOW.id: [node, web, api],
        INFO.id: [web, api, evil],
    }
    return Report(
        objects=4,
        findings=findings,
        suppressed=suppressed,
        errors=[InputError("deploy/broken.yaml", "invalid YAML at line 3: mapping values are not allowed here")],
        not_assessed=[NotAssessed("rbac.authorization.k8s.io/ClusterRoleBinding", "403 Forbidden")],
        controls=controls,
        expired_exceptions=[".kubeward.yaml: exceptions[0] (controls=T-LOW expired 2024-01-01): old"],
        evaluated_objects=evaluated,
        coverage=(12, 14),
    )


def empty_report() -> Report:
    return Report(objects=0, findings=[])


def clean_report() -> Report:
    """Objects judged, nothing found: every testcase passes, every score is 100."""
    web = ref("web")
    return Report(
        objects=1,
        findings=[],
        controls={CRIT.id: ControlResult(CRIT, evaluated=1, failed=0)},
        evaluated_objects={CRIT.id: [web]},
    )


def errors_only_report() -> Report:
    return Report(
        objects=0,
        findings=[],
        errors=[
            InputError("bad/a.yaml", "not UTF-8"),
            InputError("bad/b.json", "JSON document is not an object"),
            InputError("-", "document 2: missing apiVersion"),
        ],
    )


def big_report(n: int) -> Report:
    """n findings spread over 5 controls, for speed and row-capping checks."""
    metas = [CRIT, HIGH, MED, LOW, INFO]
    findings = [
        Finding(metas[i % 5], ref(f"app-{i}", f"ns-{i % 7}"), Location(f"deploy/app-{i}.yaml", i % 300 + 1),
                "/spec/template/spec/containers/0", f"finding number {i}")
        for i in range(n)
    ]
    controls = {m.id: ControlResult(m, evaluated=n, failed=n // 5) for m in metas}
    return Report(objects=n, findings=findings, controls=controls)
