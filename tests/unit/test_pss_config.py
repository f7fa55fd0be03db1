"""PSA configuration files: defaults for unlabelled namespaces and exemptions (admission/api, v1 defaults)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.engines.pss import LATEST, Level, Version
from kubeward.engines.pss.config import ConfigError, load_config, parse_config
from kubeward.engines.pss.namespaces import LevelVersion

PSC = """\
apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  enforce: baseline
  enforce-version: v1.29
  warn: restricted
exemptions:
  namespaces: [kube-system]
  runtimeClasses: [kata]
  usernames: [system:serviceaccount:ci:deployer]
"""


def test_pod_security_configuration_defaults_and_exemptions(tmp_path: Path) -> None:
    f = tmp_path / "psa.yaml"
    f.write_text(PSC)
    cfg = load_config(f)
    assert cfg.defaults.enforce == LevelVersion(Level.BASELINE, Version(29))
    assert cfg.defaults.warn == LevelVersion(Level.RESTRICTED, LATEST)
    assert cfg.defaults.audit == LevelVersion(Level.PRIVILEGED, LATEST)  # empty → privileged, latest
    assert cfg.exempt_namespaces == {"kube-system"} and cfg.exempt_runtime_classes == {"kata"}


def test_admission_configuration_inline_and_by_path(tmp_path: Path) -> None:
    (tmp_path / "psa.yaml").write_text(PSC)
    by_path = tmp_path / "admission.yaml"
    by_path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
                       "- name: PodSecurity\n  path: psa.yaml\n")
    assert load_config(by_path).exempt_namespaces == {"kube-system"}
    inline = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
              "plugins": [{"name": "Other"}, {"name": "PodSecurity", "configuration": {
                  "apiVersion": "pod-security.admission.config.k8s.io/v1beta1", "kind": "PodSecurityConfiguration",
                  "defaults": {"audit": "restricted"}}}]}
    assert parse_config(inline).defaults.audit.level is Level.RESTRICTED


@pytest.mark.parametrize(("doc", "needle"), [
    ({"kind": "PodSecurityConfiguration", "apiVersion": "pod-security.admission.config.k8s.io/v1",
      "defaults": {"enforce": "strict"}}, "defaults.enforce: invalid level 'strict'"),
    ({"kind": "PodSecurityConfiguration", "apiVersion": "pod-security.admission.config.k8s.io/v1",
      "defaults": {"warn-version": "1.2"}}, "defaults.warn: invalid version"),
    ({"kind": "PodSecurityConfiguration", "apiVersion": "v1"}, "unsupported kind/apiVersion"),
    ({"kind": "AdmissionConfiguration", "plugins": []}, "no PodSecurity plugin"),
    ({"kind": "PodSecurityConfiguration", "apiVersion": "pod-security.admission.config.k8s.io/v1",
      "exemptions": {"namespaces": "kube-system"}}, "exemptions.namespaces"),
    ([1], "not a PodSecurityConfiguration"),
])
def test_invalid_configs_are_refused(doc: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        parse_config(doc)


def test_self_referencing_path_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "loop.yaml"
    f.write_text("kind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: loop.yaml\n")
    with pytest.raises(ConfigError, match="must name a PodSecurityConfiguration"):
        load_config(f)


def test_cli_uses_config_defaults_and_reports_bad_config(tmp_path: Path) -> None:
    (tmp_path / "psa.yaml").write_text(PSC)
    pods = tmp_path / "pods.yaml"
    pods.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: apps}\n"
                    "spec: {hostPID: true, containers: [{name: c}]}\n---\n"
                    "apiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: kube-system}\n"
                    "spec: {hostPID: true, containers: [{name: c}]}\n")
    result = CliRunner().invoke(cli, ["pss", "namespaces", str(pods), "--config", str(tmp_path / "psa.yaml"),
                                      "-o", "json"])
    assert result.exit_code == 1, result.output
    doc = {n["name"]: n for n in json.loads(result.stdout)["namespaces"]}
    assert doc["apps"]["enforce"] == {"level": "baseline", "version": "v1.29"}
    assert doc["apps"]["summary"]["rejected"] == 1
    assert doc["kube-system"]["exempt"] is True and doc["kube-system"]["summary"]["rejected"] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    result = CliRunner().invoke(cli, ["pss", "namespaces", str(pods), "--config", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"kubeward: {bad}: invalid YAML at line 2")
