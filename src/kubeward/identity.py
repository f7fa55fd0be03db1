"""Who a request is: the user name and groups the authenticators and impersonation produce.

Dependency-free so the RBAC engine, the audit-policy engine and the audit stream share one `UserInfo` and one
spelling of the well-known names (k8s.io/apiserver/pkg/authentication/user/user.go, serviceaccount/util.go).
"""

from __future__ import annotations

from .records import record

SA_PREFIX = "system:serviceaccount:"  # staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount/util.go
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
AUTHENTICATED = "system:authenticated"  # k8s.io/apiserver/pkg/authentication/user/user.go
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"  # user.SystemPrivilegedGroup


@record(frozen=True)
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


# ---- subjects as people type them -------------------------------------------------------------------------------

SUBJECT_KINDS = {"user": "User", "group": "Group", "serviceaccount": "ServiceAccount"}  # rbac/v1 Subject kinds


class SubjectError(ValueError):
    """A subject argument that cannot be read, or that could be several subjects (the message names them)."""


@record(frozen=True)
class SubjectRef:
    """A typed subject: kind User | Group | ServiceAccount, name, and (service accounts only) namespace.
    `kind` is "" for a bare name whose kind the caller has to settle (see `parse_subject`)."""

    kind: str
    name: str
    namespace: str = ""

    @property
    def username(self) -> str:
        """The user name the authenticators give it (serviceaccount/util.go MakeUsername); "" for groups."""
        if self.kind == "ServiceAccount":
            return f"{SA_PREFIX}{self.namespace}:{self.name}"
        return self.name if self.kind == "User" else ""

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}" if self.kind else self.name


def _service_account(ns: str, name: str, text: str) -> SubjectRef:
    if not ns or not name or ":" in name or "/" in name or "/" in ns:
        raise SubjectError(f"{text!r}: a service account is NAMESPACE/NAME, ServiceAccount:NAMESPACE:NAME or "
                           f"{SA_PREFIX}NAMESPACE:NAME")
    return SubjectRef("ServiceAccount", name, ns)


def parse_subject(text: str) -> SubjectRef:
    """The one reading of a typed subject, for --as, --sa, --from and every other place a subject is typed:

    - `User:alice`, `Group:devs`, `ServiceAccount:NS:NAME` (also `ServiceAccount:NS/NAME`), kind case-insensitive;
      the same with a space instead of the first colon (`ServiceAccount dev/ci`, as kubeward prints subjects);
    - `system:serviceaccount:NS:NAME` (the service account's user name) and `NS/NAME`: a service account;
    - anything else is a bare name, returned with kind "" (a user for --as, to be looked up for --from).
    """
    raw = text.strip()
    if not raw:
        raise SubjectError("empty subject")
    if raw.startswith(SA_PREFIX):
        ns, _, name = raw[len(SA_PREFIX):].partition(":")
        return _service_account(ns, name, raw)
    head, sep, rest = raw.partition(":")
    if not sep or " " in head:
        head, sep, rest = raw.partition(" ")
    kind = SUBJECT_KINDS.get(head.lower()) if sep else None
    if kind is not None:
        rest = rest.strip()
        if not rest:
            raise SubjectError(f"{raw!r}: no name after {head}")
        if kind == "ServiceAccount":
            ns, sep2, name = rest.partition(":") if ":" in rest else rest.partition("/")
            return _service_account(ns, name if sep2 else "", raw)
        return SubjectRef(kind, rest)
    if "/" in raw and ":" not in raw:
        ns, _, name = raw.partition("/")
        return _service_account(ns, name, raw)
    return SubjectRef("", raw)


def settle_kind(ref: SubjectRef, named: set[tuple[str, str, str]]) -> SubjectRef:
    """A bare name's kind from the subjects that bindings name ((kind, namespace, name) triples): exactly one
    kind → that one; several → SubjectError naming the choices; none → the ref unchanged (kind "")."""
    if ref.kind:
        return ref
    hits = sorted({(k, ns) for k, ns, n in named if n == ref.name and k in ("User", "Group")})
    hits += sorted({(k, ns) for k, ns, n in named if k == "ServiceAccount" and n == ref.name})
    if len(hits) == 1:
        kind, ns = hits[0]
        return SubjectRef(kind, ref.name, ns)
    if len(hits) > 1:
        choices = ", ".join(str(SubjectRef(k, ref.name, ns)).replace(" ", ":", 1).replace("/", ":")
                            for k, ns in hits)
        raise SubjectError(f"{ref.name!r} could be several subjects: {choices}; say which")
    return ref
