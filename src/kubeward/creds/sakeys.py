"""`creds rotate-sa-key`: rotate the service-account token signing key without breaking a client, resumably.

Kubernetes semantics (kube-apiserver flags, pkg/kubeapiserver/options/authentication.go and
pkg/controlplane/apiserver/options/options.go): `--service-account-key-file` is a string array, each file a
verification key, and a token verifies if any key accepts it (pkg/serviceaccount/jwt.go: the key whose id, the
base64url SHA-256 of the PKIX public key, equals the token's `kid`; every key when the token has none);
`--service-account-signing-key-file` is the one private key that signs new tokens (TokenRequest, projected
volumes); `--service-account-issuer` is left as it is. The controller-manager's `--service-account-private-key-file`
(cmd/kube-controller-manager/app/options/serviceaccountcontroller.go) signs legacy Secret tokens; when its manifest
is on the node and names the old key it is switched with the apiserver's.

Steps, each checked with the API before it is recorded (rotation.Steps):
  added     a new key pair beside the old (0600 private key); its public key appended as another
            --service-account-key-file; restart; a TokenRequest token (still the old key's) and a token signed by
            the new key both authenticate (TokenReview), the JWKS lists the new key
  switched  --service-account-signing-key-file (and the controller-manager's key) -> the new key; restart; a new
            TokenRequest token carries the new kid and verifies with the new public key, a token signed by the old
            key still authenticates
  retired   only when asked: legacy Secret tokens signed by the old key are refused first (they would stop
            working); the old public key removed; restart; the old key's tokens fail TokenReview, new ones work
Tokens are requested for a canary ServiceAccount, held in memory only and never printed.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..safefile import write_file, write_files
from ..sources.cluster import Client
from .rotation import PathState, RotationError, Steps, save_state

STEPS = ("planned", "added", "switched", "retired")
STEP_OF_OPTION = {"add": "added", "switch": "switched", "retire": "retired", "all": "retired"}
DESCRIPTIONS = {
    "added": "new public key added as a verification key, apiserver restarted, old and new tokens authenticate",
    "switched": "new key signs tokens, restarted, new tokens carry it, old tokens still authenticate",
    "retired": "old public key removed, restarted, old-key tokens fail, new ones authenticate",
}
CANARY = ("kube-system", "kubeward-sa-key-rotation-canary")
KEY_FILE, SIGNING_FILE, CM_KEY_FILE = ("service-account-key-file", "service-account-signing-key-file",
                                       "service-account-private-key-file")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# ---- flags in a static-pod command ------------------------------------------------------------------------


def flag_values(argv: list[str], name: str) -> list[str]:
    """Every value of `--name` in argv, in order (`--name=v` and `--name v`)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith(f"--{name}="):
            out.append(a.split("=", 1)[1])
        elif a == f"--{name}" and i + 1 < len(argv):
            out.append(argv[i + 1])
            i += 1
        i += 1
    return out


def with_flag(argv: list[str], name: str, values: list[str]) -> list[str]:
    """argv with `--name` given exactly `values`, in order: the existing occurrences take the values in turn (their
    position and form kept), extra values follow the last occurrence in its form, surplus occurrences go. Every other
    argument is untouched. A flag absent so far is appended (`--name=value`)."""
    out: list[str] = []
    todo = list(values)
    last_end, split_form = -1, False
    i = 0
    while i < len(argv):
        a = argv[i]
        split = a == f"--{name}" and i + 1 < len(argv)
        if split or a.startswith(f"--{name}="):
            if todo:
                v = todo.pop(0)
                out += [a, v] if split else [f"--{name}={v}"]
                last_end, split_form = len(out), split
            i += 2 if split else 1
            continue
        out.append(a)
        i += 1
    extra = [x for v in todo for x in ([f"--{name}", v] if split_form else [f"--{name}={v}"])]
    if last_end < 0:
        return out + extra
    return out[:last_end] + extra + out[last_end:]


@dataclass(slots=True)
class Manifest:
    """A static-pod manifest and the container list (`command` or `args`) holding the component's flags."""

    path: Path
    doc: dict[str, Any]
    container: dict[str, Any]

    @classmethod
    def load(cls, path: Path, component: str) -> Manifest:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise RotationError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or 'invalid YAML'})") \
                from None
        containers = (doc.get("spec") or {}).get("containers") if isinstance(doc, dict) else None
        for c in containers or []:
            command = c.get("command") or [] if isinstance(c, dict) else []
            if isinstance(c, dict) and (c.get("name") == component or (command and Path(str(command[0])).name
                                                                        == component)):
                return cls(path, doc, c)
        raise RotationError(f"{path}: no {component} container")

    @property
    def argv(self) -> list[str]:
        return [str(a) for a in (self.container.get("command") or []) + (self.container.get("args") or [])]

    def values(self, name: str) -> list[str]:
        return flag_values(self.argv, name)

    def set(self, name: str, values: list[str]) -> bool:
        """Give `--name` exactly `values` in whichever list holds it (command first); True when changed."""
        if self.values(name) == values:
            return False
        lists = [k for k in ("command", "args") if flag_values([str(a) for a in self.container.get(k) or []], name)]
        key = lists[0] if lists else ("command" if self.container.get("command") else "args")
        for other in lists[1:]:
            self.container[other] = with_flag([str(a) for a in self.container[other]], name, [])
        self.container[key] = with_flag([str(a) for a in self.container.get(key) or []], name, values)
        return True

    def write(self) -> None:
        write_file(self.path, yaml.safe_dump(self.doc, sort_keys=False).encode(), mode=None, replace=True,
                   make_dirs=False)


# ---- keys and tokens --------------------------------------------------------------------------------------


def key_id(public: PublicKey) -> str:
    """The apiserver's `kid` for a key: base64url(SHA-256(PKIX DER)) (pkg/serviceaccount/jwt.go keyIDFromPublicKey)."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def load_public(path: Path) -> PublicKey:
    """The public key of a PEM file holding a public key, a private key or a certificate (as the apiserver reads
    --service-account-key-file: keyutil.PublicKeysFromFile)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RotationError(f"{path}: {exc.strerror}") from None
    key: Any = None
    for loader in (lambda d: serialization.load_pem_public_key(d),
                   lambda d: serialization.load_pem_private_key(d, None).public_key()):
        try:
            key = loader(data)
            break
        except (ValueError, TypeError):
            continue
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise RotationError(f"{path}: not a PEM RSA or ECDSA key")
    return key


def load_private(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except OSError as exc:
        raise RotationError(f"{path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise RotationError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise RotationError(f"{path}: not an RSA or ECDSA private key")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_EC_ALG = {"secp256r1": ("ES256", hashes.SHA256), "secp384r1": ("ES384", hashes.SHA384),
           "secp521r1": ("ES512", hashes.SHA512)}


def _alg(key: PublicKey) -> tuple[str, Callable[[], hashes.HashAlgorithm]]:
    """The JWS algorithm the apiserver signs with for this key (jwt.go signerFrom*PrivateKey)."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256", hashes.SHA256
    return _EC_ALG[key.curve.name]


def header_of(token: str) -> dict[str, Any]:
    try:
        return dict(orjson.loads(_unb64(token.split(".")[0])))
    except (ValueError, IndexError, orjson.JSONDecodeError):
        return {}


def verifies(token: str, public: PublicKey) -> bool:
    """The JWS signature of `token` verifies with `public` under its header's algorithm, and the `kid` is the key's."""
    try:
        head, payload, sig = token.split(".")
        header = header_of(token)
        alg, hash_ = _alg(public)
        if header.get("alg") != alg or header.get("kid") not in (None, key_id(public)):
            return False
        signed, signature = f"{head}.{payload}".encode(), _unb64(sig)
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, signed, padding.PKCS1v15(), hash_())
        else:
            n = len(signature) // 2
            der = encode_dss_signature(int.from_bytes(signature[:n]), int.from_bytes(signature[n:]))
            public.verify(der, signed, ec.ECDSA(hash_()))
        return True
    except (ValueError, InvalidSignature, KeyError):
        return False


def resign(token: str, private: PrivateKey) -> str:
    """The same claims signed by `private` (header alg and kid its own): the token that key would have issued."""
    payload = token.split(".")[1]
    alg, hash_ = _alg(private.public_key())
    head = _b64(orjson.dumps({"alg": alg, "kid": key_id(private.public_key())}))
    signed = f"{head}.{payload}".encode()
    if isinstance(private, rsa.RSAPrivateKey):
        sig = private.sign(signed, padding.PKCS1v15(), hash_())
    else:
        r, s = decode_dss_signature(private.sign(signed, ec.ECDSA(hash_())))
        size = (private.curve.key_size + 7) // 8
        sig = r.to_bytes(size) + s.to_bytes(size)
    return f"{head}.{payload}.{_b64(sig)}"


def new_pair_like(old: PublicKey) -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh key of the old key's kind (RSA of at least its size, or its curve)."""
    key: PrivateKey
    if isinstance(old, rsa.RSAPublicKey):
        key = rsa.generate_private_key(public_exponent=65537, key_size=max(old.key_size, 2048))
    else:
        key = ec.generate_private_key(old.curve)
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


# ---- the rotation ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class State(PathState):
    """Host paths (as the manifests name them) of the old and new key files; no key material."""

    STEPS: ClassVar[tuple[str, ...]] = STEPS
    step: str
    old_public: str
    old_private: str
    new_public: str
    new_private: str


class SAKeyRotation:
    """`run(until)` does the steps after the recorded one, up to `until`, checking each."""

    def __init__(self, node_root: Path, client: Client, state_path: Path, restart: Callable[[], None],
                 say: Callable[[str], None] = lambda _m: None) -> None:
        self.root, self.client, self.state_path, self.say = node_root, client, state_path, say
        manifests = node_root / "etc" / "kubernetes" / "manifests"
        self.apiserver_manifest = manifests / "kube-apiserver.yaml"
        self.cm_manifest = manifests / "kube-controller-manager.yaml"
        self.steps = Steps(STEPS, DESCRIPTIONS, client, restart, say)

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _apiserver(self) -> Manifest:
        return Manifest.load(self.apiserver_manifest, "kube-apiserver")

    def _begin(self) -> State:
        m = self._apiserver()
        if m.values("service-account-signing-endpoint"):
            raise RotationError("kube-apiserver signs through --service-account-signing-endpoint: the external "
                                "signer rotates its own keys")
        signing = m.values(SIGNING_FILE)
        verify = m.values(KEY_FILE)
        if not signing or not verify:
            raise RotationError(f"{m.path}: kube-apiserver needs --{SIGNING_FILE} and --{KEY_FILE}")
        private = load_private(self.host(signing[-1]))
        old_public = next((v for v in verify if key_id(load_public(self.host(v))) == key_id(private.public_key())),
                          None)
        if old_public is None:
            raise RotationError(f"no --{KEY_FILE} holds the public key of --{SIGNING_FILE} {signing[-1]}")
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        base = str(Path(signing[-1]).parent / f"sa-{stamp}")
        st = State("planned", old_public, signing[-1], base + ".pub", base + ".key")
        save_state(self.state_path, st.to_json())
        return st

    # ---- checks --------------------------------------------------------------------------------------------

    def _canary_token(self) -> str:
        ns, name = CANARY
        status, _ = self.client.json("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}")
        if status == 404:
            status, _ = self.client.json("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body={
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}})
        if status not in (200, 201, 409):
            raise RotationError(f"canary ServiceAccount {ns}/{name}: HTTP {status}")
        status, doc = self.client.json("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})
        token = ((doc or {}).get("status") or {}).get("token") if isinstance(doc, dict) else None
        if status != 201 or not isinstance(token, str):
            raise RotationError(f"TokenRequest for {ns}/{name}: HTTP {status}")
        return token

    def authenticates(self, token: str) -> bool:
        """TokenReview: the apiserver accepts the token as the canary ServiceAccount."""
        status, doc = self.client.json("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        if status != 201 or not isinstance(doc, dict):
            raise RotationError(f"TokenReview: HTTP {status}")
        st = doc.get("status") or {}
        return bool(st.get("authenticated")) and (st.get("user") or {}).get("username") == \
            f"system:serviceaccount:{CANARY[0]}:{CANARY[1]}"

    def _expect(self, what: str, token: str, want: bool) -> None:
        if self.authenticates(token) != want:
            raise RotationError(f"{what} {'does not authenticate' if want else 'still authenticates'} (TokenReview)")

    def _jwks_kids(self) -> set[str] | None:
        status, doc = self.client.json("GET", "/openid/v1/jwks")
        if status != 200 or not isinstance(doc, dict):
            return None
        return {str(k.get("kid")) for k in doc.get("keys") or [] if isinstance(k, dict)}

    # ---- steps ---------------------------------------------------------------------------------------------

    def _new_keys(self, st: State) -> PrivateKey:
        priv_path, pub_path = self.host(st.new_private), self.host(st.new_public)
        if not priv_path.exists():
            priv, pub = new_pair_like(load_public(self.host(st.old_public)))
            write_files([(priv_path, priv, 0o600), (pub_path, pub, 0o644)], replace=True, dir_mode=0o755)
        key = load_private(priv_path)
        if key_id(load_public(pub_path)) != key_id(key.public_key()):
            raise RotationError(f"{pub_path} is not the public key of {priv_path}")
        return key

    def _add(self, st: State) -> None:
        new = self._new_keys(st)
        m = self._apiserver()
        keys = m.values(KEY_FILE)
        if st.new_public not in keys and m.set(KEY_FILE, [*keys, st.new_public]):
            m.write()
        self.steps.restart()
        token = self._canary_token()
        if not verifies(token, load_public(self.host(st.old_public))):
            raise RotationError("a new token is not signed by the old key: the apiserver's signing key changed "
                                "outside this rotation")
        self._expect("a token signed by the old key", token, True)
        self._expect("a token signed by the new key", resign(token, new), True)
        kids = self._jwks_kids()
        if kids is not None and key_id(new.public_key()) not in kids:
            raise RotationError("the service-account issuer's JWKS (/openid/v1/jwks) does not list the new key")

    def _switch(self, st: State) -> None:
        m = self._apiserver()
        if m.set(SIGNING_FILE, [st.new_private]):
            m.write()
        if self.cm_manifest.exists():
            cm = Manifest.load(self.cm_manifest, "kube-controller-manager")
            if cm.values(CM_KEY_FILE) and cm.set(CM_KEY_FILE, [st.new_private]):
                cm.write()
        self.steps.restart()
        token = self._canary_token()
        new_public = load_public(self.host(st.new_public))
        if not verifies(token, new_public):
            raise RotationError("a new TokenRequest token is not signed by the new key (kid "
                                f"{header_of(token).get('kid')!r}): the apiserver does not run the new manifest")
        self._expect("a token signed by the new key", token, True)
        self._expect("a token signed by the old key", resign(token, load_private(self.host(st.old_private))), True)

    def legacy_tokens_of(self, public: PublicKey) -> list[str]:
        """The kubernetes.io/service-account-token Secrets whose token the given key signed (ns/name)."""
        from ..sources.cluster import ResourceType

        items, status, reason = self.client.list_raw(ResourceType("v1", "secrets", "Secret"))
        if status != 200:
            raise RotationError(f"listing secrets (for legacy tokens signed by the old key): {reason}")
        out = []
        for s in items:
            if s.get("type") != "kubernetes.io/service-account-token":
                continue
            raw = (s.get("data") or {}).get("token")
            try:
                token = base64.b64decode(raw).decode() if isinstance(raw, str) else ""
            except (ValueError, UnicodeDecodeError):
                continue
            if token and verifies(token, public):
                meta = s.get("metadata") or {}
                out.append(f"{meta.get('namespace')}/{meta.get('name')}")
        return sorted(out)

    def _retire(self, st: State) -> None:
        old_public = load_public(self.host(st.old_public))
        m = self._apiserver()
        if st.old_public in m.values(KEY_FILE):
            legacy = self.legacy_tokens_of(old_public)
            if legacy:
                raise RotationError(f"{len(legacy)} legacy token Secrets hold tokens signed by the old key (first: "
                                    f"{legacy[0]}); they stop working once it is retired: delete their data.token "
                                    "(the token controller signs a new one with the new key) and run again")
            m.set(KEY_FILE, [k for k in m.values(KEY_FILE) if k != st.old_public])
            m.write()
        self.steps.restart()
        token = self._canary_token()
        if not verifies(token, load_public(self.host(st.new_public))):
            raise RotationError("a new TokenRequest token is not signed by the new key")
        self._expect("a token signed by the new key", token, True)
        self._expect("a token signed by the old key", resign(token, load_private(self.host(st.old_private))), False)

    def run(self, until: str = "switched") -> State:
        st = State.load(self.state_path) or self._begin()
        actions: dict[str, Callable[[], None]] = {
            "planned": lambda: self._add(st), "added": lambda: self._switch(st), "switched": lambda: self._retire(st)}
        self.steps.run_recorded(st, actions, self.state_path, until)
        return st
