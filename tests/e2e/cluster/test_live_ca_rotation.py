"""`pki rotate-ca` on a cluster of its own, one step per run, the run killed right after each of its three restarts
(effect done, not recorded) and resumed. At every step: a client certificate of the old CA authenticates until
retire and gets 401 after it; one of the new CA authenticates from trust on (401 before); a client trusting the
bundle connects at every step, one trusting only the new CA from reissue on; kube-root-ca.crt follows."""

from __future__ import annotations

import base64
import os
import signal
import ssl
from pathlib import Path
from typing import Any

import orjson
import yaml
from cryptography import x509

from conftest import HARNESS, RESTART_SCRIPT, run_rotation
from kubeward.creds.sakeys import flag_values
from kubeward.pki.carotate import issued_by, who_am_i
from kubeward.pki.files import cert_pem, key_pem, load_cert, load_key
from kubeward.pki.issue import CLIENT_AUTH, LeafSpec, new_key, sign_leaf
from kubeward.pki.users import issue_user
from kubeward.sources.cluster import Client

# Restarts: trust (1, killed), trust again (2), reissue (3, killed), reissue again (4), retire (5, killed), retire (6).
KILL_AFTER_RESTARTS = "1,3,5"


def _state(c: Any) -> dict[str, str]:
    return dict(orjson.loads((c.node_root / "etc/kubernetes/ca-rotation.json").read_bytes()))


def _host(c: Any, path: str) -> Path:
    return Path(c.node_root) / path.lstrip("/")


class Probe:
    """A client certificate and key (PEM) and who the apiserver says it is, trusting a given CA file."""

    def __init__(self, c: Any, cert: bytes, key: bytes, user: str) -> None:
        self.c, self.cert, self.key, self.user = c, cert, key, user

    def who(self, trust: Path) -> str:
        """The user name, 'rejected' (401) or 'tls' (the server's certificate does not verify with `trust`)."""
        try:
            got = who_am_i(self.c.server, trust.read_bytes(), self.cert, self.key)
        except ssl.SSLError:
            return "tls"
        if got.status == 401:
            return "rejected"
        assert got.status == 201, got
        return got.user


def _client_of(c: Any, ca_crt: Path, ca_key: Path, user: str) -> Probe:
    key = new_key("ecdsa")
    cert = sign_leaf(LeafSpec(user, (), (CLIENT_AUTH,)), key, load_cert(ca_crt), load_key(ca_key), days=2)
    return Probe(c, cert_pem(cert), key_pem(key), user)


def _root_ca(admin: Client, ns: str = "default") -> str:
    status, doc = admin.json("GET", f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt")
    return str(doc["data"]["ca.crt"]) if status == 200 else ""


def test_rotate_ca_old_and_new_clients_through_every_step(own_cluster: Any, tmp_path: Path) -> None:
    c = own_cluster
    pki = Path(c.pki)
    crt, key_path, *_ = issue_user(pki, "before-rotation", ("dev",))
    old_client = Probe(c, crt.read_bytes(), key_path.read_bytes(), "before-rotation")
    old_ca = (pki / "ca.crt").read_bytes()
    only_old = tmp_path / "old-ca.crt"
    only_old.write_bytes(old_ca)
    assert old_client.who(only_old) == "before-rotation"
    script = tmp_path / "restart.py"
    script.write_text(RESTART_SCRIPT.format(harness=str(HARNESS)))
    counter = tmp_path / "restarts"
    said = ""

    def run(step: str, killed: bool = False) -> None:
        nonlocal said
        code, err = run_rotation(c, counter, script, KILL_AFTER_RESTARTS, "pki", "rotate-ca", "--step", step,
                                 timeout=900)
        said += err
        if killed:
            assert code == -signal.SIGKILL, err
        else:
            assert code == 0, err

    # generate: new CA beside the old, nothing trusts it yet
    run("generate")
    st = _state(c)
    assert st["step"] == "generated"
    assert os.stat(_host(c, st["new_key"])).st_mode & 0o777 == 0o600
    bundle, new_only = _host(c, st["bundle"]), _host(c, st["new_crt"])
    assert bundle.read_bytes() == old_ca + new_only.read_bytes()
    new_client = _client_of(c, new_only, _host(c, st["new_key"]), "after-rotation")
    assert old_client.who(bundle) == "before-rotation" and new_client.who(bundle) == "rejected"
    assert old_client.who(new_only) == "tls"

    # trust: killed after its restart, resumed; the new CA's clients are let in, the old ones still are
    run("trust", killed=True)
    assert _state(c)["step"] == "generated"
    run("trust")
    assert _state(c)["step"] == "trusted"
    pod = yaml.safe_load((c.node_root / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
    assert flag_values(pod["spec"]["containers"][0]["command"], "client-ca-file") == [st["bundle"]]
    kubeconfig = yaml.safe_load(Path(c.kubeconfig).read_text())
    assert base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]) == bundle.read_bytes()
    assert old_client.who(bundle) == "before-rotation" and new_client.who(bundle) == "after-rotation"
    assert old_client.who(only_old) == "before-rotation"  # the serving certificate is still the old CA's

    # publish: kube-root-ca.crt holds the bundle
    admin = Client(str(c.kubeconfig))
    run("publish")
    assert _state(c)["step"] == "published"
    assert _root_ca(admin) == _root_ca(admin, "kube-system") == bundle.read_text()

    # reissue: killed after its restart, resumed; the serving certificate is the new CA's
    run("reissue", killed=True)
    run("reissue")
    assert _state(c)["step"] == "reissued"
    assert old_client.who(only_old) == "tls" and old_client.who(new_only) == "before-rotation"
    assert new_client.who(new_only) == "after-rotation" and new_client.who(bundle) == "after-rotation"
    assert old_client.who(bundle) == "before-rotation"

    # users: the harness's admin kubeconfig (a client certificate of the old CA) is re-issued under the new one
    run("users")
    assert _state(c)["step"] == "users" and "--step retire" in said
    user = yaml.safe_load(Path(c.kubeconfig).read_text())["users"][0]["user"]
    admin_crt = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert issued_by(admin_crt, load_cert(new_only)) and not issued_by(admin_crt, x509.load_pem_x509_certificate(old_ca))
    assert old_client.who(bundle) == "before-rotation"

    # retire: killed after its restart, resumed; only now is the old CA's certificate refused
    run("retire", killed=True)
    run("retire")
    assert _state(c)["step"] == "retired" and "complete" in said
    assert (pki / "ca.crt").read_bytes() == new_only.read_bytes()
    assert old_client.who(new_only) == "rejected" and old_client.who(bundle) == "rejected"
    assert new_client.who(new_only) == "after-rotation" and new_client.who(bundle) == "after-rotation"
    admin = Client(str(c.kubeconfig))
    status, _ = admin.json("GET", "/api/v1/namespaces")
    assert status == 200
    assert _root_ca(admin) == new_only.read_text()
    assert int(counter.read_text()) == 6
    assert os.stat(c.node_root / "etc/kubernetes/ca-rotation.json").st_mode & 0o077 == 0
    assert "PRIVATE KEY" not in said

    # a run after completion changes nothing
    code, err = run_rotation(c, counter, script, KILL_AFTER_RESTARTS, "pki", "rotate-ca", "--step", "all",
                             timeout=900)
    assert code == 0 and "already complete" in err and int(counter.read_text()) == 6

