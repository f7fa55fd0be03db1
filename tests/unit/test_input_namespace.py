"""`-n/--namespace` for file inputs, as `kubectl apply -n NS -f install.yaml` places and refuses objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.resource import CLUSTER_SCOPED_KINDS, Resource, set_input_namespace

# The shape of argo-cd's install.yaml: no namespace anywhere except the ClusterRoleBinding subject.
INSTALL = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-server
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: argocd-server
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: argocd-server
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: argocd-server}
subjects:
- kind: ServiceAccount
  name: argocd-server
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: argocd-server
rules: []
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-server
spec:
  template:
    metadata:
      labels: {app: argocd-server}
    spec:
      serviceAccountName: argocd-server
      containers:
      - name: server
        image: quay.io/argoproj/argocd:v3.0.0
        securityContext: {privileged: true}
"""
ELSEWHERE = """\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: other-cm
  namespace: other
"""
MISMATCH = ('the namespace from the provided object "other" does not match the namespace "argocd". '
            "You must pass '--namespace=other' to perform this operation.")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def install(tmp_path: Path) -> Path:
    p = tmp_path / "install.yaml"
    p.write_text(INSTALL)
    return p


def test_rbac_sees_the_namespace_kubectl_apply_gives(install: Path) -> None:
    args = ("rbac", "can-i", "get", "secrets", "--sa", "argocd/argocd-server", "-f", str(install))
    # Without -n the binding is in `default`, where the service account is too: not in argocd.
    assert run(*args)[0] == 1
    code, out, _ = run(*args, "-n", "argocd")
    assert (code, out.strip()) == (0, "yes")


def test_rbac_risks_with_namespace(install: Path) -> None:
    code, out, _ = run("rbac", "risks", "-f", str(install), "-n", "argocd", "-o", "json", "--fail-on", "none")
    assert code == 0
    subjects = {r["subject"]["namespace"] + "/" + r["subject"]["name"]
                for r in json.loads(out)["risks"] if r["subject"]["kind"] == "ServiceAccount"}
    assert "argocd/argocd-server" in subjects
    _, out, _ = run("rbac", "risks", "-f", str(install), "-o", "json")
    assert "argocd/argocd-server" not in out


def test_scan_places_and_refuses_like_kubectl(install: Path) -> None:
    install.write_text(INSTALL + ELSEWHERE)
    code, out, err = run("scan", str(install), "-n", "argocd", "-o", "json")
    doc = json.loads(out)
    namespaces = {f["object"].get("namespace") for f in doc["findings"]}
    assert namespaces == {"argocd"} and code == 2  # the refused object is an input error: it fails the gate
    assert [e["message"] for e in doc["errors"]] == [f"line 45: ConfigMap other-cm: {MISMATCH}"]
    assert err.count(MISMATCH) == 1
    assert doc["summary"]["objects"] == 5  # the refused object is left out, the others are judged


def test_scan_without_namespace_keeps_default(install: Path) -> None:
    _, out, _ = run("scan", str(install), "-o", "json")
    assert {f["object"].get("namespace") for f in json.loads(out)["findings"]} == {"default"}


def test_bad_namespace_name_is_a_usage_error(install: Path) -> None:
    code, _, err = run("scan", str(install), "-n", "Not_A_Namespace")
    assert code == 2 and "not a namespace name" in err


def test_pss_filter_keeps_its_meaning_and_places_inputs(install: Path) -> None:
    install.write_text(INSTALL + ELSEWHERE.replace("ConfigMap", "Pod").replace("other-cm", "p") +
                       "spec:\n  containers: [{name: a, image: nginx}]\n")
    code, out, err = run("pss", "check", str(install), "--level", "baseline", "-n", "argocd", "-o", "json")
    objs = [r["object"] for r in json.loads(out)["results"]]
    assert [(o["namespace"], o["name"]) for o in objs] == [("argocd", "argocd-server")]
    assert code == 1 and "does not match" not in err  # a filter: the pod in `other` is just not shown


def test_netpol_lint_refuses_other_namespaces(install: Path) -> None:
    install.write_text(INSTALL + ELSEWHERE)
    code, _, err = run("netpol", "lint", str(install), "-n", "argocd")
    assert MISMATCH in err and code in (0, 1)


def test_crd_declared_cluster_scope_is_untouched() -> None:
    crd = Resource({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": "widgets.example.com"},
                    "spec": {"scope": "Cluster", "names": {"kind": "Widget"}}})
    widget = Resource({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    gadget = Resource({"apiVersion": "example.com/v1", "kind": "Gadget"})
    kept, refused = set_input_namespace([crd, widget, gadget], "ns1", enforce=True)
    assert kept == [crd, widget, gadget] and refused == []
    assert "namespace" not in widget.metadata and gadget.metadata == {"namespace": "ns1"}


KINDS = st.sampled_from(["Pod", "Deployment", "RoleBinding", "ConfigMap", "ClusterRole", "Namespace", "Node"])
NS = st.sampled_from([None, "", "a", "b"])


@given(st.lists(st.tuples(KINDS, NS), max_size=12), st.sampled_from(["a", "b"]), st.booleans())
def test_placement_property(objs: list[tuple[str, str | None]], wanted: str, enforce: bool) -> None:
    resources = []
    for i, (kind, ns) in enumerate(objs):
        meta: dict[str, object] = {"name": f"o{i}"}
        if ns is not None:
            meta["namespace"] = ns
        resources.append(Resource({"apiVersion": "v1", "kind": kind, "metadata": meta}))
    originals = [(r.kind, r.metadata.get("namespace")) for r in resources]
    kept, refused = set_input_namespace(resources, wanted, enforce=enforce)
    assert len(kept) + len(refused) == len(resources)
    for r, (kind, ns) in zip(resources, originals, strict=True):
        if kind in CLUSTER_SCOPED_KINDS:
            assert r in kept and r.namespace is None
        elif not ns:
            assert r in kept and r.namespace == wanted
        elif ns != wanted and enforce:
            assert r not in kept and any(x is r and f'"{ns}" does not match' in m for x, m in refused)
        else:
            assert r in kept and r.namespace == ns


def test_request_namespace_places_but_refuses_nothing(install: Path) -> None:
    install.write_text(INSTALL + ELSEWHERE)
    code, out, err = run("rbac", "can-i", "get", "secrets", "--sa", "argocd/argocd-server", "-f", str(install),
                         "-n", "argocd")
    assert (code, out.strip()) == (0, "yes") and "does not match" not in err
    # The default request namespace is not a -n: inputs stay in `default`.
    code, out, _ = run("rbac", "can-i", "get", "secrets", "--sa", "default/argocd-server", "-f", str(install))
    assert (code, out.strip()) == (0, "yes")


def test_namespace_with_cluster_reads_that_namespace() -> None:
    """With --cluster, -n is kubectl get's (tests/unit/test_cluster_namespace.py): no longer refused, so with no
    kubeconfig at hand the cluster read itself is what fails."""
    code, _, err = run("scan", "--cluster", "-n", "argocd", "--kubeconfig", "/nonexistent/kubeconfig")
    assert code == 2 and "places file inputs" not in err and "/nonexistent/kubeconfig" in err
