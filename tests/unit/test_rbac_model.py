"""Implicit groups of `--as` users (impersonation.go) and request parsing of the CLI (kubectl forms)."""

from __future__ import annotations

import pytest

from kubeward.cli.rbac import build_request
from kubeward.discovery import RESTMapper
from kubeward.engines.rbac import Request, user_info


@pytest.mark.parametrize(("name", "groups", "want"), [
    ("jane", (), ("system:authenticated",)),
    ("jane", ("devs",), ("devs", "system:authenticated")),
    ("jane", ("system:unauthenticated",), ("system:unauthenticated",)),
    ("system:anonymous", (), ("system:unauthenticated",)),
    ("system:serviceaccount:ns1:sa", (), ("system:serviceaccounts", "system:serviceaccounts:ns1",
                                          "system:authenticated")),
    ("system:serviceaccount:ns1:sa", ("g",), ("g", "system:authenticated")),  # given groups are the authority
    ("system:serviceaccount:broken", (), ("system:authenticated",)),
])
def test_user_info_groups(name: str, groups: tuple[str, ...], want: tuple[str, ...]) -> None:
    assert user_info(name, groups).groups == want


@pytest.mark.parametrize(("args", "want"), [
    (("get", "pods", None, "dev", False, None), Request("get", "pods", "", "", "dev")),
    (("get", "pods/log", "web", "dev", False, None), Request("get", "pods", "log", "", "dev", "web")),
    (("update", "deployments.apps/scale", None, "dev", False, None),
     Request("update", "deployments", "scale", "apps", "dev")),
    (("list", "nodes", None, "dev", False, None), Request("list", "nodes", "", "", "")),  # cluster-scoped kind
    (("list", "pods", None, "dev", True, None), Request("list", "pods", "", "", "")),  # -A
    (("get", "widgets", None, "dev", False, "example.com"), Request("get", "widgets", "", "example.com", "dev")),
    (("get", "/healthz", None, "dev", False, None), Request.non_resource("get", "/healthz")),
])
def test_build_request(args: tuple[object, ...], want: Request) -> None:
    assert build_request(RESTMapper.builtin(), *args) == want  # type: ignore[arg-type]
