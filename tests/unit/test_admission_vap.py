"""`admission vap`: which controls are exported, how modes become validationActions, exemptions, and the CLI.

The CEL semantics themselves are proved against the real kube-apiserver (tests/e2e/cluster/test_live_vap.py).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from kubeward.admission.config import AdmissionConfig, Policy
from kubeward.admission.vap import RULES, SHAPES, cel_string, export
from kubeward.cli.main import cli
from kubeward.controls.registry import all_controls
from kubeward.findings import Severity
from kubeward.resource import POD_SPEC_PATHS

PRIV = "KW-W001"  # privileged: the PSS check merged into the workload control
NONROOT = "KW-W020"


def test_every_rule_names_a_registered_pod_control() -> None:
    registry = all_controls()
    for cid in RULES:
        assert cid in registry and registry[cid].shape == "pod"


def test_every_rule_restates_part_of_the_check_its_control_reports() -> None:
    from kubeward.controls.pss import REPORTED_BY

    for cid, rule in RULES.items():
        assert rule.control == cid and cid in REPORTED_BY[rule.check], (cid, rule.check)
    # the capabilities split: each added capability is one control's, so each is one rule's
    assert {"KW-W010", "KW-W011", "KW-W017", "KW-W026", "KW-W027", "KW-PSS-procMount_restricted"} <= set(RULES)


def test_shapes_cover_every_pod_carrying_kind() -> None:
    plural = {"Pod": "pods", "Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
              "DaemonSet": "daemonsets", "Job": "jobs", "CronJob": "cronjobs",
              "ReplicationController": "replicationcontrollers", "PodTemplate": "podtemplates"}
    matched = {r for _, rules in SHAPES.values() for rule in rules for r in rule["resources"]}
    assert matched == {plural[k] for k in POD_SPEC_PATHS}
    for kind, path in POD_SPEC_PATHS.items():  # the CEL path is the template path of resource.py
        shape = next(s for s, (_, rules) in SHAPES.items() if any(plural[kind] in r["resources"] for r in rules))
        assert SHAPES[shape][0] == ".".join(("object", *path, "spec"))


def test_default_export_modes() -> None:
    out = export()
    assert {c.meta.id for c in out.exported} == set(RULES)
    assert out.not_expressed and PRIV not in {c.meta.id for c in out.not_expressed}
    bindings = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicyBinding"}
    policies = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicy"}
    assert set(bindings) == set(policies) and len(policies) == 2 * len(SHAPES)
    for name, b in bindings.items():
        assert b["spec"]["policyName"] == name
        ids = policies[name]["metadata"]["annotations"]["kubeward.io/controls"].split(",")
        sev = [all_controls()[i].meta.severity for i in ids]
        if b["spec"]["validationActions"] == ["Deny", "Audit"]:
            assert all(s >= Severity.HIGH for s in sev)
        else:
            assert b["spec"]["validationActions"] == ["Warn", "Audit"] and all(s < Severity.HIGH for s in sev)
    deny = policies["kubeward-pods-deny-audit"]
    assert PRIV in deny["metadata"]["annotations"]["kubeward.io/controls"]
    assert NONROOT in policies["kubeward-pods-warn-audit"]["metadata"]["annotations"]["kubeward.io/controls"]
    assert deny["spec"]["variables"] == [{"name": "spec", "expression": "object.spec"}]
    for v in deny["spec"]["validations"]:  # every container list, as the engine visits them
        for lst in ("initContainers", "containers", "ephemeralContainers"):
            if "c.securityContext" in v["expression"]:
                assert f"variables.spec.{lst}" in v["expression"]


def test_modes_and_exemptions_from_config() -> None:
    cfg = AdmissionConfig(defaults=Policy(enforce=Severity.CRITICAL, warn=None, audit=None),
                          exempt_namespaces=frozenset({"legacy"}), exempt_usernames=frozenset({"ci"}),
                          exempt_groups=frozenset({"system:nodes"}), include=(PRIV, NONROOT))
    out = export(cfg)
    assert [c.meta.id for c in out.unmoded] == [NONROOT]  # medium: below enforce, warn and audit are off
    binding = next(o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"] == ["legacy"]
    policy = next(o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicy")
    conds = " ".join(c["expression"] for c in policy["spec"]["matchConditions"])
    assert '"ci"' in conds and '"system:nodes"' in conds


def test_cel_string_escapes() -> None:
    assert cel_string('a"b\\c\n') == '"a\\"b\\\\c\\x0a"'


def test_cli_lists_what_it_cannot_express(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["admission", "vap", "--controls", f"{PRIV},KW-W042"])
    assert res.exit_code == 0, res.output
    assert "not expressed in CEL (enforce them with `admission serve`): KW-W042" in res.stderr
    docs = list(yaml.safe_load_all(res.stdout))
    assert {d["kind"] for d in docs} == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert res.stdout.startswith("# kubeward admission vap: 1 control(s) exported: KW-W001\n"
                                 "# not expressed in CEL (1): KW-W042")


def test_cli_nothing_exportable_and_unknown_id() -> None:
    res = CliRunner().invoke(cli, ["admission", "vap", "--controls", "KW-W042"])
    assert res.exit_code == 2
    res = CliRunner().invoke(cli, ["admission", "vap", "--controls", "KW-NOPE"])
    assert res.exit_code == 2 and "Traceback" not in res.output
