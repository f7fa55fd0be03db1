"""`kubeward admission test`: offline decisions with exit codes, and `admission serve` as a process."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
from admission_certs import webhook_pki
from click.testing import CliRunner

from kubeward.cli.main import cli

PODS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: relaxed
  labels: {kubeward.io/enforce: none}
---
apiVersion: v1
kind: Pod
metadata: {name: priv, namespace: team}
spec:
  containers:
  - name: c
    image: nginx:1.27
    securityContext: {privileged: true}
---
apiVersion: v1
kind: Pod
metadata: {name: priv, namespace: relaxed}
spec:
  containers:
  - name: c
    image: nginx:1.27
    securityContext: {privileged: true}
"""


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_test_denies_with_exit_1_and_reads_namespace_labels_from_the_input(tmp_path: Path) -> None:
    f = tmp_path / "pods.yaml"
    f.write_text(PODS)
    code, out, _ = run("admission", "test", str(f))
    assert code == 1
    assert re.search(r"^DENIED\s+Pod/team/priv\s+\(.*pods\.yaml:7\)", out, re.M)
    assert re.search(r"^WARNED\s+Pod/relaxed/priv", out, re.M)  # enforce=none from the Namespace in the input
    assert "deny  KW-W001 (critical)" in out and "3 object(s): 1 denied, 2 warned" in out


def test_test_json_holds_the_webhook_response(tmp_path: Path) -> None:
    f = tmp_path / "pods.yaml"
    f.write_text(PODS)
    code, out, _ = run("admission", "test", str(f), "-o", "json")
    doc = orjson.loads(out)
    assert code == 1 and doc["schemaVersion"] == "1"
    denied = [d for d in doc["decisions"] if not d["allowed"]]
    assert len(denied) == 1 and denied[0]["location"]["line"] == 7
    assert denied[0]["response"]["status"]["code"] == 403
    # one finding per problem: KW-W001 carries the PSS levels (KW-PSS-privileged is its alias)
    assert {f["control"]["id"] for f in denied[0]["denied"]} == {"KW-W001"}
    assert denied[0]["denied"][0]["location"]["line"] == 14  # the finding points at the privileged line


def test_test_exemption_config_and_exit_0(tmp_path: Path) -> None:
    f = tmp_path / "pods.yaml"
    f.write_text(PODS)
    cfg = tmp_path / "admission.yaml"
    cfg.write_text("exemptions: {namespaces: [team]}\n")
    code, out, _ = run("admission", "test", str(f), "--config", str(cfg))
    assert code == 0 and re.search(r"^EXEMPT\s+Pod/team/priv", out, re.M)
    code, out, _ = run("admission", "test", str(f), "--as", "ci", "-o", "junit")
    assert code == 1 and out.startswith("<?xml")


def test_test_bad_inputs_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "admission.yaml"
    cfg.write_text("defaults: {enforce: hgh}\n")
    pod = tmp_path / "p.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n")
    code, _, err = run("admission", "test", str(pod), "--config", str(cfg))
    assert code == 2 and "defaults.enforce" in err and "Traceback" not in err
    code, _, err = run("admission", "test", str(tmp_path / "missing.yaml"))
    assert code == 2 and err.startswith("kubeward: ")
    bad = tmp_path / "review.yaml"
    bad.write_text("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n")
    code, _, err = run("admission", "test", str(bad), str(pod))
    assert code == 2 and "no request" in err


def test_serve_process_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    ca, crt, key = webhook_pki(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", "admission", "serve", "--port", "0",
                             "--tls-cert", str(crt), "--tls-key", str(key)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()
        m = re.search(r"https://127\.0\.0\.1:(\d+)/validate", first)  # loopback by default
        assert m, first
        ctx = ssl.create_default_context(cafile=str(ca))
        body = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "z", "operation": "CREATE", "namespace": "a", "object": orjson.loads(orjson.dumps({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
                "spec": {"hostPID": True, "containers": [{"name": "c", "image": "x:1"}]}}))}})
        req = urllib.request.Request(f"https://127.0.0.1:{m.group(1)}/validate", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            resp = orjson.loads(r.read())["response"]
        assert resp["allowed"] is False and "hostPID" in resp["status"]["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    err = proc.stderr.read().decode()
    assert rc == 0 and "Traceback" not in err and "1 reviews (denied 1)" in err, err


def test_serve_names_an_unloadable_client_ca_or_key_and_exits_2(tmp_path: Path) -> None:
    """admission serve and audit serve load their TLS files through one helper: the file at fault is named."""
    ca, crt, key = webhook_pki(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for group in ("admission", "audit"):
        code, _, err = run(group, "serve", "--port", "0", "--tls-cert", str(crt), "--tls-key", str(key),
                           "--client-ca", str(junk))
        assert code == 2 and f"{junk}: cannot load the client CA (--client-ca)" in err and "Traceback" not in err
        code, _, err = run(group, "serve", "--port", "0", "--tls-cert", str(crt), "--tls-key", str(junk),
                           "--client-ca", str(ca))
        assert code == 2 and f"{crt}: cannot load the TLS certificate/key" in err and "Traceback" not in err
