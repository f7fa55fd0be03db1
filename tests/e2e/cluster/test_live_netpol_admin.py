"""Differential: what the real kube-apiserver, with the network-policy-api v0.1.7 CRDs installed, rejects is
exactly what kubeward reports as an AdminNetworkPolicy / BaselineAdminNetworkPolicy problem (KW-N105).

The CRDs come from the Go module sigs.k8s.io/network-policy-api@v0.1.7 (`go mod download`, the module proxy);
the experimental channel, since kubeward supports its namedPort and nodes fields. Each object is created with
server-side dry-run: nothing is stored.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from livekube import wait_for

from kubeward.engines.netpol import from_snapshot
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

MODULE = "sigs.k8s.io/network-policy-api@v0.1.7"
GROUP = "/apis/policy.networking.k8s.io/v1alpha1"
HERE = Path(__file__).resolve()


def _unit_cases() -> Any:
    path = HERE.parents[2] / "unit" / "test_netpol_admin_validation.py"
    spec = importlib.util.spec_from_file_location("netpol_admin_cases", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = _unit_cases()


@pytest.fixture(scope="module")
def crds(admin: Any) -> Any:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain to fetch the network-policy-api CRDs")
    done = subprocess.run(["go", "mod", "download", "-json", MODULE], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"go mod download {MODULE} failed: {done.stderr[-500:]}")
    root = Path(json.loads(done.stdout)["Dir"]) / "config" / "crd" / "experimental"
    for name in ("adminnetworkpolicies", "baselineadminnetworkpolicies"):
        crd = yaml.safe_load((root / f"policy.networking.k8s.io_{name}.yaml").read_text())
        status, doc = admin.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd)
        assert status in (201, 409), doc

        def established(n: str = name) -> bool:
            status, doc = admin.json("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                            f"{n}.policy.networking.k8s.io")
            conds = ((doc or {}).get("status") or {}).get("conditions") or [] if status == 200 else []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)

        wait_for(f"CRD {name} established", established)
    return admin


def _api_accepts(client: Any, obj: dict[str, Any]) -> tuple[bool, str]:
    plural = "baselineadminnetworkpolicies" if obj.get("kind") == "BaselineAdminNetworkPolicy" \
        else "adminnetworkpolicies"
    status, doc = client.json("POST", f"{GROUP}/{plural}", body=obj, query={"dryRun": "All"})
    if status in (200, 201):
        return True, ""
    assert status in (400, 422), (status, doc)
    return False, (doc or {}).get("message", "") if isinstance(doc, dict) else ""


def _kubeward_accepts(obj: dict[str, Any]) -> tuple[bool, list[str]]:
    policy = from_snapshot(Snapshot([Resource(obj)])).admin[0]
    return not policy.problems, [f"{p}: {m}" for p, m in policy.problems]


def test_the_valid_objects_are_accepted_by_both(crds: Any) -> None:
    for obj in (CASES.ANP, CASES.BANP):
        assert _api_accepts(crds, copy.deepcopy(obj))[0]
        assert _kubeward_accepts(obj) == (True, [])


@pytest.mark.parametrize(("path", "value", "expect"), CASES.ANP_CASES)
def test_every_rejection_kubeward_reports_is_the_apiservers(crds: Any, path: str, value: Any, expect: str) -> None:
    obj = CASES.mutate(CASES.ANP, path, value)
    api_ok, message = _api_accepts(crds, copy.deepcopy(obj))
    ours_ok, problems = _kubeward_accepts(obj)
    assert api_ok == ours_ok, (message, problems)


@pytest.mark.parametrize(("path", "value", "expect"), CASES.INEFFECTIVE_CASES)
def test_what_kubeward_calls_ineffective_the_apiserver_accepts(crds: Any, path: str, value: Any,
                                                               expect: str) -> None:
    obj = CASES.mutate(CASES.ANP, path, value)
    assert _api_accepts(crds, copy.deepcopy(obj))[0]
    assert _kubeward_accepts(obj)[0]


@pytest.mark.parametrize(("path", "value", "expect"), CASES.ACCEPTED_CASES)
def test_what_kubeward_accepts_the_apiserver_accepts(crds: Any, path: str, value: Any, expect: str) -> None:
    obj = CASES.mutate(CASES.ANP, path, value)
    assert _api_accepts(crds, copy.deepcopy(obj))[0]
    assert _kubeward_accepts(obj) == (True, [])


@pytest.mark.parametrize(("path", "value", "expect"), CASES.BANP_CASES)
def test_baseline_rejections_agree(crds: Any, path: str, value: Any, expect: str) -> None:
    obj = CASES.mutate(CASES.BANP, path, value)
    assert _api_accepts(crds, copy.deepcopy(obj))[0] == _kubeward_accepts(obj)[0]


json_leaf = (st.none() | st.booleans() | st.integers(-3, 70000) | st.integers(0, 70000).map(float)
             | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: math.isfinite(f))
             | st.sampled_from(["", "TCP", "UDP", "Allow", "Deny", "Pass", "10.0.0.0/8", "10.0.0.1", "::/0", "http",
                                "In", "x" * 101]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(["namespaces", "pods", "networks", "nodes", "port",
                                                              "protocol", "start", "end", "matchLabels",
                                                              "namespaceSelector", "podSelector", "zz"]),
                                            inner, max_size=3), max_leaves=8)


# Fragments that are valid somewhere in the schema, so that many mutations stay acceptable and the two answers are
# compared on both sides of the line.
plausible = st.sampled_from([
    {}, {"matchLabels": {"app": "a"}}, {"namespaces": {}}, {"pods": {"namespaceSelector": {}, "podSelector": {}}},
    {"networks": ["10.0.0.0/8"]}, {"nodes": {}}, {"portNumber": {"port": 80}}, {"portRange": {"start": 1, "end": 2}},
    {"namedPort": "http"}, [{"namespaces": {}}], [{"portNumber": {"protocol": "UDP", "port": 53}}], 0, 80, 1000,
    "Allow", "Deny", "Pass", "TCP", "SCTP", "rule", {"unknownField": 1}, None,
])
json_value = plausible | json_value


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from([CASES.ANP, CASES.BANP])))
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, at: tuple[Any, ...]) -> None:
        paths.append(at)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*at, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*at, i))

    walk(obj["spec"], ("spec",))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "delete", "add-unknown"]))
        node: Any = obj
        try:
            for step in path[:-1]:
                node = node[step]
            if how == "delete" and isinstance(node, dict):
                del node[path[-1]]  # optional fields stay acceptable, required ones do not
            elif how == "add-unknown" and isinstance(node[path[-1]], dict):
                node[path[-1]]["unknownField"] = 1  # pruned by the apiserver, ignored by kubeward
            else:
                node[path[-1]] = copy.deepcopy(draw(json_value))  # never a shared fragment
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    return obj


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(mutated())
def test_random_mutations_agree_with_the_apiserver(crds: Any, obj: dict[str, Any]) -> None:
    api_ok, message = _api_accepts(crds, copy.deepcopy(obj))
    ours_ok, problems = _kubeward_accepts(obj)
    event(f"apiserver {'accepts' if api_ok else 'rejects'}")
    assert api_ok == ours_ok, (obj, message, problems)
