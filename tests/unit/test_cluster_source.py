"""The live source without a cluster: pagination, apiVersion/kind filling, 403/404 → not assessed, coverage,
kubeconfig errors as one line. The e2e tests in tests/e2e/cluster prove the same against a real apiserver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.sources.cluster import (
    NETPOL_TYPES,
    RBAC_TYPES,
    SCAN_TYPES,
    Client,
    ClusterError,
    ResourceType,
    load_cluster,
)

pytest.importorskip("kubernetes")


class FakeClient:
    """Serves list pages from a dict path → list of items, `page` items at a time; other paths get `status`."""

    context = "fake@ctx"

    def __init__(self, data: dict[str, list[dict[str, Any]]], refused: dict[str, int], page: int = 2) -> None:
        self.data, self.refused, self.page, self.calls = data, refused, page, []

    def list_raw(self, rtype: ResourceType, namespace: str | None = None) -> tuple[list[dict[str, Any]], int, str]:
        return Client.list_raw(self, rtype, namespace)  # type: ignore[arg-type]

    def list_versioned(self, rtype: ResourceType, namespace: str | None = None
                       ) -> tuple[list[dict[str, Any]], int, str, str]:
        return Client.list_versioned(self, rtype, namespace)  # type: ignore[arg-type]

    def call(self, method: str, path: str, **kw: Any) -> tuple[int, bytes, dict[str, str]]:
        """What the apiserver answers: a `<Kind>List` of the asked group/version, as application/json."""
        import orjson

        self.calls.append((path, dict(kw.get("query") or {})))
        json_type = {"Content-Type": "application/json"}
        if path in self.refused:
            code = self.refused[path]
            return code, orjson.dumps({"kind": "Status", "message": f"{path} says {code}"}), json_type
        rtype = KNOWN[path]
        items = self.data.get(path, [])
        start = int((kw.get("query") or {}).get("continue") or 0)
        chunk = items[start:start + self.page]
        cont = str(start + self.page) if start + self.page < len(items) else ""
        doc = {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version, "metadata": {"continue": cont},
               "items": [dict(i) for i in chunk]}
        return 200, orjson.dumps(doc), json_type


KNOWN = {t.path: t for t in (*SCAN_TYPES, *RBAC_TYPES, *NETPOL_TYPES)}


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


def test_pages_are_followed_and_items_get_kind() -> None:
    fake = FakeClient({"/api/v1/pods": [_pod(f"p{i}") for i in range(5)]}, {})
    snap = load_cluster(types=[ResourceType("v1", "pods", "Pod")], client=fake)  # type: ignore[arg-type]
    assert [r.name for r in snap.of_kind("Pod")] == ["p0", "p1", "p2", "p3", "p4"]
    assert all(r.api_version == "v1" and r.kind == "Pod" and r.cluster == "fake@ctx" for r in snap.resources)
    assert [q.get("continue", "") for _, q in fake.calls] == ["", "2", "4"]
    assert snap.coverage == (1, 1) and snap.not_assessed == ()


def test_forbidden_and_missing_types_are_not_assessed() -> None:
    fake = FakeClient({}, {"/api/v1/secrets": 403, "/api/v1/nodes": 404, "/apis/apps/v1/deployments": 500})
    snap = load_cluster(types=SCAN_TYPES, client=fake)  # type: ignore[arg-type]
    unknown = {n.what: n.reason for n in snap.not_assessed}
    assert unknown == {"secrets": "HTTP 403: /api/v1/secrets says 403", "nodes": "HTTP 404: /api/v1/nodes says 404",
                       "deployments.apps": "HTTP 500: /apis/apps/v1/deployments says 500"}
    wanted = len({t.path for t in SCAN_TYPES})
    assert snap.coverage == (wanted - 3, wanted)


def test_an_uninstalled_optional_api_is_neither_wanted_nor_unknown_but_forbidden_is() -> None:
    anp = "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies"
    banp = "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies"
    snap = load_cluster(types=NETPOL_TYPES, client=FakeClient({}, {anp: 404, banp: 403}))  # type: ignore[arg-type]
    assert [n.what for n in snap.not_assessed] == ["baselineadminnetworkpolicies.policy.networking.k8s.io"]
    assert snap.coverage == (4, 5)


def test_duplicate_types_are_read_once() -> None:
    fake = FakeClient({}, {})
    snap = load_cluster(types=(*RBAC_TYPES, *RBAC_TYPES), client=fake)  # type: ignore[arg-type]
    assert len(fake.calls) == 4 and snap.coverage == (4, 4)


def _kubeconfig(path: Path) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "a",
           "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
           "users": [{"name": "u", "user": {"token": "t"}}],
           "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}},
                        {"name": "b", "context": {"cluster": "c", "user": "u"}}]}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_client_context_selection_and_errors(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc")
    assert Client(str(kc)).context == "a"
    assert Client(str(kc), "b").context == "b"
    with pytest.raises(ClusterError, match="no context named 'zz'"):
        Client(str(kc), "zz")
    with pytest.raises(ClusterError, match="missing"):
        Client(str(tmp_path / "missing"))


@pytest.mark.parametrize("args", [
    ["scan", "--cluster"],
    ["rbac", "can-i", "get", "pods", "--as", "x", "--cluster"],
    ["pss", "namespaces", "--cluster"],
    ["netpol", "reach", "--cluster"],
])
def test_cli_unreachable_cluster_is_one_line(tmp_path: Path, args: list[str]) -> None:
    kc = _kubeconfig(tmp_path / "kc")  # port 1 on loopback: connection refused at once
    r = CliRunner().invoke(cli, [*args, "--kubeconfig", str(kc)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("kubeward: cluster a: "), r.output
    assert "Traceback" not in r.output


def test_cli_cluster_with_paths_is_a_usage_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["scan", "--cluster", str(tmp_path)])
    assert r.exit_code == 2 and "give no paths" in r.output

_PATHS = sorted({t.path for t in SCAN_TYPES})


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(0, 9), min_size=len(_PATHS), max_size=len(_PATHS)),
       refused=st.dictionaries(st.sampled_from(_PATHS), st.sampled_from([401, 403, 404, 500])),
       page=st.integers(1, 4))
def test_every_item_of_every_readable_type_and_only_those(counts: list[int], refused: dict[str, int],
                                                          page: int) -> None:
    data = {p: [_pod(f"{i}") for i in range(n)] for p, n in zip(_PATHS, counts, strict=True)}
    snap = load_cluster(types=SCAN_TYPES, client=FakeClient(data, refused, page))  # type: ignore[arg-type]
    optional = {t.path for t in SCAN_TYPES if t.optional}
    skipped = {p for p, code in refused.items() if code == 404 and p in optional}
    readable = [p for p in _PATHS if p not in refused]
    assert len(snap) == sum(len(data[p]) for p in readable)
    assert snap.coverage == (len(readable), len(_PATHS) - len(skipped))
    assert len(snap.not_assessed) == len(refused) - len(skipped)
    kinds = {t.path: t.kind for t in SCAN_TYPES}
    assert sorted(r.kind for r in snap.resources) == sorted(kinds[p] for p in readable for _ in data[p])
