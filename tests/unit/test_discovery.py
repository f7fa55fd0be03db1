"""Resource arguments resolved as kubectl resolves them (kubeward.discovery; cani.go resourceFor, the shortcut
expander and the priority RESTMapper over the shipped v1.37 discovery)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kubeward.cli.rbac import build_request
from kubeward.discovery import RESTMapper, guess_kind_to_resource, version_priority
from kubeward.engines.rbac import Request

M = RESTMapper.builtin()


@pytest.mark.parametrize(("arg", "group", "resource"), [
    ("deployments", "apps", "deployments"),  # plural without a group: kubectl finds apps
    ("deployment", "apps", "deployments"),  # singular
    ("Deployment", "apps", "deployments"),  # Kind (lower-cased first)
    ("deploy", "apps", "deployments"),  # short names from discovery
    ("po", "", "pods"), ("svc", "", "services"), ("cm", "", "configmaps"), ("sa", "", "serviceaccounts"),
    ("ns", "", "namespaces"), ("netpol", "networking.k8s.io", "networkpolicies"),
    ("pvc", "", "persistentvolumeclaims"), ("cj", "batch", "cronjobs"), ("ds", "apps", "daemonsets"),
    ("sts", "apps", "statefulsets"), ("csr", "certificates.k8s.io", "certificatesigningrequests"),
    ("crd", "apiextensions.k8s.io", "customresourcedefinitions"), ("ing", "networking.k8s.io", "ingresses"),
    ("deployments.apps", "apps", "deployments"),  # resource.group
    ("deployments.v1.apps", "apps", "deployments"),  # resource.version.group
    ("deploy.apps", "apps", "deployments"),  # short name with a group
    ("storageclass.storage", "storage.k8s.io", "storageclasses"),  # group prefix (restmapper.go)
    ("storageclasses.storage.k8s.io", "storage.k8s.io", "storageclasses"),  # 2 dots but not a version
    ("events", "", "events"),  # core v1 first among equals (PriorityRESTMapper)
    ("ev", "", "events"),
    ("events.events.k8s.io", "events.k8s.io", "events"),
    ("hpa", "autoscaling", "horizontalpodautoscalers"),
    ("endpoints", "", "endpoints"),
    ("deploymentlist", "apps", "deploymentlists"),  # the unsafe <Kind>List guess kubectl keeps
    ("SECRETS", "", "secrets"),
])
def test_kubectl_resolution(arg: str, group: str, resource: str) -> None:
    got = M.resolve(arg)
    assert (got.group, got.resource, got.known, got.warning) == (group, resource, True, "")


def test_version_is_the_one_asked_for() -> None:
    assert M.resolve("horizontalpodautoscalers.v1.autoscaling").version == "v1"
    assert M.resolve("hpa").version == "v2"  # the preferred version


@pytest.mark.parametrize(("arg", "warning"), [
    ("widgets", "the server doesn't have a resource type 'widgets'"),
    ("configmapz", "the server doesn't have a resource type 'configmapz'"),
    ("widgets.example.com", "the server doesn't have a resource type 'widgets' in group 'example.com'"),
])
def test_unknown_types_pass_through_as_written_with_kubectls_warning(arg: str, warning: str) -> None:
    got = M.resolve(arg)
    assert (got.group, got.resource, got.known, got.warning) == ("", arg, False, warning)


@pytest.mark.parametrize("arg", ["users", "groups", "*"])
def test_non_standard_resources_are_not_warned(arg: str) -> None:
    got = M.resolve(arg)
    assert (got.group, got.resource, got.warning) == ("", arg, "")


def test_scope_comes_from_discovery() -> None:
    assert not M.resolve("no").namespaced and not M.resolve("clusterrole").namespaced
    assert M.resolve("roles").namespaced and M.resolve("leases").namespaced


def test_subresources_are_known() -> None:
    assert M.has_subresource("", "pods", "exec") and M.has_subresource("apps", "deployments", "scale")
    assert M.has_subresource("", "serviceaccounts", "token") and not M.has_subresource("", "pods", "scale")


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com"},
       "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
                "versions": [{"name": "v1alpha1", "served": True, "storage": False},
                             {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}},
                             {"name": "v0", "served": False, "storage": False}]}}


@pytest.mark.parametrize("arg", ["widgets", "widget", "Widget", "wg", "widgets.example.com", "wg.example",
                                 "widgets.v1alpha1.example.com"])
def test_crds_of_the_input_join_the_mapper(arg: str) -> None:
    got = M.with_crds([CRD]).resolve(arg)
    assert (got.group, got.resource, got.namespaced, got.warning) == ("example.com", "widgets", False, "")


def test_crd_versions_and_subresources() -> None:
    m = M.with_crds([CRD])
    assert m.resolve("widgets").version == "v1"  # GA before alpha; v0 is not served
    assert m.has_subresource("example.com", "widgets", "status")
    assert not m.resolve("widgets.v0.example.com").known  # an unserved version is not discovered


def test_kind_guess_and_version_order() -> None:
    assert guess_kind_to_resource("NetworkPolicy") == ("networkpolicies", "networkpolicy")
    assert guess_kind_to_resource("Ingress") == ("ingresses", "ingress")
    assert guess_kind_to_resource("Endpoints") == ("endpoints", "endpoints")
    assert sorted(["v1beta1", "v2", "v1", "v1alpha1", "v2beta2", "foo"], key=version_priority) == [
        "v2", "v1", "v2beta2", "v1beta1", "v1alpha1", "foo"]


@pytest.mark.parametrize(("args", "want"), [
    (("get", "deployments", None, "dev", False, None), Request("get", "deployments", "", "apps", "dev")),
    (("create", "po/exec", None, "dev", False, None), Request("create", "pods", "exec", "", "dev")),
    (("update", "deploy/scale", None, "dev", False, None), Request("update", "deployments", "scale", "apps", "dev")),
    (("get", "po", None, "dev", False, None, "log"), Request("get", "pods", "log", "", "dev")),  # --subresource
    (("list", "no", None, "dev", False, None), Request("list", "nodes", "", "", "")),
    (("get", "deployments", None, "dev", False, ""), Request("get", "deployments", "", "", "dev")),  # literal
])
def test_build_request_resolves(args: tuple[object, ...], want: Request) -> None:
    assert build_request(M, *args) == want  # type: ignore[arg-type]


def _run(*args: str, stdin: str = "") -> tuple[int, str, str]:
    from kubeward.cli.main import cli

    r = CliRunner().invoke(cli, list(args), input=stdin)
    return r.exit_code, r.stdout, r.stderr


DEPLOYER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: dev}
rules: [{apiGroups: [apps], resources: [deployments], verbs: [get]},
        {apiGroups: [""], resources: [pods/exec], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: d, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects: [{kind: User, name: alice}]
"""


@pytest.mark.parametrize("target", ["deployments", "deploy", "deployment", "Deployment", "deployments.apps",
                                    "deployments.v1.apps"])
def test_can_i_get_deployments_is_yes_in_every_spelling(target: str) -> None:
    rc, out, err = _run("rbac", "can-i", "get", target, "-n", "dev", "--as", "alice", "-f", "-", stdin=DEPLOYER)
    assert (rc, out, err) == (0, "yes\n", "")


def test_can_i_unknown_type_warns_like_kubectl() -> None:
    rc, out, err = _run("rbac", "can-i", "get", "deploymentz", "-n", "dev", "--as", "alice", "-f", "-",
                        stdin=DEPLOYER)
    assert (rc, out) == (1, "no\n")
    assert "Warning: the server doesn't have a resource type 'deploymentz'" in err


def test_who_can_resolves_short_names() -> None:
    rc, out, _ = _run("rbac", "who-can", "create", "po/exec", "-n", "dev", "-f", "-", "-o", "json", stdin=DEPLOYER)
    assert rc == 0 and '"name": "alice"' in out


def test_can_i_resolves_crds_of_the_input() -> None:
    import yaml

    crd = yaml.safe_dump(CRD)
    role = DEPLOYER.replace("apps], resources: [deployments]", "example.com], resources: [widgets]")
    rc, out, err = _run("rbac", "can-i", "get", "wg", "-n", "dev", "--as", "alice", "-f", "-",
                        stdin=crd + "---\n" + role)
    # cluster-scoped CRD: asked at cluster scope, where a RoleBinding grants nothing
    assert (rc, out, err) == (1, "no\n", "")
