"""`pki rotate-ca` against a simulated apiserver: it runs with the client CA file and serving certificate its manifest
names at its last restart, and a probe authenticates when a CA of that file signed its certificate. The plan (which
flags move where at which step), resumption after a kill, the refusals, and bad input in one line."""

from __future__ import annotations

import base64
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from kubeward.creds.rotation import RotationError
from kubeward.creds.sakeys import flag_values
from kubeward.pki import carotate
from kubeward.pki.carotate import CARotation, State, Who, issued_by
from kubeward.pki.files import cert_pem, key_pem, load_cert, load_key
from kubeward.pki.issue import CLIENT_AUTH, LeafSpec, new_key, sign_leaf
from kubeward.pki.layout import InitOptions, init
from kubeward.pki.slots import cn_of
from kubeward.pki.users import kubeconfig

PKI = "/etc/kubernetes/pki"


class FakeApiserver:
    def __init__(self, root: Path) -> None:
        self.root, self.restarts, self.host = root, 0, "https://127.0.0.1:6443"
        self.configmaps: dict[str, dict[str, str]] = {}
        self.authenticated: list[str] = []
        self.restart()

    def restart(self) -> None:
        argv = _argv(self.root, "kube-apiserver")
        self.client_cas = x509.load_pem_x509_certificates(
            (self.root / flag_values(argv, "client-ca-file")[-1].lstrip("/")).read_bytes())
        self.serving = load_cert(self.root / flag_values(argv, "tls-cert-file")[-1].lstrip("/"))
        self.restarts += 1

    def who_am_i(self, _server: str, trust: bytes, cert: bytes, _key: bytes) -> Who:
        if not any(issued_by(self.serving, ca) for ca in x509.load_pem_x509_certificates(trust)):
            raise ssl.SSLCertVerificationError("certificate verify failed")
        client = x509.load_pem_x509_certificate(cert)
        if any(issued_by(client, ca) for ca in self.client_cas):
            self.authenticated.append(cn_of(client))
            return Who(201, cn_of(client))
        return Who(401)

    def call(self, method: str, path: str, **_kw: Any) -> tuple[int, bytes, dict[str, str]]:
        return 200, b"ok", {}

    def json(self, method: str, path: str, body: Any = None, **_kw: Any) -> tuple[int, Any]:
        parts = path.split("/")
        if "configmaps" in parts:
            ns = parts[4]
            if method == "GET":
                data = self.configmaps.get(ns)
                return (404, None) if data is None else (200, {"metadata": {"name": "kube-root-ca.crt"}, "data": data})
            self.configmaps[ns] = dict(body["data"])
            return (201 if method == "POST" else 200), body
        return 201, {"status": {"userInfo": {"username": "admin"}}}

    def list_raw(self, rtype: Any) -> tuple[list[dict[str, Any]], int, str]:
        if rtype.plural == "namespaces":
            return [{"metadata": {"name": n}} for n in ("default", "kube-system")], 200, ""
        return [{"metadata": {"name": "kube-root-ca.crt", "namespace": ns}, "data": d}
                for ns, d in self.configmaps.items()], 200, ""


def _argv(root: Path, component: str) -> list[str]:
    pod = yaml.safe_load((root / f"etc/kubernetes/manifests/{component}.yaml").read_text())
    return [str(a) for a in pod["spec"]["containers"][0]["command"]]


def _write_manifest(root: Path, component: str, argv: list[str]) -> None:
    (root / f"etc/kubernetes/manifests/{component}.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": component, "command": argv}]}}))


def _node(tmp: Path) -> Path:
    pki = tmp / "etc/kubernetes/pki"
    init(pki, InitOptions(key_type="ecdsa"))
    (tmp / "etc/kubernetes/manifests").mkdir()
    _write_manifest(tmp, "kube-apiserver", [
        "kube-apiserver", f"--client-ca-file={PKI}/ca.crt", f"--tls-cert-file={PKI}/apiserver.crt",
        f"--tls-private-key-file={PKI}/apiserver.key", f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
        f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key", f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt"])
    _write_manifest(tmp, "kube-controller-manager", [
        "kube-controller-manager", f"--root-ca-file={PKI}/ca.crt", f"--client-ca-file={PKI}/ca.crt",
        f"--cluster-signing-cert-file={PKI}/ca.crt", f"--cluster-signing-key-file={PKI}/ca.key"])
    _write_manifest(tmp, "kube-scheduler", ["kube-scheduler", f"--client-ca-file={PKI}/ca.crt"])
    kubelet = tmp / "var/lib/kubelet"
    kubelet.mkdir(parents=True)
    (kubelet / "config.yaml").write_text(yaml.safe_dump({"kind": "KubeletConfiguration", "authentication": {
        "x509": {"clientCAFile": f"{PKI}/ca.crt"}}}))
    ca, ca_key = load_cert(pki / "ca.crt"), load_key(pki / "ca.key")
    key = new_key("ecdsa")
    admin = sign_leaf(LeafSpec("kubernetes-admin", ("kubeadm:cluster-admins",), (CLIENT_AUTH,)), key, ca, ca_key)
    (tmp / "etc/kubernetes/admin.conf").write_text(kubeconfig("kubernetes-admin", "https://127.0.0.1:6443",
                                                              "kubernetes", ca, admin, key))
    return tmp


def _kubelet_conf(root: Path, ca_crt: Path, ca_key: Path) -> None:
    """kubelet.conf naming its client certificate file (as kubeadm writes it), signed by the given CA."""
    key = new_key("ecdsa")
    cert = sign_leaf(LeafSpec("system:node:cp1", ("system:nodes",), (CLIENT_AUTH,)), key, load_cert(ca_crt),
                     load_key(ca_key))
    pem = root / "var/lib/kubelet/pki/kubelet-client-current.pem"
    pem.parent.mkdir(parents=True, exist_ok=True)
    pem.write_bytes(cert_pem(cert) + key_pem(key))
    (root / "etc/kubernetes/kubelet.conf").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443",
                                               "certificate-authority-data": base64.b64encode(
                                                   (root / "etc/kubernetes/pki/ca.crt").read_bytes()).decode()}}],
        "users": [{"name": "u", "user": {"client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                                         "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}], "current-context": "c"}))


class Killed(Exception):
    pass


@pytest.fixture()
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeApiserver]:
    root = _node(tmp_path)
    api = FakeApiserver(root)
    monkeypatch.setattr(carotate, "who_am_i", api.who_am_i)
    return root, api


def _rotation(root: Path, api: FakeApiserver, restart: Any = None, kubeconfigs: tuple[Path, ...] = (),
              connection: Path | None = None) -> CARotation:
    return CARotation(root, lambda _ca: api, root / "etc/kubernetes/ca-rotation.json",  # type: ignore[arg-type,return-value]
                      restart or api.restart, kubeconfigs=kubeconfigs, connection=connection)


def _kc_ca(path: Path) -> bytes:
    return base64.b64decode(yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["certificate-authority-data"])


def _kc_cert(path: Path) -> x509.Certificate:
    data = yaml.safe_load(path.read_text())["users"][0]["user"]["client-certificate-data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def test_steps_move_each_trust_and_signer_and_resume_after_a_kill(node: tuple[Path, FakeApiserver]) -> None:
    root, api = node
    pki = root / "etc/kubernetes/pki"
    old = load_cert(pki / "ca.crt")
    old_serving = load_cert(pki / "apiserver.crt")
    user_kc = root / "jane.conf"
    key = new_key("ecdsa")
    jane = sign_leaf(LeafSpec("jane", ("dev",), (CLIENT_AUTH,)), key, old, load_key(pki / "ca.key"))
    user_kc.write_text(kubeconfig("jane", "https://127.0.0.1:6443", "kubernetes", old, jane, key))
    kills = {2}

    def restart() -> None:
        api.restart()
        if api.restarts in kills:
            raise Killed

    st = _rotation(root, api, restart, (user_kc,)).run("generated")
    assert st.step == "generated" and api.restarts == 1  # generating restarts nothing
    assert stat.S_IMODE((root / st.new_key.lstrip("/")).stat().st_mode) == 0o600
    assert stat.S_IMODE((root / st.old_key.lstrip("/")).stat().st_mode) == 0o600
    new = load_cert(root / st.new_crt.lstrip("/"))
    assert new.subject == old.subject and new != old
    assert (root / st.bundle.lstrip("/")).read_bytes() == cert_pem(old) + cert_pem(new)
    assert flag_values(_argv(root, "kube-apiserver"), "client-ca-file") == [f"{PKI}/ca.crt"]

    with pytest.raises(Killed):  # trust: killed right after its restart, the step not recorded
        _rotation(root, api, restart, (user_kc,)).run("trusted")
    assert State.load(root / "etc/kubernetes/ca-rotation.json").step == "generated"  # type: ignore[union-attr]
    st = _rotation(root, api, restart, (user_kc,)).run("trusted")
    assert st.step == "trusted" and api.restarts == 3
    assert flag_values(_argv(root, "kube-apiserver"), "client-ca-file") == [st.bundle]
    assert flag_values(_argv(root, "kube-apiserver"), "requestheader-client-ca-file") == [f"{PKI}/front-proxy-ca.crt"]
    cm = _argv(root, "kube-controller-manager")
    assert flag_values(cm, "root-ca-file") == [st.bundle]
    assert flag_values(cm, "client-ca-file") == flag_values(cm, "cluster-signing-cert-file") == [f"{PKI}/ca.crt"]
    assert flag_values(_argv(root, "kube-scheduler"), "client-ca-file") == [st.bundle]
    kubelet = yaml.safe_load((root / "var/lib/kubelet/config.yaml").read_text())
    assert kubelet["authentication"]["x509"]["clientCAFile"] == st.bundle
    bundle = (root / st.bundle.lstrip("/")).read_bytes()
    assert _kc_ca(root / "etc/kubernetes/admin.conf") == _kc_ca(user_kc) == bundle
    assert issued_by(_kc_cert(user_kc), old)  # users are re-issued later

    st = _rotation(root, api, restart, (user_kc,)).run("published")
    assert api.configmaps == {"default": {"ca.crt": bundle.decode()}, "kube-system": {"ca.crt": bundle.decode()}}

    st = _rotation(root, api, restart, (user_kc,)).run()  # default: through users, never retire
    assert st.step == "users" and api.restarts == 4
    assert api.authenticated[-1] == "jane"  # the users step checked jane's re-issued certificate
    serving = load_cert(pki / "apiserver.crt")
    assert issued_by(serving, new) and serving.public_key() == old_serving.public_key()
    assert serving.not_valid_after_utc == old_serving.not_valid_after_utc
    assert serving.extensions.get_extension_for_class(x509.SubjectAlternativeName) == \
        old_serving.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert issued_by(load_cert(pki / "apiserver-kubelet-client.crt"), new)
    cm = _argv(root, "kube-controller-manager")
    assert flag_values(cm, "client-ca-file") == flag_values(cm, "cluster-signing-cert-file") == [st.new_crt]
    assert flag_values(cm, "cluster-signing-key-file") == [st.new_key]
    assert issued_by(_kc_cert(root / "etc/kubernetes/admin.conf"), new)
    assert issued_by(_kc_cert(user_kc), new) and _kc_cert(user_kc).subject == jane.subject
    assert stat.S_IMODE(user_kc.stat().st_mode) == 0o600

    # retire is refused while something on the node still presents a certificate of the old CA
    _kubelet_conf(root, root / st.old_crt.lstrip("/"), root / st.old_key.lstrip("/"))
    with pytest.raises(RotationError, match=r"1 certificates of the old CA .*kubelet.conf: user u \(file"):
        _rotation(root, api, restart, (user_kc,)).run("retired")
    assert api.restarts == 4 and load_cert(pki / "ca.crt") == old
    _kubelet_conf(root, root / st.new_crt.lstrip("/"), root / st.new_key.lstrip("/"))
    st = _rotation(root, api, restart, (user_kc,)).run("retired")
    assert st.step == "retired" and api.restarts == 5
    assert load_cert(pki / "ca.crt") == new and load_key(pki / "ca.key").public_key() == new.public_key()
    for component, flag in (("kube-apiserver", "client-ca-file"), ("kube-controller-manager", "root-ca-file"),
                            ("kube-controller-manager", "client-ca-file"),
                            ("kube-controller-manager", "cluster-signing-cert-file"),
                            ("kube-scheduler", "client-ca-file")):
        assert flag_values(_argv(root, component), flag) == [f"{PKI}/ca.crt"], (component, flag)
    assert flag_values(_argv(root, "kube-controller-manager"), "cluster-signing-key-file") == [f"{PKI}/ca.key"]
    assert yaml.safe_load((root / "var/lib/kubelet/config.yaml").read_text())["authentication"]["x509"][
        "clientCAFile"] == f"{PKI}/ca.crt"
    assert _kc_ca(root / "etc/kubernetes/admin.conf") == _kc_ca(user_kc) == cert_pem(new)
    assert api.configmaps["default"] == {"ca.crt": cert_pem(new).decode()}
    assert "PRIVATE" not in (root / "etc/kubernetes/ca-rotation.json").read_text()


def test_relative_ca_paths_follow_the_bundle(node: tuple[Path, FakeApiserver]) -> None:
    """A kubelet clientCAFile and a node kubeconfig's certificate-authority given relative (to their file's folder)
    name the CA file too: both move to the bundle at trust and back to the CA file at retire."""
    root, api = node
    kubelet = root / "var/lib/kubelet/config.yaml"
    kubelet.write_text(yaml.safe_dump({"kind": "KubeletConfiguration", "authentication": {
        "x509": {"clientCAFile": "../../../etc/kubernetes/pki/ca.crt"}}}))
    admin = root / "etc/kubernetes/admin.conf"
    doc = yaml.safe_load(admin.read_text())
    del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    doc["clusters"][0]["cluster"]["certificate-authority"] = "pki/ca.crt"
    admin.write_text(yaml.safe_dump(doc))
    st = _rotation(root, api).run("trusted")
    assert yaml.safe_load(kubelet.read_text())["authentication"]["x509"]["clientCAFile"] == st.bundle
    assert yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]["certificate-authority"] == st.bundle
    _rotation(root, api).run("retired")
    assert yaml.safe_load(kubelet.read_text())["authentication"]["x509"]["clientCAFile"] == st.ca
    assert yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]["certificate-authority"] == st.ca


def test_a_failed_check_stops_before_the_record(node: tuple[Path, FakeApiserver]) -> None:
    root, api = node

    def restart_without_effect() -> None:  # an apiserver that never picks up the new flags
        api.restarts += 1

    _rotation(root, api).run("generated")
    with pytest.raises(RotationError, match="a client certificate of the new CA does not authenticate"):
        _rotation(root, api, restart_without_effect).run("trusted")
    assert State.load(root / "etc/kubernetes/ca-rotation.json").step == "generated"  # type: ignore[union-attr]


def test_retire_fails_while_the_apiserver_still_trusts_the_old_ca(node: tuple[Path, FakeApiserver]) -> None:
    root, api = node
    st = _rotation(root, api).run()
    old = load_cert(root / st.old_crt.lstrip("/"))

    def restart_keeping_the_old_ca() -> None:  # say, a second --client-ca-file bundle the rotation did not see
        api.restart()
        api.client_cas.append(old)

    with pytest.raises(RotationError, match="a client certificate of the old CA still authenticates"):
        _rotation(root, api, restart_keeping_the_old_ca).run("retired")
    assert State.load(root / "etc/kubernetes/ca-rotation.json").step == "users"  # type: ignore[union-attr]


def test_retire_is_refused_while_the_connection_holds_an_old_certificate(node: tuple[Path, FakeApiserver]) -> None:
    root, api = node
    pki = root / "etc/kubernetes/pki"
    key = new_key("ecdsa")
    ca = load_cert(pki / "ca.crt")
    ops = root / "ops.conf"
    ops.write_text(kubeconfig("ops", "https://127.0.0.1:6443", "kubernetes", ca,
                              sign_leaf(LeafSpec("ops", (), (CLIENT_AUTH,)), key, ca, load_key(pki / "ca.key")), key))
    before = ops.read_bytes()
    assert _rotation(root, api, connection=ops).run().step == "users"
    with pytest.raises(RotationError, match=r"ops.conf: user ops \(the connection's kubeconfig\).*--kubeconfig"):
        _rotation(root, api, connection=ops).run("retired")
    assert ops.read_bytes() == before and api.restarts == 3  # never edited; retire restarted nothing


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: (r / "etc/kubernetes/manifests/kube-apiserver.yaml").unlink(),
     r"kube-apiserver.yaml: cannot be read \(No such file or directory\)"),
    (lambda r: (r / "etc/kubernetes/pki/ca.key").unlink(), r"pki/ca.key: no such file"),
    (lambda r: (r / "etc/kubernetes/pki/ca.crt").write_bytes(
        (r / "etc/kubernetes/pki/ca.crt").read_bytes() + (r / "etc/kubernetes/pki/front-proxy-ca.crt").read_bytes()),
     r"holds 2 certificates \(a bundle"),
    (lambda r: (r / "etc/kubernetes/pki/ca.key").write_bytes((r / "etc/kubernetes/pki/front-proxy-ca.key").read_bytes()),
     r"ca.key: does not match"),
    (lambda r: _write_manifest(r, "kube-apiserver", ["kube-apiserver", f"--client-ca-file={PKI}/ca.crt",
                                                     f"--tls-cert-file={PKI}/front-proxy-client.crt"]),
     r"front-proxy-client.crt: the serving certificate is not signed by the cluster CA"),
])
def test_bad_input_is_one_line_and_writes_nothing(node: tuple[Path, FakeApiserver], damage: Any, message: str) -> None:
    root, api = node
    damage(root)
    with pytest.raises(RotationError, match=message) as err:
        _rotation(root, api).run()
    assert "\n" not in str(err.value)
    assert not (root / "etc/kubernetes/ca-rotation.json").exists()
    assert not list((root / "etc/kubernetes/pki").glob("ca-*"))


def test_state_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "s.json"
    bad.write_text("{")
    with pytest.raises(RotationError, match="unreadable rotation state"):
        State.load(bad)
    bad.write_text('{"step": "halfway", "ca": "", "ca_key": "", "old_crt": "", "old_key": "", "new_crt": "", '
                   '"new_key": "", "bundle": ""}')
    with pytest.raises(RotationError, match="unknown step 'halfway'"):
        State.load(bad)


def test_cli_refuses_a_wrong_node_root_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kubeward.cli.main import cli

    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                                  "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
                                  "users": [{"name": "u", "user": {"token": "x"}}],
                                  "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    res = CliRunner().invoke(cli, ["pki", "rotate-ca", "--cluster", "--kubeconfig", str(kc), "--node-root",
                                   str(tmp_path), "--restart-command", "true"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line]
    assert len(lines) == 1 and "pki rotate-ca:" in lines[0] and "kube-apiserver.yaml: cannot be read" in lines[0]
    res = CliRunner().invoke(cli, ["pki", "rotate-ca", "--cluster", "--kubeconfig", str(tmp_path / "none"),
                                   "--node-root", str(tmp_path), "--restart-command", "true"])
    assert res.exit_code == 2 and "no such kubeconfig file" in res.output and "Traceback" not in res.output
