"""One sensitive-host-path predicate for scan and audit: spellings of a path are judged alike."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeward.hostpaths import clean, is_runtime_socket, is_sensitive


@pytest.mark.parametrize("spelling", ["/etc", "/etc/", "//etc", "/etc/.", "/./etc//", "/var/../etc", "etc"])
def test_spellings_of_etc_are_sensitive(spelling: str) -> None:
    assert clean(spelling) == "/etc" and is_sensitive(clean(spelling))


@pytest.mark.parametrize("path,sensitive", [("/proc/", True), ("/etc/kubernetes/manifests", True),
                                            ("/var/lib", True), ("/var/lib/app", False), ("/data", False),
                                            ("/etcd-backup", False), ("/", True), ("/..", True)])
def test_sensitive(path: str, sensitive: bool) -> None:
    assert is_sensitive(clean(path)) is sensitive


def test_runtime_socket_after_cleaning() -> None:
    assert is_runtime_socket(clean("//var/run/./docker.sock")) and not is_runtime_socket(clean("/var/run/app.sock"))


@given(st.lists(st.sampled_from(["", ".", "..", "etc", "var", "lib", "kubelet"]), max_size=8))
def test_clean_matches_posix_normpath(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    # posixpath.normpath keeps a leading "//"; Go's path.Clean (and the kubelet) does not.
    assert clean(path) == "/" + posixpath.normpath(path).lstrip("/")
    assert clean(clean(path)) == clean(path)
