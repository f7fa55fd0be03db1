"""One subject parser for every place a subject is typed (identity.parse_subject, settle_kind) and its use by
`rbac can-i --as/--sa`, `matrix` and `paths --from`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kubeward.identity import SubjectError, SubjectRef, parse_subject, settle_kind


@pytest.mark.parametrize(("text", "want"), [
    ("User:alice", SubjectRef("User", "alice")), ("user:alice", SubjectRef("User", "alice")),
    ("USER:alice", SubjectRef("User", "alice")), ("Group:devs", SubjectRef("Group", "devs")),
    ("group:system:masters", SubjectRef("Group", "system:masters")),
    ("ServiceAccount:dev:ci", SubjectRef("ServiceAccount", "ci", "dev")),
    ("serviceaccount:dev/ci", SubjectRef("ServiceAccount", "ci", "dev")),
    ("ServiceAccount dev/ci", SubjectRef("ServiceAccount", "ci", "dev")),  # as kubeward prints subjects
    ("User jane", SubjectRef("User", "jane")),
    ("system:serviceaccount:dev:ci", SubjectRef("ServiceAccount", "ci", "dev")),
    ("dev/ci", SubjectRef("ServiceAccount", "ci", "dev")),
    ("release", SubjectRef("", "release")), ("system:anonymous", SubjectRef("", "system:anonymous")),
    ("User:system:kube-proxy", SubjectRef("User", "system:kube-proxy")),
])
def test_parse_subject(text: str, want: SubjectRef) -> None:
    assert parse_subject(text) == want


@pytest.mark.parametrize("text", ["", "ServiceAccount:dev", "system:serviceaccount:dev", "/ci", "dev/", "User:",
                                  "ServiceAccount:dev:ci:x"])
def test_bad_subjects(text: str) -> None:
    with pytest.raises(SubjectError):
        parse_subject(text)


def test_settle_kind() -> None:
    named = {("User", "", "release"), ("Group", "", "release"), ("Group", "", "ops"), ("ServiceAccount", "dev", "ci")}
    assert settle_kind(SubjectRef("", "ops"), named) == SubjectRef("Group", "ops")
    assert settle_kind(SubjectRef("", "ci"), named) == SubjectRef("ServiceAccount", "ci", "dev")
    assert settle_kind(SubjectRef("", "nobody"), named) == SubjectRef("", "nobody")
    with pytest.raises(SubjectError, match="Group:release, User:release"):
        settle_kind(SubjectRef("", "release"), named)


YAML = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: imp}
rules: [{apiGroups: [""], resources: [users, groups], verbs: [impersonate]},
        {apiGroups: [""], resources: [pods], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: imp}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: imp}
subjects: [{kind: Group, name: release}, {kind: User, name: release}, {kind: ServiceAccount, name: ci, namespace: dev},
           {kind: Group, name: helpdesk}]
"""


def run(*args: str) -> tuple[int, str, str]:
    from kubeward.cli.main import cli

    r = CliRunner().invoke(cli, ["rbac", *args, "-f", "-"], input=YAML)
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("sa", [["--sa", "dev/ci"], ["--sa", "ServiceAccount:dev:ci"], ["--sa", "dev:ci"],
                                ["--as", "system:serviceaccount:dev:ci"], ["--as", "ServiceAccount:dev:ci"],
                                ["--as", "dev/ci"], ["--sa", "system:serviceaccount:dev:ci"]])
def test_service_account_spellings_agree(sa: list[str]) -> None:
    assert run("can-i", "list", "pods", *sa)[:2] == (0, "yes\n")


def test_as_group_subject_is_refused() -> None:
    rc, _, err = run("can-i", "list", "pods", "--as", "Group:release")
    assert rc == 2 and "--as-group release" in err


def test_unbound_user_is_said_plainly() -> None:
    rc, out, err = run("can-i", "list", "pods", "--as", "User:bob")
    assert (rc, out) == (1, "no\n") and "no RoleBinding or ClusterRoleBinding names User bob" in err


def test_paths_from_ambiguous_bare_name_is_an_error() -> None:
    rc, out, err = run("paths", "--from", "release")
    assert rc == 2 and out == "" and "Group:release, User:release" in err


@pytest.mark.parametrize("start", ["Group:release", "group:release", "User:release", "ServiceAccount:dev:ci",
                                   "dev/ci", "helpdesk"])
def test_paths_from_typed_subjects(start: str) -> None:
    rc, out, _ = run("paths", "--from", start)
    assert rc == 1 and "impersonate group system:masters" in out


@pytest.mark.parametrize(("start", "said"), [
    ("nobody", "no RoleBinding or ClusterRoleBinding names a User, Group or ServiceAccount called 'nobody'"),
    ("Group:nobody", "no RoleBinding or ClusterRoleBinding names Group nobody"),
])
def test_paths_from_unknown_subject_never_says_no_paths(start: str, said: str) -> None:
    rc, out, err = run("paths", "--from", start)
    assert rc == 2 and "no escalation paths found" not in out and said in err


def test_paths_from_unbound_user_inherits_its_groups() -> None:
    rc, out, err = run("paths", "--from", "User:bob")
    assert rc == 0 and out == "no escalation paths found from User bob\n"
    assert "no RoleBinding or ClusterRoleBinding names User bob" in err
