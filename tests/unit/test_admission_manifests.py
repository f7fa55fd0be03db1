"""`admission manifests`: the in-cluster webhook passes kubeward's own scan and exempts what it must."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml
from click.testing import CliRunner
from cryptography import x509

from kubeward.admission.manifests import manifests
from kubeward.cli.main import cli
from kubeward.controls.registry import all_controls, run
from kubeward.exceptions import load_exceptions
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

DIGEST = "ghcr.io/kubeward/kubeward@sha256:" + "0" * 64


def scan(objs: list[dict]) -> list[str]:
    snap = Snapshot([Resource(o) for o in objs])
    report = run(snap, list(all_controls().values()), load_exceptions(None, cwd=Path("/nonexistent")))
    return [f"{f.control.id} {f.object}" for f in report.findings]


def test_manifests_pass_kubewards_own_scan() -> None:
    assert scan(manifests(image=DIGEST, ca_bundle=b"x")) == []
    # a tag instead of a digest is the one (low) finding left, and the pull policy follows it
    assert [f.split()[0] for f in scan(manifests(ca_bundle=b"x"))] == ["KW-W042"]


def test_webhook_configuration_exempts_kube_system_and_itself() -> None:
    objs = manifests("sec", fail_policy="Ignore", timeout=5, ca_bundle=b"CA")
    by_kind = {o["kind"]: o for o in objs}
    hook = by_kind["ValidatingWebhookConfiguration"]["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 5 and hook["sideEffects"] == "None"
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "sec"]
    assert hook["objectSelector"]["matchExpressions"][0] == {"key": "app.kubernetes.io/part-of",
                                                             "operator": "NotIn", "values": ["kubeward"]}
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == b"CA"
    dep = by_kind["Deployment"]
    assert dep["spec"]["replicas"] == 2 and by_kind["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert by_kind["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert by_kind["ClusterRole"]["rules"] == [{"apiGroups": [""], "resources": ["namespaces"],
                                                "verbs": ["get", "list", "watch"]}]
    assert "sec" in by_kind["ConfigMap"]["data"]["admission.yaml"]
    assert all(o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "kubeward" for o in objs)


def test_cli_generates_the_certificate_and_prints_no_secret(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["admission", "manifests", "--namespace", "sec", "--tls-dir", str(tmp_path / "t")])
    assert r.exit_code == 0, r.stderr
    assert "PRIVATE KEY" not in r.stdout and "kind: Secret" not in r.stdout
    docs = list(yaml.safe_load_all(r.stdout))
    hook = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")["webhooks"][0]
    ca = x509.load_pem_x509_certificate(base64.b64decode(hook["clientConfig"]["caBundle"]))
    leaf = x509.load_pem_x509_certificate((tmp_path / "t" / "tls.crt").read_bytes())
    assert leaf.issuer == ca.subject
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "kubeward-admission.sec.svc" in sans
    assert (tmp_path / "t" / "tls.key").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(cli, ["admission", "manifests", "--tls-dir", str(tmp_path / "t")])
    assert again.exit_code == 2 and "Traceback" not in again.stderr  # never overwritten without --force


def test_cli_wants_exactly_one_certificate_source(tmp_path: Path) -> None:
    for args in ([], ["--cert-manager", "--tls-dir", str(tmp_path)]):
        r = CliRunner().invoke(cli, ["admission", "manifests", *args])
        assert r.exit_code == 2 and "one of --tls-dir" in r.stderr
    r = CliRunner().invoke(cli, ["admission", "manifests", "--cert-manager"])
    assert r.exit_code == 0 and "kind: Certificate" in r.stdout and "inject-ca-from: kubeward/" in r.stdout


def test_client_ca_wires_mutual_tls_and_still_passes_the_scan(tmp_path: Path) -> None:
    """--client-ca: the serve args, the mounted CA (a ConfigMap: a CA certificate is public), TCP probes (the
    kubelet has no client certificate for the handshake); a file holding a key as well puts only the certificate
    in the ConfigMap; and the output still passes kubeward's own scan."""
    r = CliRunner().invoke(cli, ["admission", "manifests", "--tls-dir", str(tmp_path / "t")])
    assert r.exit_code == 0, r.stderr
    ca = (tmp_path / "t" / "ca.crt").read_bytes()
    combined = tmp_path / "client-ca.pem"
    combined.write_bytes(ca + (tmp_path / "t" / "tls.key").read_bytes())
    r = CliRunner().invoke(cli, ["admission", "manifests", "--cert-manager", "--client-ca", str(combined)])
    assert r.exit_code == 0, r.stderr
    assert "PRIVATE KEY" not in r.stdout and "client certificate" in r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-client-ca"))
    assert x509.load_pem_x509_certificate(cm["data"]["ca.crt"].encode()).subject == \
        x509.load_pem_x509_certificate(ca).subject
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"][-2:] == ["--client-ca", "/client-ca/ca.crt"]
    assert c["readinessProbe"]["tcpSocket"] == {"port": "https"} and "httpGet" not in c["livenessProbe"]
    assert {"name": "client-ca", "configMap": {"name": cm["metadata"]["name"]}} in pod["volumes"]
    assert any(m["mountPath"] == "/client-ca" for m in c["volumeMounts"])
    assert scan(manifests(image=DIGEST, ca_bundle=b"x", client_ca=ca)) == []
    bad = tmp_path / "not-a-ca"
    bad.write_text("hello\n")
    r = CliRunner().invoke(cli, ["admission", "manifests", "--cert-manager", "--client-ca", str(bad)])
    assert r.exit_code == 2 and "no PEM certificate found (--client-ca)" in r.stderr
    assert r.stderr.count(str(bad)) == 1 and len(r.stderr.splitlines()) == 1
