"""creds rotate-sa-key without a cluster: the manifest edits (flags repeated, order kept, every other argument
untouched), JWS signing and verification as the apiserver does them, and the state machine against a simulated
apiserver that runs whatever the manifest says after each restart. The real proof is
tests/e2e/cluster/test_live_sa_keys.py."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from kubeward.creds.rotation import RotationError
from kubeward.creds.sakeys import (
    CANARY,
    KEY_FILE,
    SIGNING_FILE,
    Manifest,
    SAKeyRotation,
    State,
    flag_values,
    key_id,
    load_private,
    load_public,
    resign,
    verifies,
    with_flag,
)

NAME = "service-account-key-file"
other = st.sampled_from(["--a=1", "--b", "x", "--service-account-key-files=z", "--service-account-key-file-x=1",
                         "--c=--service-account-key-file=q", "plain"])
value = st.text("abc/.-", min_size=1, max_size=6)
occurrence = st.tuples(st.booleans(), value).map(
    lambda t: [f"--{NAME}", t[1]] if t[0] else [f"--{NAME}={t[1]}"])


@given(st.lists(st.one_of(other.map(lambda a: [a]), occurrence), max_size=12), st.lists(value, max_size=5))
def test_with_flag_sets_exactly_the_values_and_keeps_the_rest(parts: list[list[str]], values: list[str]) -> None:
    argv = [a for p in parts for a in p]
    out = with_flag(argv, NAME, values)
    assert flag_values(out, NAME) == values
    assert with_flag(out, NAME, values) == out  # idempotent
    strip = [a for a in with_flag(argv, NAME, []) if a]
    assert [a for a in with_flag(out, NAME, []) if a] == strip  # the other arguments, in their order


def test_with_flag_appends_after_the_last_occurrence_in_its_form() -> None:
    argv = ["kube-apiserver", "--a=1", "--service-account-key-file", "/k/sa.pub", "--b=2", "--c", "3"]
    assert with_flag(argv, KEY_FILE, ["/k/sa.pub", "/k/new.pub"]) == [
        "kube-apiserver", "--a=1", "--service-account-key-file", "/k/sa.pub", "--service-account-key-file",
        "/k/new.pub", "--b=2", "--c", "3"]
    kubeadm = ["kube-apiserver", "--service-account-key-file=/k/sa.pub", "--x=1"]
    assert with_flag(kubeadm, KEY_FILE, ["/k/sa.pub", "/k/new.pub"]) == [
        "kube-apiserver", "--service-account-key-file=/k/sa.pub", "--service-account-key-file=/k/new.pub", "--x=1"]
    assert with_flag(["a", "--service-account-key-file=/o", "--service-account-key-file=/n", "--z"], KEY_FILE,
                     ["/n"]) == ["a", "--service-account-key-file=/n", "--z"]
    assert with_flag(["a"], SIGNING_FILE, ["/k"]) == ["a", "--service-account-signing-key-file=/k"]


def test_manifest_edits_the_list_that_holds_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "kube-apiserver.yaml"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver"}, "spec": {"containers": [
        {"name": "sidecar", "command": ["sleep"]},
        {"name": "kube-apiserver", "command": ["kube-apiserver"], "args": ["--service-account-key-file=/o.pub",
                                                                           "--v=2"]}]}}
    path.write_text(yaml.safe_dump(pod))
    path.chmod(0o600)
    m = Manifest.load(path, "kube-apiserver")
    assert m.set(KEY_FILE, ["/o.pub", "/n.pub"]) and not m.set(KEY_FILE, ["/o.pub", "/n.pub"])
    m.write()
    got = yaml.safe_load(path.read_text())["spec"]["containers"]
    assert got[0] == {"name": "sidecar", "command": ["sleep"]}
    assert got[1]["command"] == ["kube-apiserver"]
    assert got[1]["args"] == ["--service-account-key-file=/o.pub", "--service-account-key-file=/n.pub", "--v=2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the manifest keeps its mode


@pytest.mark.parametrize("make", [lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                  lambda: ec.generate_private_key(ec.SECP256R1()),
                                  lambda: ec.generate_private_key(ec.SECP384R1())])
def test_resigned_token_verifies_with_its_key_only(make: Any) -> None:
    a, b = make(), make()
    payload = base64.urlsafe_b64encode(b'{"sub":"x"}').rstrip(b"=").decode()
    token = resign(f"e30.{payload}.", a)
    assert verifies(token, a.public_key()) and not verifies(token, b.public_key())
    tampered = token.split(".")
    tampered[1] = base64.urlsafe_b64encode(b'{"sub":"y"}').rstrip(b"=").decode()
    assert not verifies(".".join(tampered), a.public_key())
    assert not verifies("garbage", a.public_key())


def test_key_id_is_the_apiservers() -> None:
    # pkg/serviceaccount/jwt.go keyIDFromPublicKey: base64url (no padding) of SHA-256 of the PKIX DER
    import hashlib

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(key) == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert "=" not in key_id(key) and len(key_id(key)) == 43


# ---- the state machine against a simulated apiserver -------------------------------------------------------


class FakeApiserver:
    """Runs with the keys the manifest names at its last restart: TokenRequest signs with the signing key,
    TokenReview accepts a token any verification key verifies."""

    def __init__(self, root: Path) -> None:
        self.root, self.restarts = root, 0
        self.claims = base64.urlsafe_b64encode(orjson.dumps({"sub": f"system:serviceaccount:{CANARY[0]}:"
                                                                    f"{CANARY[1]}"})).rstrip(b"=").decode()
        self.legacy: list[dict[str, Any]] = []
        self.restart()

    def restart(self) -> None:
        pod = yaml.safe_load((self.root / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
        argv = pod["spec"]["containers"][0]["command"]
        self.signer = load_private(self.root / flag_values(argv, SIGNING_FILE)[-1].lstrip("/"))
        self.verifiers = [load_public(self.root / v.lstrip("/")) for v in flag_values(argv, KEY_FILE)]
        self.restarts += 1

    def call(self, method: str, path: str, **_kw: Any) -> tuple[int, bytes, dict[str, str]]:
        return 200, b"ok", {}

    def json(self, method: str, path: str, body: Any = None, **_kw: Any) -> tuple[int, Any]:
        if path.endswith("/token"):
            return 201, {"status": {"token": resign(f"e30.{self.claims}.", self.signer)}}
        if path.endswith("/tokenreviews"):
            ok = any(verifies(body["spec"]["token"], k) for k in self.verifiers)
            return 201, {"status": {"authenticated": ok, "user": {
                "username": f"system:serviceaccount:{CANARY[0]}:{CANARY[1]}"} if ok else {}}}
        if path == "/openid/v1/jwks":
            return 200, {"keys": [{"kid": key_id(k)} for k in self.verifiers]}
        return 200, {}

    def list_raw(self, _rtype: Any) -> tuple[list[dict[str, Any]], int, str]:
        return self.legacy, 200, ""


def _node(tmp: Path) -> Path:
    pki = tmp / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "sa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    (pki / "sa.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    m = tmp / "etc/kubernetes/manifests"
    m.mkdir()
    argv = ["kube-apiserver", "--service-account-issuer=https://kubernetes.default.svc",
            "--service-account-key-file=/etc/kubernetes/pki/sa.pub", "--secure-port=6443",
            "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key", "--v=2"]
    for name, cmd in (("kube-apiserver", argv), ("kube-controller-manager", [
            "kube-controller-manager", "--service-account-private-key-file=/etc/kubernetes/pki/sa.key"])):
        (m / f"{name}.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "spec": {
            "containers": [{"name": name, "command": cmd}]}}))
    return tmp


class Killed(Exception):
    pass


def test_steps_resume_after_a_kill_and_stop_where_asked(tmp_path: Path) -> None:
    root = _node(tmp_path)
    api = FakeApiserver(root)
    state_path = root / "etc/kubernetes/rot.json"
    kill_at = {2}

    def restart() -> None:
        api.restart()
        if api.restarts in kill_at:
            raise Killed

    def rotation() -> SAKeyRotation:
        return SAKeyRotation(root, api, state_path, restart)  # type: ignore[arg-type]

    with pytest.raises(Killed):
        rotation().run("added")
    assert State.load(state_path).step == "planned"  # type: ignore[union-attr]
    st = rotation().run("added")
    assert st.step == "added" and api.restarts == 3
    argv = yaml.safe_load((root / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
    argv = argv["spec"]["containers"][0]["command"]
    assert argv == ["kube-apiserver", "--service-account-issuer=https://kubernetes.default.svc",
                    "--service-account-key-file=/etc/kubernetes/pki/sa.pub", f"--{KEY_FILE}={st.new_public}",
                    "--secure-port=6443", "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key", "--v=2"]
    assert stat.S_IMODE((root / st.new_private.lstrip("/")).stat().st_mode) == 0o600
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    assert "PRIVATE" not in state_path.read_text()
    st = rotation().run()  # default: through switch, never retire
    assert st.step == "switched" and api.restarts == 4
    cm = yaml.safe_load((root / "etc/kubernetes/manifests/kube-controller-manager.yaml").read_text())
    assert flag_values(cm["spec"]["containers"][0]["command"], "service-account-private-key-file") == [st.new_private]
    assert rotation().run("switched").step == "switched" and api.restarts == 4  # nothing left up to switch
    # a legacy token Secret signed by the old key blocks retiring it
    old_token = resign(f"e30.{api.claims}.", load_private(root / "etc/kubernetes/pki/sa.key"))
    api.legacy = [{"type": "kubernetes.io/service-account-token", "metadata": {"namespace": "ns", "name": "tok"},
                   "data": {"token": base64.b64encode(old_token.encode()).decode()}}]
    with pytest.raises(RotationError, match=r"1 legacy token Secrets .* ns/tok"):
        rotation().run("retired")
    assert api.restarts == 4 and State.load(state_path).step == "switched"  # type: ignore[union-attr]
    api.legacy = []
    st = rotation().run("retired")
    assert st.step == "retired" and api.restarts == 5
    assert [key_id(k) for k in api.verifiers] == [key_id(load_public(root / st.new_public.lstrip("/")))]


def test_a_signing_key_without_its_public_key_is_refused(tmp_path: Path) -> None:
    root = _node(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    (root / "etc/kubernetes/pki/sa.pub").write_bytes(other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    api = FakeApiserver(root)
    with pytest.raises(RotationError, match="no --service-account-key-file holds the public key"):
        SAKeyRotation(root, api, root / "s.json", api.restart).run()  # type: ignore[arg-type]


def test_cli_refuses_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kubeward.cli.main import cli

    (tmp_path / "kc").write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    res = CliRunner().invoke(cli, ["creds", "rotate-sa-key", "--cluster", "--kubeconfig", str(tmp_path / "kc"),
                                   "--node-root", str(tmp_path), "--restart-command", "true"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "kubeward:" in res.output
