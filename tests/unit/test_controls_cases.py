"""Every control fails on at least one example and passes on at least one, through the real pipeline.

Each case starts from tests/data/controls/hardened.yaml (which passes every control), applies a few edits to
one object (or adds objects), writes the YAML, and runs load_paths -> Snapshot -> registry.run with that one
control. Edits are (kind, dotted path, value); numeric path parts index lists; DEL removes the key.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.controls.registry import all_controls, run
from kubeward.controls.settings import ScanSettings, using
from kubeward.findings import Finding
from kubeward.snapshot import Snapshot
from kubeward.sources.files import load_paths

HARDENED_FILE = Path("tests/data/controls/hardened.yaml")
HARDENED: list[dict[str, Any]] = list(yaml.safe_load_all(HARDENED_FILE.read_text()))
DEL = object()
DIGEST = "@sha256:" + "ab" * 32
ALIASES = {
    "P": "spec.template.spec",
    "M": "spec.template.metadata",
    "C": "spec.template.spec.containers.0",
    "I": "spec.template.spec.initContainers.0",
    "SC": "spec.template.spec.containers.0.securityContext",
    "ISC": "spec.template.spec.initContainers.0.securityContext",
    "PSC": "spec.template.spec.securityContext",
}
TPL = "/spec/template/spec"
C0 = f"{TPL}/containers/0"


def edit(doc: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    path = f"{ALIASES[head]}.{rest}" if head in ALIASES and rest else ALIASES.get(path, path)
    parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", path)]
    node: Any = doc
    for part in parts[:-1]:
        key: Any = int(part) if part.isdigit() else part
        node = node[key] if isinstance(node, list) else node.setdefault(key, {})
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is DEL:
        del node[last]
    elif isinstance(node, list) and last == len(node):
        node.append(value)
    else:
        node[last] = value


@dataclass
class Case:
    control: str
    edits: list[tuple[Any, ...]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    path: str | None = None  # expected path of the first finding (fail cases)
    drop: tuple[str, ...] = ()  # kinds removed from the baseline
    id: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # ScanSettings fields (target version, registries)


def build(case: Case) -> list[dict[str, Any]]:
    docs = [d for d in copy.deepcopy(HARDENED) if d["kind"] not in case.drop]
    for e in case.edits:
        kind, path, value = e if len(e) == 3 else ("Deployment", *e)
        kind, _, name = kind.partition("/")
        target = next(d for d in docs if d["kind"] == kind and (not name or d["metadata"]["name"] == name))
        edit(target, path, value)
    return docs + copy.deepcopy(case.extra)


def scan(docs: list[dict[str, Any]], control_id: str, tmp_path: Path) -> list[Finding]:
    f = tmp_path / "case.yaml"
    f.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    loaded = load_paths([str(f)])
    assert not loaded.errors, loaded.errors
    return run(Snapshot(loaded.resources), [all_controls()[control_id]]).findings


def obj(kind: str, name: str, ns: str | None = "app", api: str = "v1", **body: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta, **body}


def role(*rules: dict[str, Any], kind: str = "Role", name: str = "r") -> dict[str, Any]:
    return obj(kind, name, "app" if kind == "Role" else None, "rbac.authorization.k8s.io/v1", rules=list(rules))


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def binding(subjects: list[dict[str, Any]], ref: str = "cluster-admin", kind: str = "ClusterRoleBinding",
            ref_kind: str = "ClusterRole", labels: dict[str, str] | None = None) -> dict[str, Any]:
    b = obj(kind, "b", "app" if kind == "RoleBinding" else None, "rbac.authorization.k8s.io/v1",
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref}, subjects=subjects)
    if labels:
        b["metadata"]["labels"] = labels
    return b


def pod(name: str = "p", ns: str = "app", **spec: Any) -> dict[str, Any]:
    """A bare Pod with one container, for cross-object controls."""
    return obj("Pod", name, ns, spec={"containers": [{"name": "c", "image": "x" + DIGEST}], **spec})


SA_WEB = {"kind": "ServiceAccount", "name": "web", "namespace": "app"}

FAIL: list[Case] = [
    Case("KW-W001", [("SC.privileged", True)], path=f"{C0}/securityContext/privileged"),
    Case("KW-W001", [("ISC.privileged", True)], path=f"{TPL}/initContainers/0/securityContext/privileged", id="init"),
    Case("KW-W001", [("P.ephemeralContainers", [{"name": "dbg", "image": "busybox", "securityContext": {"privileged": True}}])],
         path=f"{TPL}/ephemeralContainers/0/securityContext/privileged", id="ephemeral"),
    Case("KW-W002", [("P.hostPID", True)], path=f"{TPL}/hostPID"),
    Case("KW-W003", [("P.hostIPC", True)], path=f"{TPL}/hostIPC"),
    Case("KW-W004", [("P.hostNetwork", True)], path=f"{TPL}/hostNetwork"),
    Case("KW-W005", [("C.ports.0.hostPort", 8080)], path=f"{C0}/ports/0/hostPort"),
    Case("KW-W006", [("P.volumes.0", {"name": "tmp", "hostPath": {"path": "/data/cache"}})], path=f"{TPL}/volumes/0/hostPath"),
    Case("KW-W007", [("P.volumes.2", {"name": "sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}})],
         path=f"{TPL}/volumes/2/hostPath/path"),
    Case("KW-W007", [("P.volumes.2", {"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock"}})], id="containerd"),
    Case("KW-W008", [("P.volumes.2", {"name": "etc", "hostPath": {"path": "/etc/kubernetes/"}})], path=f"{TPL}/volumes/2/hostPath/path"),
    Case("KW-W008", [("P.volumes.2", {"name": "root", "hostPath": {"path": "/"}})], id="root"),
    Case("KW-W008", [("P.volumes.2", {"name": "kubelet", "hostPath": {"path": "/var/lib/kubelet/pods"}})], id="kubelet"),
    Case("KW-W009", [("P.volumes.0", {"name": "tmp", "hostPath": {"path": "/data"}})], path=f"{C0}/volumeMounts/0"),
    Case("KW-W010", [("SC.capabilities.add.1", "SYS_NICE")], path=f"{C0}/securityContext/capabilities/add/1"),
    Case("KW-W010", [("SC.capabilities.add.1", "CAP_CHOWN")], id="literal"),
    Case("KW-W011", [("SC.capabilities.add.1", "SYS_ADMIN")], path=f"{C0}/securityContext/capabilities/add/1"),
    Case("KW-W011", [("ISC.capabilities.add", ["cap_sys_admin"])], id="normalized"),
    Case("KW-W012", [("SC.capabilities.add.1", "NET_ADMIN")], path=f"{C0}/securityContext/capabilities/add/1"),
    Case("KW-W013", [("SC.capabilities.add.0", "NET_RAW")], path=f"{C0}/securityContext/capabilities/add/0"),
    Case("KW-W014", [("SC.capabilities.add.0", "SYS_PTRACE")], path=f"{C0}/securityContext/capabilities/add/0"),
    Case("KW-W015", [("SC.capabilities.add.0", "SYS_MODULE")], path=f"{C0}/securityContext/capabilities/add/0"),
    Case("KW-W016", [("SC.capabilities.add.0", "ALL")], path=f"{C0}/securityContext/capabilities/add/0"),
    Case("KW-W017", [("SC.capabilities.add.0", "DAC_READ_SEARCH")], path=f"{C0}/securityContext/capabilities/add/0"),
    Case("KW-W018", [("SC.capabilities.drop", ["NET_RAW"])], path=f"{C0}/securityContext/capabilities/drop"),
    Case("KW-W018", [("ISC.capabilities", DEL)], path=f"{TPL}/initContainers/0/securityContext", id="missing"),
    Case("KW-W019", [("SC.capabilities.drop", ["SYS_ADMIN"])], path=f"{C0}/securityContext/capabilities/drop"),
    Case("KW-W020", [("PSC.runAsNonRoot", DEL), ("PSC.runAsUser", DEL)], path=f"{C0}/securityContext/runAsNonRoot"),
    Case("KW-W020", [("SC.runAsNonRoot", False), ("PSC.runAsUser", DEL)], path=f"{C0}/securityContext/runAsNonRoot", id="container-overrides"),
    Case("KW-W021", [("PSC.runAsNonRoot", DEL), ("PSC.runAsUser", 0)], path=f"{TPL}/securityContext/runAsUser"),
    Case("KW-W021", [("ISC.runAsUser", 0)], path=f"{TPL}/initContainers/0/securityContext/runAsUser", id="container"),
    Case("KW-W022", [("SC.runAsGroup", 0)], path=f"{C0}/securityContext/runAsGroup"),
    Case("KW-W023", [("PSC.supplementalGroups", [5, 0])], path=f"{TPL}/securityContext/supplementalGroups/1"),
    Case("KW-W024", [("SC.allowPrivilegeEscalation", True)], path=f"{C0}/securityContext/allowPrivilegeEscalation"),
    Case("KW-W024", [("ISC.allowPrivilegeEscalation", DEL)], path=f"{TPL}/initContainers/0/securityContext/allowPrivilegeEscalation",
         id="unset"),
    Case("KW-W025", [("SC.readOnlyRootFilesystem", False)], path=f"{C0}/securityContext/readOnlyRootFilesystem"),
    Case("KW-W026", [("PSC.seccompProfile", DEL)], path=f"{C0}/securityContext/seccompProfile"),
    Case("KW-W027", [("SC.seccompProfile", {"type": "Unconfined"})], path=f"{C0}/securityContext/seccompProfile/type"),
    Case("KW-W027", [("PSC.seccompProfile.type", "Unconfined")], path=f"{TPL}/securityContext/seccompProfile/type", id="pod"),
    # The KW-W controls of a PSS check read the engine's fact (engines/pss/facts.py), upstream-exact: these
    # cases changed with that (were passes) — literal "ALL", an explicit runAsNonRoot, pod-level settings judged
    # even where every container overrides them, the literal sysctl name.
    Case("KW-W018", [("SC.capabilities.drop", ["all"])], path=f"{C0}/securityContext/capabilities/drop", id="literal-ALL"),
    Case("KW-W020", [("PSC.runAsNonRoot", DEL)], path=f"{C0}/securityContext/runAsNonRoot", id="non-zero-uid-not-enough"),
    Case("KW-W020", [("PSC.runAsNonRoot", False), ("SC.runAsNonRoot", True), ("ISC.runAsNonRoot", True)],
         path=f"{TPL}/securityContext/runAsNonRoot", id="pod-false"),
    Case("KW-W021", [("PSC.runAsUser", 0), ("SC.runAsUser", 1000), ("ISC.runAsUser", 1000)],
         path=f"{TPL}/securityContext/runAsUser", id="pod-zero"),
    Case("KW-W027", [("PSC.seccompProfile.type", "Unconfined"), ("SC.seccompProfile", {"type": "RuntimeDefault"}),
                     ("ISC.seccompProfile", {"type": "RuntimeDefault"})], path=f"{TPL}/securityContext/seccompProfile/type",
         id="pod-unconfined"),
    Case("KW-W028", [("PSC.appArmorProfile", {"type": "Unconfined"}), ("SC.appArmorProfile", {"type": "RuntimeDefault"}),
                     ("M.annotations", {"container.apparmor.security.beta.kubernetes.io/migrate": "localhost/p"})],
         path=f"{TPL}/securityContext/appArmorProfile/type", id="pod-unconfined"),
    Case("KW-W031", [("PSC.sysctls", [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
                                      {"name": "net/ipv4/tcp_keepalive_time", "value": "60"}])],
         path=f"{TPL}/securityContext/sysctls/1/name", id="slash-form"),
    Case("KW-W028", [("SC.appArmorProfile", {"type": "Unconfined"})], path=f"{C0}/securityContext/appArmorProfile/type"),
    Case("KW-W028", [("M.annotations", {"container.apparmor.security.beta.kubernetes.io/web": "unconfined"})], id="annotation"),
    Case("KW-W028", [("PSC.appArmorProfile", {"type": "Unconfined"})], id="pod"),
    Case("KW-W029", [("SC.seLinuxOptions", {"type": "spc_t"})], path=f"{C0}/securityContext/seLinuxOptions/type"),
    Case("KW-W029", [("PSC.seLinuxOptions", {"user": "system_u"})], path=f"{TPL}/securityContext/seLinuxOptions/user", id="user"),
    Case("KW-W030", [("SC.procMount", "Unmasked")], path=f"{C0}/securityContext/procMount"),
    Case("KW-W031", [("PSC.sysctls", [{"name": "kernel.shm_rmid_forced", "value": "0"}, {"name": "kernel.msgmax", "value": "1"}])],
         path=f"{TPL}/securityContext/sysctls/1/name"),
    Case("KW-W032", [("SC.windowsOptions", {"hostProcess": True})], path=f"{C0}/securityContext/windowsOptions/hostProcess"),
    Case("KW-W033", [("C.livenessProbe.httpGet.host", "169.254.169.254")], path=f"{C0}/livenessProbe/httpGet/host"),
    Case("KW-W034", [("P.shareProcessNamespace", True)], path=f"{TPL}/shareProcessNamespace"),
    Case("KW-W035", [("P.volumes.2", {"name": "src", "gitRepo": {"repository": "https://git.example.com/x.git"}})],
         path=f"{TPL}/volumes/2/gitRepo"),
    Case("KW-W036", [("C.resources.limits.memory", DEL)], path=f"{C0}/resources/limits"),
    Case("KW-W037", [("I.resources.limits", DEL)], path=f"{TPL}/initContainers/0/resources"),
    Case("KW-W038", [("C.resources.requests.memory", DEL), ("C.resources.limits.memory", DEL)], path=f"{C0}/resources/requests"),
    Case("KW-W039", [("C.resources", DEL)], path=C0),
    Case("KW-W040", [("C.image", "nginx:latest")], path=f"{C0}/image"),
    Case("KW-W041", [("C.image", "registry.example.com:5000/team/web")], path=f"{C0}/image"),
    Case("KW-W042", [("C.image", "nginx:1.25.3")], path=f"{C0}/image"),
    Case("KW-W043", [("C.image", "nginx:1.25.3")], path=C0),
    Case("KW-W043", [("C.image", "nginx:latest"), ("C.imagePullPolicy", "IfNotPresent")], path=f"{C0}/imagePullPolicy", id="explicit"),
    Case("KW-W044", [("P.automountServiceAccountToken", DEL), ("ServiceAccount/web", "automountServiceAccountToken", DEL)],
         path=TPL, id="service-account-default"),
    Case("KW-W044", [("P.automountServiceAccountToken", True)], path=f"{TPL}/automountServiceAccountToken", id="explicit"),
    Case("KW-W045", [("P.serviceAccountName", "default")], path=f"{TPL}/serviceAccountName"),
    Case("KW-W045", [("P.serviceAccountName", DEL)], path=TPL, id="unset"),
    Case("KW-W046", [("C.env.2", {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}})],
         path=f"{C0}/env/2/valueFrom/secretKeyRef"),
    Case("KW-W046", [("C.envFrom", [{"secretRef": {"name": "db"}}])], path=f"{C0}/envFrom/0/secretRef", id="envFrom"),
    Case("KW-W047", [("C.env.2", {"name": "STRIPE_API_KEY", "value": "sk_test_FAKE0000000000"})], path=f"{C0}/env/2/value"),
    Case("KW-W048", [("C.livenessProbe", DEL)], path=C0),
    Case("KW-W049", [("C.readinessProbe", DEL)], path=C0),
    Case("KW-W050", [("P.ephemeralContainers", [{"name": "debugger", "image": "busybox" + DIGEST}])],
         path=f"{TPL}/ephemeralContainers/0"),
    Case("KW-W051", [("metadata.namespace", "default")], path="/metadata/namespace"),
    Case("KW-W051", [("metadata.namespace", DEL)], path="/metadata", id="unset"),
    Case("KW-W052", [("Namespace", "metadata.labels", {})], path="/metadata"),
    Case("KW-W052", [("Namespace", "metadata.labels.pod-security\\.kubernetes\\.io/enforce", "privileged")], id="privileged"),
    Case("KW-W053", drop=("ResourceQuota",), path="/metadata"),
    Case("KW-W054", drop=("LimitRange",), path="/metadata"),
    Case("KW-W055", [("P.volumes.2", {"name": "share", "nfs": {"server": "nfs.example.com", "path": "/exports"}})],
         path=f"{TPL}/volumes/2/nfs"),
    Case("KW-W056", [("ISC.capabilities.add", ["CHOWN"])], path=f"{TPL}/initContainers/0/securityContext/capabilities/add/0"),
    # network
    Case("KW-N001", [("Service", "spec.type", "NodePort")], path="/spec/type"),
    Case("KW-N002", [("Service", "spec.type", "LoadBalancer")], path="/spec/type"),
    Case("KW-N002", [("Service", "spec.type", "LoadBalancer"), ("Service", "spec.loadBalancerSourceRanges", ["10.0.0.0/8", "0.0.0.0/0"])],
         path="/spec/loadBalancerSourceRanges", id="open-range"),
    Case("KW-N003", [("Service", "spec.externalIPs", ["203.0.113.10"])], path="/spec/externalIPs"),
    Case("KW-N004", [("Service", "spec.type", "NodePort"), ("Service", "spec.ports.0", {"port": 6379})], path="/spec/ports/0"),
    Case("KW-N005", [("Ingress", "spec.tls", DEL)], path="/spec"),
    Case("KW-N006", [("Ingress", "spec.rules.0.host", "shop.example.org")], path="/spec/rules/0/host"),
    Case("KW-N006", [("Ingress", "spec.rules.0.host", "a.shop.example.com")], id="wildcard-one-label"),
    Case("KW-N007", drop=("NetworkPolicy",), path="/metadata"),
    Case("KW-N007", extra=[pod(ns="other")], id="namespace-without-object"),
    Case("KW-N008", [("NetworkPolicy/default-deny", "spec.policyTypes", ["Egress"]),
                     ("NetworkPolicy/web-ingress", "spec.policyTypes", ["Egress"])], path="/spec/template/metadata/labels"),
    Case("KW-N008", [("NetworkPolicy/default-deny", "spec.podSelector", {"matchLabels": {"app": "db"}}),
                     ("NetworkPolicy/web-ingress", "spec.podSelector", {"matchExpressions": [
                         {"key": "app", "operator": "NotIn", "values": ["web"]}]})], id="selector-miss"),
    Case("KW-N009", [("NetworkPolicy", "spec.policyTypes", DEL)], path="/spec/template/metadata/labels"),
    Case("KW-N010", [("NetworkPolicy", "spec.ingress", [{}])], path="/spec/ingress/0"),
    # rbac
    Case("KW-R001", extra=[role(rule([""], ["pods"], ["*"]))], path="/rules/0/verbs/0"),
    Case("KW-R002", extra=[role(rule(["apps"], ["*"], ["get"]))], path="/rules/0/resources/0"),
    Case("KW-R003", extra=[role(rule(["*"], ["deployments"], ["get"]))], path="/rules/0/apiGroups/0"),
    Case("KW-R004", extra=[role({"nonResourceURLs": ["*"], "verbs": ["get"]}, kind="ClusterRole")], path="/rules/0/nonResourceURLs/0"),
    Case("KW-R005", extra=[role(rule([""], ["configmaps", "secrets"], ["list"]))], path="/rules/0"),
    Case("KW-R005", extra=[role(rule(["*"], ["*"], ["*"]), kind="ClusterRole")], id="wildcard"),
    Case("KW-R006", extra=[role(rule([""], ["pods/exec"], ["create"]))], path="/rules/0"),
    Case("KW-R007", extra=[role(rule([""], ["pods"], ["create", "get"]))], path="/rules/0"),
    Case("KW-R008", extra=[role(rule(["apps"], ["deployments"], ["patch"]))], path="/rules/0"),
    Case("KW-R009", extra=[role(rule([""], ["users", "groups"], ["impersonate"]), kind="ClusterRole")], path="/rules/0"),
    Case("KW-R010", extra=[role(rule(["rbac.authorization.k8s.io"], ["clusterroles"], ["bind"]), kind="ClusterRole")], path="/rules/0"),
    Case("KW-R011", extra=[role(rule(["rbac.authorization.k8s.io"], ["rolebindings"], ["create"]))], path="/rules/0"),
    Case("KW-R012", extra=[role(rule([""], ["nodes/proxy"], ["get"]), kind="ClusterRole")], path="/rules/0"),
    Case("KW-R013", extra=[role(rule([""], ["serviceaccounts/token"], ["create"]))], path="/rules/0"),
    Case("KW-R014", extra=[role(rule(["certificates.k8s.io"], ["certificatesigningrequests/approval"], ["update"]),
                                rule(["certificates.k8s.io"], ["signers"], ["approve"]), kind="ClusterRole")],
         path="/rules/0"),
    Case("KW-R015", extra=[role(rule(["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"], ["delete"]),
                                kind="ClusterRole")], path="/rules/0"),
    Case("KW-R016", extra=[role(rule([""], ["persistentvolumes"], ["create"]), kind="ClusterRole")], path="/rules/0"),
    Case("KW-R017", extra=[binding([SA_WEB])], path="/subjects/0"),
    Case("KW-R017", extra=[binding([SA_WEB], kind="RoleBinding")], id="rolebinding"),
    Case("KW-R018", extra=[binding([{"kind": "Group", "name": "system:unauthenticated"}], ref="view")], path="/subjects/0"),
    Case("KW-R018", extra=[binding([{"kind": "User", "name": "system:anonymous"}], ref="edit")], id="anonymous-user"),
    Case("KW-R019", extra=[binding([{"kind": "Group", "name": "system:authenticated"}], ref="view")], path="/subjects/0"),
    Case("KW-R020", extra=[binding([{"kind": "ServiceAccount", "name": "default"}], ref="view", kind="RoleBinding")],
         path="/subjects/0"),
    Case("KW-R021", [("ServiceAccount/default", "automountServiceAccountToken", DEL)], path="/metadata"),
    Case("KW-R021", [("ServiceAccount/default", "automountServiceAccountToken", True)], path="/automountServiceAccountToken",
         id="explicit"),
    # secrets
    Case("KW-S001", [("ConfigMap", "data.DB_PASSWORD", "fake-not-a-real-password")], path="/data/DB_PASSWORD"),
    Case("KW-S002", [("ConfigMap", "data.app\\.properties", "db.password=fake-pass\n")], path="/data/app.properties"),
    Case("KW-S002", [("ConfigMap", "data.DSN", "postgres://web:fakepw@db:5432/shop")], id="url"),
    Case("KW-S002", [("ConfigMap", "data.tls", "-----BEGIN PRIVATE KEY-----\nFAKE\n-----END PRIVATE KEY-----\n")], id="pem"),
    Case("KW-S003", extra=[obj("Secret", "web-token", type="kubernetes.io/service-account-token")], path="/type"),
    Case("KW-S004", extra=[obj("Secret", "db", type="Opaque", stringData={"password": "fake"})], path="/stringData"),
    Case("KW-S005", extra=[{**obj("Secret", "db", type="Opaque"), "metadata": {
        "name": "db", "namespace": "app", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1","data":{"password":"ZmFrZQ=="},"kind":"Secret"}'}}}],
        path="/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"),
    Case("KW-S006", extra=[obj("Secret", "ssh", type="Opaque", data={"id_rsa": "RkFLRQ=="})], path="/data/id_rsa"),
]

PASS: list[Case] = [
    Case("KW-W001", [("SC.privileged", False)]),
    Case("KW-W005", [("C.ports.0.hostPort", 0)]),
    Case("KW-W007", [("P.volumes.2", {"name": "data", "hostPath": {"path": "/srv/data"}})]),
    Case("KW-W008", [("P.volumes.2", {"name": "data", "hostPath": {"path": "/srv/etc"}})], id="prefix-is-by-component"),
    Case("KW-W008", [("P.volumes.2", {"name": "data", "hostPath": {"path": "/etcd-backup"}})], id="etcd-backup"),
    Case("KW-W009", [("P.volumes.2", {"name": "h", "hostPath": {"path": "/srv"}}),
                     ("C.volumeMounts.2", {"name": "h", "mountPath": "/h", "readOnly": True})]),
    Case("KW-W010", [("SC.capabilities.add", ["CHOWN", "NET_BIND_SERVICE"])]),
    # one finding per added capability: a dangerous one is its own control's, not also W010's or W056's
    Case("KW-W010", [("SC.capabilities.add", ["SYS_ADMIN", "cap_sys_time"])], id="dangerous-is-its-own"),
    Case("KW-W056", [("SC.capabilities.add", ["SYS_ADMIN", "NET_BIND_SERVICE"])], id="dangerous-is-its-own"),
    Case("KW-W026", [("SC.seccompProfile", {"type": "Unconfined"})], id="unconfined-is-W027s"),
    Case("KW-W011", [("SC.capabilities.drop", ["ALL", "SYS_ADMIN"])], id="drop-is-fine"),
    Case("KW-W019", [("SC.capabilities.drop", ["NET_RAW"])]),
    Case("KW-W020", [("PSC.runAsNonRoot", True), ("SC.runAsNonRoot", True), ("ISC.runAsNonRoot", True)], id="all-true"),
    Case("KW-W020", [("PSC.runAsNonRoot", DEL), ("PSC.runAsUser", 0), ("P.hostUsers", False)], id="user-namespace"),
    Case("KW-W021", [("PSC.runAsUser", 0), ("P.hostUsers", False)], id="user-namespace"),
    Case("KW-W022", [("PSC.runAsGroup", 0), ("SC.runAsGroup", 5), ("ISC.runAsGroup", 5)], id="container-overrides-pod"),
    Case("KW-W024", [("P.os", {"name": "windows"}), ("SC.allowPrivilegeEscalation", DEL)], id="windows"),
    Case("KW-W026", [("PSC.seccompProfile", DEL), ("SC.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"}),
                     ("ISC.seccompProfile", {"type": "RuntimeDefault"})], id="container-level"),
    # check_seccompProfile_baseline.go from v1.19 reads the fields only (the kubelet ignores the annotations)
    Case("KW-W027", [("M.annotations", {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})], id="annotation"),
    Case("KW-W028", [("M.annotations", {"container.apparmor.security.beta.kubernetes.io/web": "runtime/default"})]),
    Case("KW-W028", [("SC.appArmorProfile", {"type": "RuntimeDefault"}),
                     ("M.annotations", {"container.apparmor.security.beta.kubernetes.io/migrate": "localhost/p"})],
         id="runtime-default-and-localhost"),
    Case("KW-W029", [("SC.seLinuxOptions", {"type": "container_init_t", "level": "s0:c1,c2"})]),
    Case("KW-W030", [("SC.procMount", "Default")]),
    Case("KW-W031", [("PSC.sysctls", [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
                                      {"name": "net.ipv4.tcp_keepalive_time", "value": "60"}])]),
    Case("KW-W032", [("SC.windowsOptions", {"hostProcess": False})]),
    Case("KW-W033", [("C.livenessProbe.httpGet.host", "")]),
    Case("KW-W038", [("C.resources.requests.memory", DEL)], id="limit-defaults-request"),
    Case("KW-W055", [("P.volumes.2", {"name": "only-a-name"}),
                     ("P.volumes.3", {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}})]),
    Case("KW-W056", [("P.os", {"name": "windows"}), ("SC.capabilities.add", ["CHOWN"])], id="windows"),
    Case("KW-W040", [("C.image", "nginx:latest" + DIGEST)], id="digest-pins-latest"),
    Case("KW-W041", [("C.image", "registry.example.com:5000/team/web:2.0")], id="registry-port-is-not-a-tag"),
    Case("KW-W043", [("C.image", "nginx:1.25"), ("C.imagePullPolicy", "Always")]),
    Case("KW-W044", [("P.automountServiceAccountToken", DEL)], id="service-account-disables"),
    Case("KW-W046", [("C.env.2", {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})]),
    Case("KW-W047", [("C.env.2", {"name": "DB_PASSWORD", "value": "$(FROM_FILE)"}),
                     ("C.env.3", {"name": "TOKEN_TTL", "value": "3600"})]),
    # the mysql image's flags and Google's key-file path (kubernetes' own e2e manifests set both)
    Case("KW-W047", [("C.env.2", {"name": "MYSQL_ALLOW_EMPTY_PASSWORD", "value": "1"}),
                     ("C.env.3", {"name": "MYSQL_RANDOM_ROOT_PASSWORD", "value": "yes"}),
                     ("C.env.4", {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/etc/cloud-sa/cloud-sa.json"})],
         id="flags-and-key-file-paths"),
    Case("KW-W048", extra=[{**obj("Job", "once", api="batch/v1"), "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "x" + DIGEST}]}}}}], id="jobs-exempt"),
    Case("KW-W051", extra=[obj("Service", "kubernetes", "default", spec={"ports": [{"port": 443}]})], id="apiserver-service"),
    Case("KW-W052", [("Namespace", "metadata.labels.pod-security\\.kubernetes\\.io/enforce", "baseline")]),
    Case("KW-N002", [("Service", "spec.type", "LoadBalancer"), ("Service", "spec.loadBalancerSourceRanges", ["198.51.100.0/24"])]),
    Case("KW-N004", [("Service", "spec.type", "NodePort")], id="http-port"),
    Case("KW-N006", [("Ingress", "spec.rules.0.host", "example.com"), ("Ingress", "spec.tls.0.hosts", ["example.com"])]),
    Case("KW-N008", [("NetworkPolicy", "spec.podSelector", DEL)], id="omitted-selector-selects-all"),
    Case("KW-N008", extra=[pod(ns="other", hostNetwork=True)], id="host-network-exempt"),
    Case("KW-N009", [("NetworkPolicy", "spec.policyTypes", DEL), ("NetworkPolicy", "spec.egress", [{"to": [{"podSelector": {}}]}])],
         id="egress-rules-imply-egress"),
    Case("KW-N010", [("NetworkPolicy", "spec.ingress", [{}]), ("NetworkPolicy", "spec.policyTypes", ["Egress"])],
         id="egress-only-ignores-ingress"),
    Case("KW-R001", extra=[{**role(rule(["*"], ["*"], ["*"]), kind="ClusterRole", name="cluster-admin"),
                            "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}}],
         id="bootstrap-role"),
    Case("KW-R005", extra=[role(rule(["apps"], ["secrets"], ["get"]))], id="other-group"),
    Case("KW-R006", extra=[role(rule([""], ["pods"], ["*"]))], id="pods-not-subresource"),
    Case("KW-R007", extra=[role(rule([""], ["pods"], ["get", "list"]))]),
    Case("KW-R017", extra=[binding([{"kind": "Group", "name": "system:masters"}])], id="masters"),
    Case("KW-R018", extra=[binding([{"kind": "Group", "name": "system:unauthenticated"}], ref="system:public-info-viewer")],
         id="public-info"),
    Case("KW-R019", extra=[binding([{"kind": "Group", "name": "system:authenticated"}], ref="system:basic-user")]),
    Case("KW-R020", extra=[binding([SA_WEB], ref="view", kind="RoleBinding")]),
    Case("KW-S001", [("ConfigMap", "data.PASSWORD_FILE", "/run/secrets/pw")]),
    Case("KW-S002", [("ConfigMap", "data.conf", "password=${DB_PASSWORD}\ntoken: {{ .Values.token }}\n")]),
    Case("KW-S004", extra=[obj("Secret", "tok", type="kubernetes.io/service-account-token", data={"token": "RkFLRQ=="})]),
    Case("KW-S005", extra=[{**obj("Secret", "db", type="Opaque"), "metadata": {"name": "db", "namespace": "app", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"}}'}}}]),
    Case("KW-S006", extra=[obj("Secret", "tls", type="kubernetes.io/tls", data={"tls.key": "RkFLRQ==", "tls.crt": "RkFLRQ=="})]),
]


NGINX = "nginx.ingress.kubernetes.io/"


def ing_ann(**annotations: str) -> tuple[str, str, dict[str, str]]:
    """An edit that sets the Ingress's ingress-nginx annotations (keys without the prefix, '_' for '-')."""
    return ("Ingress", "metadata.annotations", {NGINX + k.replace("_", "-"): v for k, v in annotations.items()})


def ann_path(name: str) -> str:
    return "/metadata/annotations/" + (NGINX + name).replace("/", "~1")


FAIL += [
    # ingress-nginx
    Case("KW-N011", [ing_ann(configuration_snippet="more_set_headers 'X: y';")], path=ann_path("configuration-snippet")),
    Case("KW-N011", [ing_ann(server_snippet="location /x { return 403; }")], id="server"),
    Case("KW-N011", [ing_ann(auth_snippet="proxy_set_header X 1;")], id="auth"),
    Case("KW-N011", [ing_ann(stream_snippet="server { listen 9000; }")], id="stream"),
    Case("KW-N012", [ing_ann(auth_url="http://auth.example.com/#;}}}\nload_module /tmp/x.so;")], path=ann_path("auth-url")),
    Case("KW-N012", [ing_ann(auth_tls_match_cn="CN=abc #(\n){}\n }}\nssl_engine x;#")], id="match-cn"),
    Case("KW-N012", [ing_ann(mirror_target="https://example.com/$request_uri;\n}\nx")], id="mirror-target"),
    Case("KW-N012", [ing_ann(mirror_host='"; include /etc/passwd; "')], id="mirror-host"),
    Case("KW-N013", [ing_ann(ssl_redirect="false")], path=ann_path("ssl-redirect")),
    Case("KW-N013", [ing_ann(ssl_redirect="0")], id="parse-bool"),
    Case("KW-N013", [ing_ann(enable_global_auth="False")], path=ann_path("enable-global-auth"), id="global-auth"),
    Case("KW-N013", [ing_ann(auth_secret="basic-auth", auth_realm="x")], path=ann_path("auth-secret"), id="no-auth-type"),
    Case("KW-N013", [ing_ann(auth_tls_secret="app/ca", auth_tls_verify_client="optional_no_ca")],
         path=ann_path("auth-tls-verify-client"), id="tls-client-optional"),
]

PASS += [
    Case("KW-N011", [ing_ann(ssl_redirect="true", proxy_body_size="8m")]),
    Case("KW-N011", [("Ingress", "metadata.annotations", {"example.com/server-snippet": "x"})], id="other-prefix"),
    Case("KW-N012", [ing_ann(auth_url="https://auth.example.com/oauth2/auth?rd=$scheme://$host$request_uri",
                             auth_tls_match_cn="CN=(client-a|client-b)", mirror_target="https://mirror.example.com$request_uri")]),
    Case("KW-N012", [ing_ann(rewrite_target="/$2;")], id="not-listed"),
    Case("KW-N013", [ing_ann(ssl_redirect="true", force_ssl_redirect="false", enable_global_auth="true")]),
    Case("KW-N013", [ing_ann(ssl_redirect="false"), ("Ingress", "spec.tls", DEL)], id="no-tls-is-KW-N005"),
    Case("KW-N013", [ing_ann(auth_type="basic", auth_secret="basic-auth")], id="auth-type-set"),
    Case("KW-N013", [ing_ann(auth_type="basic")], id="auth-type-without-secret-fails-closed"),
    Case("KW-N013", [ing_ann(auth_tls_secret="app/ca", auth_tls_verify_client="on")], id="tls-client-on"),
]


KS = "kube-system"


def ks_pod(name: str = "tool", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    p = pod(name, KS, **spec)
    if labels:
        p["metadata"]["labels"] = labels
    return p


def in_ns(doc: dict[str, Any], ns: str) -> dict[str, Any]:
    doc["metadata"]["namespace"] = ns
    return doc


FAIL += [
    # UID / GID below 10000, container over pod
    Case("KW-W057", [("PSC.runAsUser", 1000)], path=f"{TPL}/securityContext/runAsUser"),
    Case("KW-W057", [("ISC.runAsUser", 9999)], path=f"{TPL}/initContainers/0/securityContext/runAsUser", id="container"),
    Case("KW-W057", [("PSC.runAsUser", 20000), ("SC.runAsUser", 33)], path=f"{C0}/securityContext/runAsUser",
         id="container-overrides-pod"),
    Case("KW-W058", [("PSC.runAsGroup", 1000)], path=f"{TPL}/securityContext/runAsGroup"),
    Case("KW-W058", [("SC.runAsGroup", 100)], path=f"{C0}/securityContext/runAsGroup", id="container"),
    # ephemeral-storage
    Case("KW-W059", [("C.resources.requests.ephemeral-storage", DEL), ("C.resources.limits.ephemeral-storage", DEL)],
         path=f"{C0}/resources/requests"),
    Case("KW-W060", [("I.resources.limits.ephemeral-storage", DEL)], path=f"{TPL}/initContainers/0/resources/limits"),
    # bare Pods get the probe checks
    Case("KW-W048", extra=[pod("svc")], path="/spec/containers/0", id="bare-pod"),
    Case("KW-W049", extra=[pod("svc", restartPolicy="Always")], path="/spec/containers/0", id="bare-pod"),
    # credentials that are not placeholders
    Case("KW-W047", [("C.env.2", {"name": "DB_PASSWORD", "value": "changeme"})], path=f"{C0}/env/2/value", id="weak-value"),
    Case("KW-W047", [("C.env.2", {"name": "DB_PASSWORD", "value": "/etc/pass word"})], path=f"{C0}/env/2/value",
         id="path-like-with-space"),
    Case("KW-W047", [("C.env.2", {"name": "API_TOKEN", "value": "yes-really-123"})], path=f"{C0}/env/2/value",
         id="flag-prefix-is-a-value"),
    Case("KW-W047", [("C.env.2", {"name": "API_TOKEN", "value": "<ADD YOUR TOKEN> abc123"})], id="not-whole-marker"),
    # kube-system user workloads
    Case("KW-W062", extra=[ks_pod()], path="/metadata/namespace"),
    Case("KW-W062", extra=[ks_pod("debug", labels={"app": "debug"})], id="ordinary-labels"),
    # RBAC
    Case("KW-R022", extra=[role(rule([""], ["services/status"], ["patch"]))], path="/rules/0"),
    Case("KW-R022", extra=[role(rule([""], ["nodes/status"], ["update"]), kind="ClusterRole")], id="nodes"),
    Case("KW-R022", extra=[role(rule([""], ["*/status"], ["update"]), kind="ClusterRole")], id="star-subresource"),
    Case("KW-R023", extra=[role(rule([""], ["services"], ["create"]))], path="/rules/0"),
    Case("KW-R023", extra=[role(rule(["discovery.k8s.io"], ["endpointslices"], ["patch"]))], id="endpointslices"),
    Case("KW-R023", extra=[role({**rule([""], ["endpoints"], ["update"]), "resourceNames": ["web"]})], id="named"),
    Case("KW-R024", extra=[role(rule(["networking.k8s.io"], ["networkpolicies"], ["delete"]))], path="/rules/0"),
    Case("KW-R025", extra=[in_ns(role(rule([""], ["configmaps"], ["update"])), KS),
                           in_ns(binding([SA_WEB], ref="r", kind="RoleBinding", ref_kind="Role"), KS)],
         path="/rules/0"),
    Case("KW-R025", extra=[role({**rule([""], ["configmaps"], ["patch"]), "resourceNames": ["aws-auth"]},
                                kind="ClusterRole"),
                           binding([SA_WEB], ref="r")], id="aws-auth-by-name"),
    Case("KW-R025", extra=[role(rule(["*"], ["*"], ["*"]), kind="ClusterRole"),
                           in_ns(binding([SA_WEB], ref="r", kind="RoleBinding"), KS)], id="clusterrole-via-rolebinding"),
    Case("KW-R026", extra=[binding([SA_WEB], ref="edit")], path="/subjects/0"),
    Case("KW-R026", extra=[binding([{"kind": "Group", "name": "system:serviceaccounts:app"}], ref="admin",
                                   kind="RoleBinding")], id="broad-group"),
]

PASS += [
    Case("KW-W057", [("PSC.runAsUser", 10000)], id="bound-is-inclusive"),
    Case("KW-W057", [("PSC.runAsUser", 1000), ("SC.runAsUser", 10001), ("ISC.runAsUser", 10001)],
         id="container-overrides-pod"),
    Case("KW-W057", [("PSC.runAsUser", 1000), ("P.hostUsers", False)], id="user-namespace"),
    Case("KW-W057", [("PSC.runAsUser", 0), ("PSC.runAsNonRoot", DEL)], id="uid0-is-KW-W021"),
    Case("KW-W058", [("PSC.runAsGroup", DEL)], id="unset"),
    Case("KW-W059", [("C.resources.requests.ephemeral-storage", DEL)], id="limit-defaults-request"),
    Case("KW-W048", extra=[pod("once", restartPolicy="Never")], id="run-to-completion-pod"),
    Case("KW-W048", extra=[{**pod("rs-x"), "metadata": {"name": "rs-x", "namespace": "app", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": True}]}}],
         id="owned-pod"),
    Case("KW-W047", [("C.env.2", {"name": "API_KEY", "value": "<ADD YOUR API KEY>"}),
                     ("C.env.3", {"name": "DB_PASSWORD", "value": "${DB_PASSWORD}"}),
                     ("C.env.4", {"name": "AUTH_TOKEN", "value": "{{ .Values.auth.token }}"}),
                     ("C.env.5", {"name": "CLIENT_SECRET", "value": "INSERT_CLIENT_SECRET_HERE"})], id="placeholders"),
    Case("KW-W062", extra=[ks_pod("coredns", labels={"k8s-app": "kube-dns"}),
                           ks_pod("etcd-node1", labels={"tier": "control-plane", "component": "etcd"}),
                           ks_pod("csi", priorityClassName="system-node-critical"),
                           ks_pod("addon", labels={"addonmanager.kubernetes.io/mode": "Reconcile"})],
         id="cluster-components"),
    Case("KW-R022", extra=[role(rule([""], ["services"], ["update"]))], id="not-status"),
    Case("KW-R022", extra=[role(rule([""], ["nodes/status"], ["get", "list"]), kind="ClusterRole")], id="read-only"),
    Case("KW-R023", extra=[role(rule([""], ["services", "endpoints"], ["get", "list", "watch", "delete"]))]),
    Case("KW-R023", extra=[role(rule(["apps"], ["services"], ["create"]))], id="other-group"),
    Case("KW-R024", extra=[role(rule(["extensions"], ["networkpolicies"], ["create"]))], id="other-group"),
    Case("KW-R025", extra=[role(rule([""], ["configmaps"], ["update"]))], id="role-elsewhere"),
    Case("KW-R025", extra=[in_ns(role(rule([""], ["configmaps"], ["update"])), KS)], id="unbound"),
    Case("KW-R025", extra=[role(rule([""], ["configmaps"], ["update"]), kind="ClusterRole"),
                           binding([SA_WEB], ref="r", kind="RoleBinding")], id="bound-in-other-namespace"),
    Case("KW-R026", extra=[binding([SA_WEB], ref="edit", kind="RoleBinding")], id="namespaced-named-subject"),
    Case("KW-R026", extra=[binding([SA_WEB], ref="view")], id="view"),
    Case("KW-S001", [("ConfigMap", "data.DB_PASSWORD", "${DB_PASSWORD}"),
                     ("ConfigMap", "data.API_TOKEN", "{{ .Values.api.token }}")], id="placeholders"),
]
FAIL += [Case("KW-S001", [("ConfigMap", "data.DB_PASSWORD", "changeme")], path="/data/DB_PASSWORD", id="weak-value")]


ALLOW = {"allowed_registries": ("registry.example.com",)}


def version(minor: int) -> dict[str, Any]:
    return {"k8s_version": (1, minor)}


FAIL += [
    # registries (off by default; image references resolved as the runtime does)
    Case("KW-W061", [("C.image", "nginx:1.25" + DIGEST)], path=f"{C0}/image", settings=ALLOW),
    Case("KW-W061", [("I.image", "registry.example.com.evil.io/web:1")], path=f"{TPL}/initContainers/0/image",
         settings=ALLOW, id="suffix-is-another-host"),
    Case("KW-W061", [("C.image", "docker.io/library/nginx:1")], settings={"allowed_registries": ("docker.io/bitnami",)},
         id="path-prefix"),
    Case("KW-W061", [("C.image", "registry.example.com:5000/web:1")], settings=ALLOW, id="port-is-another-registry"),
    Case("KW-W061", [("C.image", "Registry.example.com/Web:1")], settings=ALLOW, id="invalid-reference"),
    # API versions against the target version
    Case("KW-A001", extra=[obj("PodSecurityPolicy", "psp", None, "policy/v1beta1", spec={})], path="/apiVersion"),
    Case("KW-A001", [("Ingress", "apiVersion", "extensions/v1beta1")], path="/apiVersion", id="ingress",
         settings=version(22)),
    Case("KW-A001", extra=[obj("FlowSchema", "f", None, "flowcontrol.apiserver.k8s.io/v1beta3", spec={})],
         id="removed-in-1.32", settings=version(32)),
    Case("KW-A002", extra=[obj("FlowSchema", "f", None, "flowcontrol.apiserver.k8s.io/v1beta3", spec={})],
         path="/apiVersion", settings=version(31)),
    Case("KW-A002", extra=[obj("Endpoints", "web", subsets=[])], id="endpoints-deprecated-1.33"),
]

PASS += [
    Case("KW-W061", [("C.image", "nginx:1.25")], id="off-by-default"),
    Case("KW-W061", [("C.image", "registry.example.com/team/web:2" + DIGEST)], settings=ALLOW),
    Case("KW-W061", [("C.image", "REGISTRY.example.com/web:1"), ("I.image", "registry.example.com/m:1")],
         settings=ALLOW, id="host-case-insensitive"),
    Case("KW-W061", [("C.image", "nginx:1.25"), ("I.image", "index.docker.io/library/busybox:1")],
         settings={"allowed_registries": ("docker.io/library",)}, id="docker-hub-normalized"),
    Case("KW-W061", [("C.image", "localhost:5000/web:1"), ("I.image", "localhost:5000/m:1")],
         settings={"allowed_registries": ("localhost:5000",)}, id="host-with-port"),
    Case("KW-A001", extra=[obj("FlowSchema", "f", None, "flowcontrol.apiserver.k8s.io/v1beta3", spec={})],
         settings=version(31), id="still-served"),
    Case("KW-A001", extra=[obj("Endpoints", "web", subsets=[])], id="deprecated-only"),
    Case("KW-A002", extra=[obj("FlowSchema", "f", None, "flowcontrol.apiserver.k8s.io/v1beta3", spec={})],
         settings=version(28), id="not-yet-deprecated"),
    Case("KW-A002", extra=[obj("PodSecurityPolicy", "psp", None, "policy/v1beta1", spec={})], id="removed-is-KW-A001"),
    Case("KW-A002", extra=[obj("FlowSchema", "f", None, "flowcontrol.apiserver.k8s.io/v1", spec={})], id="current"),
]


def _id(c: Case) -> str:
    return f"{c.control}-{c.id}" if c.id else c.control


@pytest.mark.parametrize("case", FAIL, ids=_id)
def test_control_fails(case: Case, tmp_path: Path) -> None:
    with using(ScanSettings(**case.settings)):
        findings = scan(build(case), case.control, tmp_path)
    assert findings, f"{case.control} did not fire"
    if case.path is not None:
        assert case.path in [f.path for f in findings], [f.path for f in findings]
    assert all(f.location.file and f.location.line for f in findings)


@pytest.mark.parametrize("case", PASS, ids=_id)
def test_control_passes(case: Case, tmp_path: Path) -> None:
    with using(ScanSettings(**case.settings)):
        findings = scan(build(case), case.control, tmp_path)
    assert findings == [], [(f.path, f.message) for f in findings]


def test_every_control_has_fail_and_pass_cases() -> None:
    modules = {f"kubeward.controls.{m}" for m in ("workload", "network", "rbac", "secrets", "apis")}
    ours = {cid for cid, c in all_controls().items()
            if c.func.__module__ in modules or c.func.__module__.startswith("kubeward.controls.workload.")}
    failing = {c.control for c in FAIL}
    assert ours - failing == set(), "controls without a failing example"
    # the hardened baseline is the passing example of every control (test_controls_meta); PASS adds edge cases
    assert {c.control for c in PASS} <= ours
