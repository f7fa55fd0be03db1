"""`kubeward rbac …` end to end on tests/data/rbac/cluster: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli

F = ["-f", "tests/data/rbac/cluster"]


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["rbac", *args], input=stdin)
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(("args", "answer", "code"), [
    (["get", "secrets", "-n", "dev", "--as", "jane"], "yes", 0),
    (["get", "secrets", "-n", "prod", "--as", "jane"], "no", 1),
    (["get", "configmaps", "app-config", "-n", "dev", "--as", "jane"], "yes", 0),
    (["get", "configmaps", "-n", "dev", "--as", "jane"], "no", 1),  # resourceNames never match nameless
    (["list", "pods/log", "-n", "dev", "--as", "bob", "--as-group", "developers"], "yes", 0),  # aggregated view
    (["list", "pods/log", "-n", "kube-system", "--as", "bob", "--as-group", "developers"], "no", 1),
    (["get", "secrets", "-n", "dev", "--as", "bob", "--as-group", "developers"], "yes", 0),  # via crd-viewer
    (["list", "secrets", "-n", "dev", "--as", "bob", "--as-group", "developers"], "no", 1),
    (["get", "nodes", "--sa", "kube-system/deployer"], "yes", 0),  # nodes: cluster scope
    (["create", "pods", "-n", "kube-system", "--as", "system:serviceaccount:dev:ci"], "yes", 0),
    (["create", "pods", "-A", "--as", "system:serviceaccount:dev:ci"], "no", 1),
    (["get", "/healthz", "--as", "ops-admin"], "yes", 0),
    # system:public-info-viewer is bound to system:unauthenticated in every cluster (bootstrap policy)
    (["get", "/healthz", "--as", "system:anonymous"], "yes", 0),
    (["get", "/healthz", "--as", "system:anonymous", "--no-bootstrap-policy"], "no", 1),
    (["get", "/healthz", "--as", "system:anonymous", "--no-builtin-roles"], "no", 1),  # the old name
    (["get", "/version", "--as", "nobody-bound"], "yes", 0),
    (["get", "/api", "--as", "nobody-bound"], "yes", 0),
    (["get", "/metrics", "--as", "nobody-bound"], "no", 1),
    (["get", "deployments", "-n", "dev", "--as", "nobody-bound", "--k8s-version", "v1.37"], "no", 1),
    (["delete", "nodes", "--as", "x", "--as-group", "system:masters"], "yes", 0),
    (["impersonate", "users", "ops-admin", "--as", "helpdesk"], "yes", 0),
    (["impersonate", "users", "root", "--as", "helpdesk"], "no", 1),
])
def test_can_i(args: list[str], answer: str, code: int) -> None:
    rc, out, _ = run("can-i", *args, *F)
    assert (rc, out) == (code, answer + "\n")


def test_can_i_explain_names_binding_role_and_rule() -> None:
    rc, out, _ = run("can-i", "get", "secrets", "-n", "dev", "--as", "jane", "--explain", *F)
    assert rc == 0
    assert 'binding: RoleBinding "readers/dev" of Role "secret-reader"' in out
    assert 'role: Role "dev/secret-reader"' in out
    assert "rule: verbs=get,list" in out


def test_can_i_explain_reports_dangling_role() -> None:
    rc, out, _ = run("can-i", "delete", "pods", "-n", "dev", "--as", "jane", "--explain", *F)
    assert rc == 1
    assert 'error: RoleBinding "dangling/dev" of Role "does-not-exist": Role "dev/does-not-exist" not found' in out


def test_who_can_json_contract() -> None:
    rc, out, _ = run("who-can", "create", "pods", "-n", "kube-system", "-o", "json", *F)
    assert rc == 0
    data = json.loads(out)
    assert set(data) == {"subjects", "via"}
    assert data["subjects"][0] == {"kind": "Group", "name": "system:masters"}
    assert {"kind": "ServiceAccount", "name": "ci", "namespace": "dev"} in data["subjects"]
    assert {"kind": "User", "name": "jane"} not in data["subjects"]
    ci = next(v for v in data["via"] if v["binding"]["name"] == "ci-launch")
    assert ci["binding"] == {"kind": "RoleBinding", "name": "ci-launch", "namespace": "kube-system"}
    assert ci["role"] == {"kind": "ClusterRole", "name": "pod-launcher"}
    assert ci["rule"]["verbs"] == ["create", "get"]


def test_who_can_service_account_namespace_defaults_to_binding() -> None:
    rc, out, _ = run("who-can", "list", "secrets", "-n", "dev", "-o", "json", *F)
    assert rc == 0
    assert {"kind": "ServiceAccount", "name": "app", "namespace": "dev"} in json.loads(out)["subjects"]


def test_matrix_json() -> None:
    rc, out, _ = run("matrix", "--as", "jane", "-n", "dev", "-o", "json", *F)
    assert rc == 0
    rows = {r["resource"]: r["verbs"] for r in json.loads(out)["resources"] if r["apiGroup"] == ""}
    assert rows["secrets"]["get"] and rows["secrets"]["list"] and not rows["secrets"]["watch"]
    assert not any(rows["pods"].values())


def test_matrix_all_namespaces_is_cluster_scope() -> None:
    """-A names the default (cluster scope, as can-i's -A does); with -n it is a usage error, not a silent pick."""
    rc, out, _ = run("matrix", "--as", "jane", "-A", "-o", "json", *F)
    rc2, out2, _ = run("matrix", "--as", "jane", "-o", "json", *F)
    assert rc == rc2 == 0 and out == out2
    assert any(not r["namespaced"] for r in json.loads(out)["resources"])
    rc, _, err = run("matrix", "--as", "jane", "-A", "-n", "dev", *F)
    assert rc == 2 and "exclude each other" in err


def test_risks_json_and_pods() -> None:
    rc, out, _ = run("risks", "-o", "json", *F)
    assert rc == 1  # high and critical risks exist
    risks = json.loads(out)["risks"]
    ci = next(r for r in risks if r["subject"] == {"kind": "ServiceAccount", "name": "ci", "namespace": "dev"})
    assert (ci["category"], ci["scope"], ci["severity"]) == ("pods-create", "kube-system", "high")
    assert ci["pods"] == [{"kind": "Deployment", "namespace": "dev", "name": "ci-runner", "tokenMounted": True}]
    assert ci["via"][0]["binding"]["name"] == "ci-launch"
    # bootstrap policy (system:masters) is skipped by default, included on request
    assert not any(r["subject"]["name"] == "system:masters" for r in risks)
    _, out, _ = run("risks", "-o", "json", "--include-defaults", *F)
    assert any(r["subject"]["name"] == "system:masters" for r in json.loads(out)["risks"])


def test_paths_prints_one_chain_per_line() -> None:
    rc, out, _ = run("paths", *F)
    assert rc == 1
    lines = out.splitlines()
    ci = next(line for line in lines if line.startswith("ServiceAccount dev/ci "))
    assert "create pods in kube-system" in ci
    assert "ServiceAccount kube-system/deployer" in ci and ci.endswith("-> cluster-admin")
    assert any(line.startswith("User helpdesk ") and "impersonate user ops-admin" in line for line in lines)
    assert not any(line.startswith("User ops-admin ") for line in lines)  # already cluster-admin


def test_stdin_input() -> None:
    doc = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\n"
           "roleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: User, name: u}]\n---\n"
           "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n"
           "rules: [{verbs: [get], apiGroups: [''], resources: [pods]}]\n")
    rc, out, _ = run("can-i", "get", "pods", "--as", "u", "-f", "-", stdin=doc)
    assert (rc, out) == (0, "yes\n")


@pytest.mark.parametrize(("args", "message"), [
    (["can-i", "get", "pods", "--as", "u"], "kubeward: no input: give -f PATH"),
    (["can-i", "get", "pods", *F], "kubeward: give --as USER"),
    (["can-i", "get", "pods", "--sa", "nope", *F], "kubeward: --sa nope: expected NAMESPACE/NAME"),
    (["can-i", "get", "pods", "--as", "u", "-f", "does/not/exist.yaml"], "kubeward: "),
    (["who-can", "get", "/healthz", "x", *F], "kubeward: /healthz: a non-resource URL takes no name"),
])
def test_user_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    rc, out, err = run(*args)
    assert rc == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    assert "Traceback" not in err


EDIT_BINDING = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: devs, namespace: dev}\n"
                "roleRef: {kind: ClusterRole, name: edit}\nsubjects: [{kind: User, name: dana}]\n")


def test_builtin_bootstrap_roles_fill_in_undefined_cluster_roles() -> None:
    rc, out, _ = run("can-i", "get", "secrets", "-n", "dev", "--as", "dana", "--explain", "-f", "-", stdin=EDIT_BINDING)
    assert rc == 0 and out.startswith("yes\n")
    assert 'role: ClusterRole "edit" (bootstrap policy, not in the input)' in out
    rc, out, _ = run("can-i", "impersonate", "serviceaccounts", "-n", "dev", "--as", "dana", "-f", "-",
                     stdin=EDIT_BINDING)
    assert (rc, out) == (0, "yes\n")
    rc, out, _ = run("can-i", "create", "rolebindings.rbac.authorization.k8s.io", "-n", "dev", "--as", "dana",
                     "-f", "-", stdin=EDIT_BINDING)
    assert (rc, out) == (1, "no\n")  # admin-only power
    rc, out, _ = run("can-i", "get", "secrets", "-n", "dev", "--as", "dana", "--no-builtin-roles", "-f", "-",
                     stdin=EDIT_BINDING)
    assert (rc, out) == (1, "no\n")
