"""`admission vap`: which controls are exported, how modes become validationActions, exemptions, and the CLI.

The CEL semantics themselves are proved against the real kube-apiserver (tests/e2e/cluster/test_live_vap.py).
"""

from __future__ import annotations

import re
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
    # every control a PSS check is reported by has its rule: none of them is left "not expressed"
    assert {cid for ids in REPORTED_BY.values() for cid in ids} <= set(RULES)
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
    assert not out.dormant  # warn and audit at info: every control acts somewhere by default
    bindings = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicyBinding"}
    policies = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicy"}
    assert set(bindings) == set(policies) and len(policies) == 3 * len(SHAPES)
    for name, b in bindings.items():
        assert b["spec"]["policyName"] == name
        action = {"deny": "Deny", "warn": "Warn", "audit": "Audit"}[name.rsplit("-", 1)[1]]
        assert b["spec"]["validationActions"] == [action]
        ids = policies[name]["metadata"]["annotations"]["kubeward.io/controls"].split(",")
        assert set(ids) == set(RULES)
    deny = policies["kubeward-pods-deny"]
    assert [v["name"] for v in deny["spec"]["variables"]] == ["spec", "annotations", "labels", "threshold"]
    assert deny["spec"]["variables"][0]["expression"] == "object.spec"
    assert deny["spec"]["variables"][3]["expression"].endswith(": 3")  # the default enforce threshold: high
    for v in deny["spec"]["validations"]:  # every container list, as the engine visits them
        for lst in ("initContainers", "containers", "ephemeralContainers"):
            if re.search(r"\bc\.securityContext", v["expression"]):
                assert f"variables.spec.{lst}" in v["expression"]
    sev = {v["messageExpression"].split(" ")[1]: v["expression"].split(" ")[2] for v in deny["spec"]["validations"]}
    assert sev[PRIV] == "4" and sev[NONROOT] == "2"  # `variables.threshold > <severity> || …`


def test_split_checks_are_one_rule_per_control() -> None:
    """hostNamespaces is KW-W002/3/4 and capabilities_restricted KW-W018/W056: each control its own half."""
    assert RULES["KW-W002"].ok.count("hostPID") == 2 and "hostIPC" not in RULES["KW-W002"].ok
    assert RULES["KW-W004"].ok.count("hostNetwork") == 2 and "hostPID" not in RULES["KW-W004"].ok
    assert "'ALL' in" in RULES["KW-W018"].ok and "NET_BIND_SERVICE" not in RULES["KW-W018"].ok
    assert "NET_BIND_SERVICE" in RULES["KW-W056"].ok and "'ALL'" not in RULES["KW-W056"].ok
    assert "'NET_BIND_SERVICE'" in RULES["KW-W056"].ok and '"CHOWN"' in RULES["KW-W056"].ok  # the default set
    for cid in ("KW-W027", "KW-W028", "KW-W029", "KW-W031", "KW-W033", "KW-W035", "KW-W055"):
        assert cid in RULES
    assert "KW-PSS-restrictedVolumes" not in RULES  # an alias of KW-W006/W035/W055 now
    # restrictedVolumes split by type: KW-W055 leaves hostPath and gitRepo to KW-W006 and KW-W035
    assert "has(v.hostPath) || has(v.gitRepo)" in RULES["KW-W055"].ok
    assert "has(v.gitRepo) && !has(v.hostPath)" in RULES["KW-W035"].ok


def test_capability_names_fold_as_the_controls_do() -> None:
    """The CEL upper-cases with upperAscii after replacing every non-ASCII letter Python's str.upper (the controls'
    _norm_cap) turns into ASCII, so a name like "\u017fys_admin" is KW-W011's on both sides."""
    from kubeward.admission.vap import _UPPER_TO_ASCII

    folding = {chr(i) for i in range(0x80, 0x110000) if chr(i).upper().isascii() and chr(i).upper() != chr(i)}
    assert folding == set(_UPPER_TO_ASCII)
    assert "\u017f" in RULES["KW-W011"].ok and '"CAP_SYS_ADMIN"' in RULES["KW-W011"].ok


def test_modes_and_exemptions_from_config() -> None:
    cfg = AdmissionConfig(defaults=Policy(enforce=Severity.CRITICAL, warn=None, audit=None),
                          exempt_namespaces=frozenset({"legacy"}), exempt_usernames=frozenset({"ci"}),
                          exempt_groups=frozenset({"system:nodes"}), include=(PRIV, NONROOT))
    out = export(cfg)
    assert [c.meta.id for c in out.dormant] == [NONROOT]  # medium: below enforce, warn and audit are off
    binding = next(o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"] == ["legacy"]
    policy = next(o for o in out.objects if o["kind"] == "ValidatingAdmissionPolicy")
    conds = " ".join(c["expression"] for c in policy["spec"]["matchConditions"])
    assert '"ci"' in conds and '"system:nodes"' in conds
    thresholds = {o["metadata"]["name"]: o["spec"]["variables"][3]["expression"] for o in out.objects
                  if o["kind"] == "ValidatingAdmissionPolicy"}
    assert thresholds["kubeward-pods-deny"].endswith(": 4")  # critical
    assert thresholds["kubeward-pods-warn"].endswith(": 5") and thresholds["kubeward-pods-audit"].endswith(": 5")
    # an unparsable label: enforce fails closed (info, 0), warn and audit open (off, 5)
    assert ": 0) : 4" in thresholds["kubeward-pods-deny"] and ": 5) : 5" in thresholds["kubeward-pods-warn"]


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
