"""What each generated audit policy lets the detections see (audit/coverage.py, the exact policy engine)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.audit.coverage import NEEDS, blinded
from kubeward.audit.detections import Settings, builtin
from kubeward.audit.policygen import PROFILES, policy_document
from kubeward.engines.auditpolicy import parse_policy

ALL = builtin(Settings(disallowed_users=frozenset({"x"}), disallowed_namespaces=frozenset({"y"})))
# What `minimal` gives up by design: reads other than secrets, exec and anonymous ones; kubelet SAR bodies.
MINIMAL_BLIND = {"impersonation", "kubelet-api-access", "disallowed-user", "forbidden-burst", "unexpected-source"}
EXPECTED = {"minimal": MINIMAL_BLIND, "recommended": set(), "forensic": set()}


def test_every_detection_states_what_it_needs() -> None:
    assert set(NEEDS) == {d.id for d in ALL} | {"forbidden-burst", "unexpected-source"}


def test_needs_are_requests_the_detection_dispatches_on() -> None:
    for d in ALL:
        for n in NEEDS[d.id]:
            a = n.attrs
            assert d.verbs is None or a.verb in d.verbs, (d.id, a)
            assert d.resources is None or a.resource in d.resources, (d.id, a)
            assert d.subresources is None or a.subresource in d.subresources, (d.id, a)
            assert n.stages & d.stages, d.id


@pytest.mark.parametrize("profile", PROFILES)
def test_generated_profiles_let_the_detections_see(profile: str) -> None:
    assert {b.detection for b in blinded(parse_policy(policy_document(profile)))} == EXPECTED[profile]


def test_configmaps_at_metadata_and_dropped_event_deletes_are_blinding() -> None:
    old = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets", "configmaps"]}]},
        {"level": "Request"}]}
    found = {b.detection: b for b in blinded(parse_policy(old))}
    assert set(found) == {"configmap-credentials", "events-deleted"}
    assert found["configmap-credentials"].rule == 1 and "needs Request" in found["configmap-credentials"].why


def test_omitted_stages_blind_exec() -> None:
    p = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["ResponseStarted", "ResponseComplete"],
         "rules": [{"level": "RequestResponse"}]}
    assert {b.detection for b in blinded(parse_policy(p))} == set(NEEDS)


def test_cli_for_detections(tmp_path: Path) -> None:
    from kubeward.cli.main import cli

    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(policy_document("minimal")))
    r = CliRunner().invoke(cli, ["audit", "policy", "check", "--for-detections", "-o", "json", str(f)])
    found = [x for x in orjson.loads(r.stdout)["findings"] if x["control"]["id"] == "AUDIT-POL-008"]
    assert {x["message"].split()[1] for x in found} == MINIMAL_BLIND
    r = CliRunner().invoke(cli, ["audit", "policy", "check", "-o", "json", str(f)])
    assert orjson.loads(r.stdout)["findings"] == []  # only on request


def test_docs_table_states_each_detection_and_the_level_it_needs() -> None:
    import re

    doc = (Path(__file__).parents[2] / "docs/audit.md").read_text()
    table = doc.split("### Built-in detections", 1)[1].split("\n\n", 2)[1]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for rid in re.findall(r"`([a-z-]+)`", cells[0]):
            rows[rid] = cells[-1]
    assert set(rows) == set(NEEDS)
    rank = {"Metadata": 1, "Request": 2}
    for rid, needs in NEEDS.items():
        top = max((n.level for n in needs), key=rank.__getitem__)
        assert rows[rid].split()[0] == top, rid
