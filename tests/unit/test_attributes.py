"""One request-attributes type (kubeward.attributes) for the RBAC authorizer, audit2rbac and the audit policy."""

from __future__ import annotations

from typing import Any

import pytest

from kubeward.attributes import Attributes, url_name
from kubeward.audit import audit2rbac
from kubeward.engines import auditpolicy
from kubeward.engines.rbac import model
from kubeward.identity import UserInfo

ALICE = {"username": "alice", "groups": ["dev", "system:authenticated"]}


def event(verb: str, uri: str, ref: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"verb": verb, "requestURI": uri, "user": ALICE, "stage": "ResponseComplete",
                          "annotations": {"authorization.k8s.io/decision": "allow"}, **extra}
    if ref is not None:
        ev["objectRef"] = ref
    return ev


def test_one_type() -> None:
    assert model.Request is Attributes and auditpolicy.Attributes is Attributes and audit2rbac.Observed is Attributes


# (verb, requestURI, objectRef as the audit log writes it after LogRequestObject) -> the name the authorizer saw
NAMES = [
    ("create", "/api/v1/namespaces/app/pods", {"resource": "pods", "namespace": "app", "name": "web"}, ""),
    ("create", "/apis/apps/v1/namespaces/app/deployments?fieldManager=kubectl",
     {"apiGroup": "apps", "resource": "deployments", "namespace": "app", "name": "web"}, ""),
    ("create", "/api/v1/namespaces", {"resource": "namespaces", "name": "team-a"}, ""),
    ("create", "/api/v1/namespaces/app/pods/web/eviction",
     {"resource": "pods", "subresource": "eviction", "namespace": "app", "name": "web"}, "web"),
    ("create", "/api/v1/namespaces/app/serviceaccounts/default/token",
     {"resource": "serviceaccounts", "subresource": "token", "namespace": "app", "name": "default"}, "default"),
    ("get", "/api/v1/namespaces/app/pods/web", {"resource": "pods", "namespace": "app", "name": "web"}, "web"),
    ("update", "/api/v1/namespaces/app/status",
     {"resource": "namespaces", "subresource": "status", "namespace": "app", "name": "app"}, "app"),
    # No URL to read (hand-written events): a create names nothing unless it is a subresource's.
    ("create", "", {"resource": "pods", "namespace": "app", "name": "web"}, ""),
    ("create", "", {"resource": "pods", "subresource": "exec", "namespace": "app", "name": "web"}, "web"),
]


@pytest.mark.parametrize(("verb", "uri", "ref", "want"), NAMES)
def test_name_as_requestinfo_resolves_it(verb: str, uri: str, ref: dict[str, str], want: str) -> None:
    ev = event(verb, uri, ref)
    a = Attributes.from_audit_event(ev)
    assert a is not None and a.name == want
    # The audit policy and audit2rbac see the same request.
    assert auditpolicy.attributes_from_event(ev).name == want
    o = audit2rbac.observe(ev)
    assert o is not None and o.name == want and o.user is None


def test_identity_choice() -> None:
    ev = event("get", "/api/v1/namespaces/a/pods/p", {"resource": "pods", "namespace": "a", "name": "p"},
               impersonatedUser={"username": "bob", "groups": ["g"]})
    authn, authz = Attributes.from_audit_event(ev), Attributes.from_audit_event(ev, "authorized")
    assert authn is not None and authn.user == UserInfo("alice", ("dev", "system:authenticated"))
    assert authz is not None and authz.user == UserInfo("bob", ("g",))
    assert Attributes.from_audit_event({**ev, "user": "alice"}) is None  # not the type the API writes
    assert Attributes.from_audit_event({**ev, "objectRef": {"resource": 3}}) is None


def test_create_by_name_is_not_selected_by_resource_names() -> None:
    """The bug the three engines disagreed on: the audit policy checker evaluates before the body is read, so a
    `resourceNames` rule never selects a create (checker.go ruleMatchesResource reads attrs.GetName(), empty for a
    create). The old evaluator read the name LogRequestObject fills in afterwards and logged the create at
    RequestResponse; the apiserver logs it at the catch-all's level."""
    policy = auditpolicy.parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"],
                                                   "resourceNames": ["app-config"]}]},
        {"level": "Metadata"}]})
    ref = {"resource": "configmaps", "namespace": "app", "name": "app-config"}
    create = auditpolicy.attributes_from_event(event("create", "/api/v1/namespaces/app/configmaps", ref))
    update = auditpolicy.attributes_from_event(event("update", "/api/v1/namespaces/app/configmaps/app-config", ref))
    assert policy.evaluate(create).level == "Metadata"
    assert policy.evaluate(update).level == "RequestResponse"


def test_question_keeps_the_name() -> None:
    """`kubectl auth can-i create pods web` is a SubjectAccessReview: the name stays (helpers.go)."""
    q = Attributes.question("create", "pods", namespace="app", name="web")
    assert (q.name, q.resource_request) == ("web", True)
    nr = Attributes.question("get", path="/healthz")
    assert (nr.resource_request, nr.path, nr.resource) == (False, "/healthz", "")


@pytest.mark.parametrize(("path", "res", "sub", "want"), [
    ("/api/v1/pods", "pods", "", ""),
    ("/api/v1/watch/namespaces/a/pods/p", "pods", "", "p"),
    ("/apis/apps/v1/namespaces/a/deployments/d/scale", "deployments", "scale", "d"),
    ("/apis/apps/v1/namespaces/a/deployments/d/scale", "deployments", "", None),
    ("/api/v1/namespaces/a/finalize", "namespaces", "finalize", "a"),
    ("/healthz", "pods", "", None),
    ("/apis/apps", "deployments", "", None),
])
def test_url_name(path: str, res: str, sub: str, want: str | None) -> None:
    assert url_name(path, res, sub) == want
