"""Who a request is: the user name and groups the authenticators and impersonation produce.

Dependency-free so the RBAC engine, the audit-policy engine and the audit stream share one `UserInfo` and one
spelling of the well-known names (k8s.io/apiserver/pkg/authentication/user/user.go, serviceaccount/util.go).
"""

from __future__ import annotations

from dataclasses import dataclass

SA_PREFIX = "system:serviceaccount:"  # staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount/util.go
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
AUTHENTICATED = "system:authenticated"  # k8s.io/apiserver/pkg/authentication/user/user.go
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"  # user.SystemPrivilegedGroup


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()


def user_info(name: str, groups: tuple[str, ...] | list[str] = ()) -> UserInfo:
    """The user as kube-apiserver sees `--as NAME --as-group G…` (impersonation), which is also what the
    authenticators produce for real credentials.

    staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go: a `system:serviceaccount:NS:NAME`
    user gets system:serviceaccounts and system:serviceaccounts:NS when no groups are given; a
    non-anonymous user gets system:authenticated unless system:authenticated or system:unauthenticated is
    already listed; system:anonymous gets system:unauthenticated.
    """
    out = list(dict.fromkeys(groups))
    if name.startswith(SA_PREFIX) and not out:
        ns, sep, sa = name[len(SA_PREFIX):].partition(":")
        if sep and ns and sa:
            out += [ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{ns}"]
    if name == ANONYMOUS:
        if UNAUTHENTICATED not in out:
            out.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in out and UNAUTHENTICATED not in out:
        out.append(AUTHENTICATED)
    return UserInfo(name, tuple(out))
