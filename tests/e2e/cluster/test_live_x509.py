"""x509 differential proof: what `kubeward authn whoami` predicts for a client certificate is what the real
kube-apiserver's x509 authenticator decides (SelfSubjectReview for accepted certificates, 401 for rejected ones)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml
from cryptography import x509

from kubeward.pki.files import load_cert, load_key, write_cert, write_key
from kubeward.pki.issue import CLIENT_AUTH, LeafSpec, new_key, sign_leaf
from kubeward.sources.cluster import Client

USERS = [("dev-alice", ("dev", "ops")), ("solo", ()), ("ops@example.com", ("team:a", "team b")),
         ("system:node:fake", ("system:nodes",))]


def kw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", *args],
                          capture_output=True, text=True, check=False)


def whoami(crt: Path, ca: Path) -> dict[str, Any]:
    out = kw("authn", "whoami", str(crt), "--ca", str(ca), "-o", "json")
    assert out.returncode in (0, 1), out.stderr
    return orjson.loads(out.stdout)


def kubeconfig(path: Path, server: str, ca: Path, crt: Path, key: Path) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}],
           "users": [{"name": "u", "user": {"client-certificate": str(crt), "client-key": str(key)}}],
           "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    path.write_text(yaml.safe_dump(doc))
    return path


def self_subject_review(kubeconfig_path: Path) -> tuple[int, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return Client(str(kubeconfig_path)).json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=body)


def _leaf(tmp: Path, name: str, ca_crt: Path, ca_key: Path, *, now: dt.datetime | None = None,
          days: int = 30) -> tuple[Path, Path]:
    key = new_key("ecdsa")
    cert: x509.Certificate = sign_leaf(LeafSpec(name, ("dev",), (CLIENT_AUTH,)), key, load_cert(ca_crt),
                                       load_key(ca_key), days=days, now=now)
    crt_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    write_key(key_path, key, force=True)
    write_cert(crt_path, cert, force=True)
    return crt_path, key_path


def test_issued_users_authenticate_as_whoami_predicts(live: Any, tmp_path: Path) -> None:
    ca = live.pki / "ca.crt"
    agreed = 0
    for user, groups in USERS:
        args = ["pki", "issue-user", str(live.pki), user, "--kubeconfig-out", str(tmp_path / f"{len(user)}.kc"),
                "--server", live.server]
        for g in groups:
            args += ["--group", g]
        out = kw(*args)
        assert out.returncode == 0, out.stderr
        crt = sorted((live.pki / "users").glob("*.crt"), key=lambda p: p.stat().st_mtime)[-1]
        predicted = whoami(crt, ca)
        assert predicted["authenticated"] is True
        status, doc = self_subject_review(tmp_path / f"{len(user)}.kc")
        assert status == 201, doc
        info = doc["status"]["userInfo"]
        assert info["username"] == predicted["user"] == user
        assert info["groups"] == predicted["effectiveGroups"], (info, predicted)
        agreed += 1
    print(f"\nx509: {agreed}/{len(USERS)} issued certificates authenticate as whoami predicts")


def test_rejected_certificates_are_rejected_by_both(live: Any, tmp_path: Path) -> None:
    ca = live.pki / "ca.crt"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    cases = {
        "expired": _leaf(tmp_path, "expired-user", ca, live.pki / "ca.key", now=past, days=2),
        "etcd CA": _leaf(tmp_path, "etcd-ca-user", live.pki / "etcd" / "ca.crt", live.pki / "etcd" / "ca.key"),
        "serverAuth only": (live.pki / "apiserver.crt", live.pki / "apiserver.key"),
    }
    for what, (crt, key) in cases.items():
        predicted = whoami(crt, ca)
        assert predicted["authenticated"] is False, (what, predicted)
        status, doc = self_subject_review(kubeconfig(tmp_path / f"{what}.kc", live.server, ca, crt, key))
        assert status == 401, (what, status, doc)
    # And a control: a fresh certificate from the same CA path is accepted by both.
    crt, key = _leaf(tmp_path, "fresh-user", ca, live.pki / "ca.key")
    assert whoami(crt, ca)["authenticated"] is True
    status, doc = self_subject_review(kubeconfig(tmp_path / "fresh.kc", live.server, ca, crt, key))
    assert status == 201 and doc["status"]["userInfo"]["username"] == "fresh-user"
    print(f"\nx509: {len(cases)}/{len(cases)} rejected certificates rejected by the apiserver (401)")


def test_rotated_user_certificate_authenticates_as_before(live: Any, tmp_path: Path) -> None:
    """`pki rotate --cert users/NAME --new-keys` then `pki kubeconfig`: the real apiserver sees the same user and
    groups. The old certificate keeps working until it expires: kube-apiserver checks no revocation."""
    old_kc, new_kc = tmp_path / "old.kc", tmp_path / "new.kc"
    out = kw("pki", "issue-user", str(live.pki), "rotating-user", "--group", "dev", "--group", "ops",
             "--kubeconfig-out", str(old_kc), "--server", live.server)
    assert out.returncode == 0, out.stderr
    out = kw("pki", "rotate", str(live.pki), "--cert", "users/rotating-user", "--new-keys", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert [r["name"] for r in orjson.loads(out.stdout)["renewed"]] == ["users/rotating-user"]
    out = kw("pki", "kubeconfig", str(live.pki), "rotating-user", "--server", live.server, "--out", str(new_kc))
    assert out.returncode == 0, out.stderr
    for kc in (new_kc, old_kc):
        status, doc = self_subject_review(kc)
        assert status == 201, doc
        info = doc["status"]["userInfo"]
        assert info["username"] == "rotating-user"
        assert info["groups"] == ["dev", "ops", "system:authenticated"]
