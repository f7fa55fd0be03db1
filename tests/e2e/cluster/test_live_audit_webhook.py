"""The real kube-apiserver's audit webhook backend delivering to `kubeward audit serve` with its safe defaults:
loopback, client certificates required (the apiserver presents the client certificate of its webhook kubeconfig).
This is what proves the server's stricter HTTP handling (Content-Length only, one write per response, deadlines)
against the apiserver's own client."""

from __future__ import annotations

import importlib.util
import re
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml
from livekube import create, namespace, wait_for

HERE = Path(__file__).resolve().parent


def _certs() -> Any:
    spec = importlib.util.spec_from_file_location("kubeward_e2e_serve_certs", HERE.parent / "test_audit_serve.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_real_apiserver_batches_reach_serve_over_mtls(live: Any, admin: Any, tmp_path: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    certs = _certs()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit-webhook-ca")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    srv_crt, srv_key = certs._issue(ca_key, ca_name, "kubeward-audit", tmp_path, server=True)
    cli_crt, cli_key = certs._issue(ca_key, ca_name, "kube-apiserver", tmp_path, server=False)

    alerts = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen(  # no --host: loopback by default; --client-ca: the safe default
        [sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--port", "0", "--tls-cert", str(srv_crt),
         "--tls-key", str(srv_key), "--client-ca", str(ca_file), "--alert-format", "none",
         "--alert-file", str(alerts)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    err: list[bytes] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    m = re.search(r"https://127\.0\.0\.1:(\d+)", first)
    assert m, first
    url = f"https://127.0.0.1:{m.group(1)}"
    kc = tmp_path / "audit-webhook.kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubeward", "cluster": {"server": f"{url}/audit", "certificate-authority": str(ca_file)}}],
        "users": [{"name": "kube-apiserver", "user": {"client-certificate": str(cli_crt),
                                                      "client-key": str(cli_key)}}],
        "contexts": [{"name": "default", "context": {"cluster": "kubeward", "user": "kube-apiserver"}}],
        "current-context": "default"}))

    plain_start = live._start

    def with_webhook(component: str, argv: list[str]) -> None:
        if component == "kube-apiserver":
            argv = [*argv, "--audit-webhook-config-file", str(kc), "--audit-webhook-batch-max-wait", "1s"]
        plain_start(component, argv)

    live._start = with_webhook
    try:
        live.restart_apiserver()
        rid = uuid.uuid4().hex[:8]
        ns = f"webhook-{rid}"
        namespace(admin, ns)
        create(admin, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
                       "stringData": {"k": "v"}})
        status, _, hdrs = admin.call("GET", f"/api/v1/namespaces/{ns}/secrets/db")
        assert status == 200
        audit_id = {k.lower(): v for k, v in hdrs.items()}["audit-id"]

        def delivered() -> bool:
            got = [orjson.loads(x) for x in alerts.read_bytes().splitlines()] if alerts.exists() else []
            return any(a.get("auditID") == audit_id and a.get("rule") == "secret-read" for a in got)

        wait_for("the secret read to arrive through the apiserver's webhook", delivered, timeout=60)
        ctx = ssl.create_default_context(cafile=str(ca_file))
        ctx.load_cert_chain(str(cli_crt), str(cli_key))
        with urllib.request.urlopen(f"{url}/healthz", context=ctx, timeout=10) as r:
            health = orjson.loads(r.read())
        assert r.status == 200 and health["status"] == "ok" and health["batches"] >= 1
        assert health["badEvents"] == 0  # every event the apiserver sent was usable
    finally:
        del live._start  # back to the class's method
        live.restart_apiserver()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    text = b"".join(err).decode()
    assert rc == 0 and "Traceback" not in text, text
    assert "unusable" not in text and "429" not in text, text
