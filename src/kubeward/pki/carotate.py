"""`pki rotate-ca`: replace the cluster CA without breaking a client, resumably, on one control-plane node.

The procedure is upstream's ("Manual Rotation of CA Certificates", kubernetes.io/docs/tasks/tls/
manual-rotation-of-ca-certificates/): trust old and new CA everywhere, publish the bundle to the pods, re-issue
every certificate under the new CA, then drop the old CA. The x509 authenticator accepts a client certificate
that chains to any CA of `--client-ca-file` (staging/src/k8s.io/apiserver/pkg/authentication/request/x509), so a
bundle file there lets old and new client certificates in at once.

Steps, each checked through the API before it is recorded (creds/rotation.Steps):
  generated  a new CA (the old one's subject and key kind, key 0600) beside the old, a copy of the old CA, and the
             bundle file old+new; nothing else changes
  trusted    every trust flag that names the CA file -> the bundle (kube-apiserver --client-ca-file,
             --kubelet-certificate-authority; kube-controller-manager --root-ca-file; kube-scheduler
             --client-ca-file), the kubelet's clientCAFile, the CA data of the node's kubeconfigs and of each
             --kubeconfig; restart; client certificates of the old and of the new CA both authenticate
  published  kube-root-ca.crt in every namespace holds the bundle (what the controller-manager's root-ca-cert-
             publisher writes from --root-ca-file: pkg/controller/certificates/rootcacertpublisher/publisher.go;
             kubeward writes it too, so the step is checked whether or not that controller runs)
  reissued   the apiserver's serving and kubelet-client certificates and the client certificates embedded in the
             node's kubeconfigs re-issued under the new CA (same subject, SANs, usages, key and expiry); the
             controller-manager's --cluster-signing-*-file and --client-ca-file -> the new CA (they take one CA,
             not a bundle, as the upstream page notes); restart; a client trusting only the new CA connects
  users      the client certificates embedded in each --kubeconfig that the old CA signed, re-issued likewise;
             each authenticates as its CN
  retired    refused while a certificate the old CA signed is still in use on the node or in a --kubeconfig; the
             new CA written to the CA files (ca.crt/ca.key), every bundle flag and CA data back to them, new CA
             only; restart; the old CA's client certificates get 401, the new CA's authenticate, kube-root-ca.crt
             holds the new CA alone
A certificate is re-issued only when the old CA signed it, with what it held: the old CA had already issued that
identity, so nothing new is granted. Out of scope (named in the docs): the front-proxy and etcd CAs, webhook and
APIService caBundles, legacy token Secrets' ca.crt (the controller-manager's tokens controller rewrites them from
--root-ca-file), kube-public/cluster-info, client certificates held in files rather than in kubeconfigs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.client
import os
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import orjson
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ..creds.base import under_root
from ..creds.kubeconfig import client_certs, entries
from ..creds.kubeconfig import load as load_kubeconfig
from ..creds.rotation import PathState, RotationError, Steps, save_state
from ..creds.sakeys import Manifest
from ..safefile import write_file, write_files
from ..sources.cluster import Client, ResourceType
from ..sources.files import ConfigFileError, load_config_document
from .errors import PkiError
from .files import PrivateKey, cert_pem, key_matches, key_pem, load_certs, load_key
from .inventory import key_description
from .issue import CLIENT_AUTH, LeafSpec, new_ca, new_key, sign_leaf
from .rotate import spec_from
from .slots import cn_of

STEPS = ("planned", "generated", "trusted", "published", "reissued", "users", "retired")
STEP_OF_OPTION = {"generate": "generated", "trust": "trusted", "publish": "published", "reissue": "reissued",
                  "users": "users", "retire": "retired", "all": "retired"}
DESCRIPTIONS = {
    "generated": "new CA generated beside the old one, with the old+new bundle",
    "trusted": "the bundle trusted by every component and kubeconfig, restarted, old and new client certificates "
               "authenticate",
    "published": "kube-root-ca.crt holds the bundle in every namespace",
    "reissued": "serving, kubelet-client and node kubeconfig certificates re-issued under the new CA, restarted, "
                "a client trusting only the new CA connects",
    "users": "the client certificates of the given kubeconfigs re-issued under the new CA",
    "retired": "old CA removed everywhere, restarted, its client certificates get 401, the new CA's authenticate",
}
PROBE_CN = "kubeward-ca-rotation-probe"  # the throwaway identity of the checks: no groups, one hour, never written
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MANIFESTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
NODE_KUBECONFIGS = ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf")
# Flags naming a CA file that may hold a bundle (the trust the rotation widens, then narrows again).
TRUST_FLAGS = {"kube-apiserver": ("client-ca-file", "kubelet-certificate-authority"),
               "kube-controller-manager": ("root-ca-file",), "kube-scheduler": ("client-ca-file",)}
_SIGNERS = ("", "kubelet-serving-", "kubelet-client-", "kube-apiserver-client-", "legacy-unknown-")
# kube-controller-manager flags that take exactly one CA (the CSR signers of
# cmd/kube-controller-manager/app/options/csrsigningcontroller.go, and --client-ca-file per the upstream page's
# note): the new CA once it signs, never the bundle.
SINGLE_CA_FLAGS = ("client-ca-file", *(f"cluster-signing-{s}cert-file" for s in _SIGNERS))
SIGNING_KEY_FLAGS = tuple(f"cluster-signing-{s}key-file" for s in _SIGNERS)


@dataclass(slots=True)
class State(PathState):
    """Host paths (as the manifests name them) of the CA files; no key material."""

    STEPS: ClassVar[tuple[str, ...]] = STEPS
    step: str
    ca: str          # the CA file the flags named (kubeadm: /etc/kubernetes/pki/ca.crt); the new CA at the end
    ca_key: str
    old_crt: str     # a copy of the old CA, kept for the checks (and for the operator to remove)
    old_key: str
    new_crt: str
    new_key: str
    bundle: str

    def ours(self) -> set[str]:
        """The CA certificate files this rotation points flags at (any of them is "the cluster CA")."""
        return {self.ca, self.bundle, self.new_crt}


def _pki(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except PkiError as exc:
        raise RotationError(str(exc)) from None


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def reissue(cert: x509.Certificate, key: PrivateKey, ca: x509.Certificate, ca_key: PrivateKey) -> x509.Certificate:
    """`cert` as `ca` would have issued it: same subject, groups, SANs, usages and key; its expiry kept (never past
    the new CA's)."""
    not_after = min(cert.not_valid_after_utc, ca.not_valid_after_utc)
    return sign_leaf(spec_from(cert), key, ca, ca_key, not_after=not_after)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem_certs(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


@dataclass(slots=True)
class Kubeconfig:
    """One kubeconfig being edited: which cluster CAs and users were changed (names only, for the messages)."""

    path: Path
    doc: dict[str, Any]
    changed: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Kubeconfig:
        doc = load_kubeconfig(path)
        if isinstance(doc, str):
            raise RotationError(f"{path}: {doc}")
        return cls(path, doc)

    def entries(self, section: str, inner: str) -> Iterable[tuple[str, dict[str, Any]]]:
        return ((name, e) for _i, name, e in entries(self.doc, section, inner))

    def trust(self, ours: Callable[[bytes], bool], pem: bytes, host_path: Callable[[str], str | None]) -> None:
        """Every cluster whose CA is the cluster CA (data or a file of ours) now trusts `pem` (data) / its file."""
        for name, c in self.entries("clusters", "cluster"):
            data = c.get("certificate-authority-data")
            if isinstance(data, str) and data:
                try:
                    raw = base64.b64decode(data)
                except (ValueError, binascii.Error):
                    continue
                if ours(raw) and raw != pem:
                    c["certificate-authority-data"] = _b64(pem)
                    self.changed.append(f"cluster {name}")
            ref = c.get("certificate-authority")
            if isinstance(ref, str) and ref:
                target = host_path(ref)
                if target is not None and target != ref:
                    c["certificate-authority"] = target
                    self.changed.append(f"cluster {name}")

    def old_client_certs(self, old: x509.Certificate, root: Path | None) -> list[str]:
        """The users whose client certificate (embedded, or a file: relative to the kubeconfig's folder, absolute
        under `root`) the old CA signed."""
        out = []
        for name, u in self.entries("users", "user"):
            certs, where, _why = client_certs(u, self.path.parent, root)
            if certs and issued_by(certs[0], old):
                out.append(f"{name} (file {u['client-certificate']})" if where == "/client-certificate" else name)
        return out

    def _embedded(self) -> Iterable[tuple[str, dict[str, Any], bytes, bytes]]:
        """(user, its entry, certificate PEM, key PEM) of every user holding both client-certificate-data and
        client-key-data."""
        for name, u in self.entries("users", "user"):
            data, key_data = u.get("client-certificate-data"), u.get("client-key-data")
            if isinstance(data, str) and isinstance(key_data, str) and data and key_data:
                try:
                    yield name, u, base64.b64decode(data), base64.b64decode(key_data)
                except (ValueError, binascii.Error):
                    raise RotationError(f"{self.path}: user {name}: client-certificate-data or client-key-data is "
                                        "not PEM") from None

    def reissue_users(self, old: x509.Certificate, ca: x509.Certificate, ca_key: PrivateKey) -> None:
        """Embedded client certificates the old CA signed, re-issued under `ca` with their own key."""
        for name, u, cert, key_data in self._embedded():
            try:
                certs = _pem_certs(cert)
                key = serialization.load_pem_private_key(key_data, None)
            except (ValueError, TypeError):
                raise RotationError(f"{self.path}: user {name}: client-certificate-data or client-key-data is not "
                                    "PEM") from None
            if not certs or not issued_by(certs[0], old):
                continue
            if not key_matches(certs[0], key):  # type: ignore[arg-type]
                raise RotationError(f"{self.path}: user {name}: client-key-data does not match the certificate")
            u["client-certificate-data"] = _b64(cert_pem(reissue(certs[0], key, ca, ca_key)))  # type: ignore[arg-type]
            self.changed.append(f"user {name}")

    def embedded_of(self, ca: x509.Certificate) -> list[tuple[str, bytes, bytes]]:
        """(user, certificate PEM, key PEM) of every embedded client certificate `ca` signed."""
        return [(name, cert, key) for name, _u, cert, key in self._embedded()
                if (certs := _pem_certs(cert)) and issued_by(certs[0], ca)]

    def save(self) -> bool:
        if not self.changed:
            return False
        write_file(self.path, yaml.safe_dump(self.doc, sort_keys=False).encode(), mode=0o600, replace=True,
                   make_dirs=False)
        self.changed = []
        return True


@dataclass(frozen=True, slots=True)
class Who:
    """What the apiserver made of a probe: HTTP status and, when it authenticated, the user name."""

    status: int
    user: str = ""

    def authenticated_as(self, cn: str) -> bool:
        """Let in, as `cn` (before 1.28 the discovery fallback names nobody: any authenticated user)."""
        return self.status in (200, 201) and self.user in ("", cn)


def who_am_i(server: str, trust_pem: bytes, cert: bytes, key: bytes, timeout: float = 15.0) -> Who:
    """SelfSubjectReview (authentication.k8s.io/v1, any authenticated user may create it) over TLS that trusts only
    `trust_pem`, presenting `cert`/`key`; a certificate no client CA accepts is 401
    (apiserver/pkg/endpoints/filters/authentication.go). A server certificate `trust_pem` does not verify raises
    ssl.SSLError. The key lives in a private temporary file for the handshake only (ssl loads chains from files)."""
    url = urllib.parse.urlsplit(server)
    ctx = ssl.create_default_context(cadata=trust_pem.decode())
    with tempfile.TemporaryDirectory(prefix="kubeward-ca-") as tmp:
        chain = Path(tmp) / "probe.pem"
        fd = os.open(chain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert + key)
        ctx.load_cert_chain(str(chain))
    conn = http.client.HTTPSConnection(url.hostname or "", url.port or 443, context=ctx, timeout=timeout)
    try:
        body = orjson.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        conn.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=body,
                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status == 404:  # no SelfSubjectReview (before 1.28): discovery answers any authenticated user
            conn.request("GET", "/api", headers={"Accept": "application/json"})
            resp = conn.getresponse()
            resp.read()
            return Who(resp.status)
        try:
            user = str(orjson.loads(raw)["status"]["userInfo"]["username"]) if resp.status == 201 else ""
        except (orjson.JSONDecodeError, KeyError, TypeError):
            user = "?"
        return Who(resp.status, user)
    finally:
        conn.close()


class CARotation:
    """`run(until)` does the steps after the recorded one, up to `until`, checking each."""

    def __init__(self, node_root: Path, connect: Callable[[str | None], Client], state_path: Path,
                 restart: Callable[[], None], say: Callable[[str], None] = lambda _m: None, *,
                 kubeconfigs: Iterable[Path] = (), connection: Path | None = None, ca_days: int = 3650) -> None:
        """`connect(server_ca)` opens the operator's connection, trusting that CA file for the server when given;
        `connection` is its kubeconfig when it is not among `kubeconfigs` (read, never edited: retiring the old CA
        is refused while its client certificate is the old CA's)."""
        self.root, self.connect, self.state_path, self.say = node_root, connect, state_path, say
        self.kubeconfigs, self.ca_days = list(kubeconfigs), ca_days
        self.connection = connection if connection is not None and connection not in self.kubeconfigs else None
        self.manifests = node_root / "etc" / "kubernetes" / "manifests"
        self.client = connect(None)
        self.steps = Steps(STEPS, DESCRIPTIONS, self.client, restart, say)

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _reconnect(self, server_ca: str) -> None:
        self.client = self.steps.client = self.connect(str(self.host(server_ca)))

    # ---- reading the node -----------------------------------------------------------------------------------

    def _manifest(self, component: str) -> Manifest | None:
        path = self.manifests / f"{component}.yaml"
        if component != "kube-apiserver" and not path.exists():
            return None
        return Manifest.load(path, component)

    def _apiserver(self) -> Manifest:
        m = self._manifest("kube-apiserver")
        assert m is not None  # _manifest returns None only for the optional components
        return m

    def _flag(self, m: Manifest, name: str) -> str:
        values = m.values(name)
        if not values:
            raise RotationError(f"{m.path}: kube-apiserver has no --{name}")
        return values[-1]

    def _cert(self, path: str) -> x509.Certificate:
        return _pki(lambda: load_certs(self.host(path)))[0]

    def _pair(self, crt: str, key: str) -> tuple[x509.Certificate, PrivateKey]:
        cert, k = self._cert(crt), _pki(lambda: load_key(self.host(key)))
        if not key_matches(cert, k):
            raise RotationError(f"{self.host(key)}: does not match {self.host(crt)}")
        return cert, k

    def _begin(self) -> State:
        """Plan from the apiserver's manifest: its --client-ca-file is the cluster CA (one CA certificate whose key
        sits beside it, as kubeadm lays out ca.crt/ca.key), and its serving certificate must be that CA's."""
        m = self._apiserver()
        ca = self._flag(m, "client-ca-file")
        certs = _pki(lambda: load_certs(self.host(ca)))
        if len(certs) != 1:
            raise RotationError(f"{self.host(ca)}: --client-ca-file holds {len(certs)} certificates (a bundle: a "
                                "rotation already under way?); one CA is rotated from its own file")
        ca_key = str(Path(ca).with_suffix(".key"))
        old, _ = self._pair(ca, ca_key)
        serving = self._flag(m, "tls-cert-file")
        if not issued_by(self._cert(serving), old):
            raise RotationError(f"{self.host(serving)}: the serving certificate is not signed by the cluster CA "
                                f"{self.host(ca)}; its CA is not rotated here")
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        base = Path(ca).parent
        st = State("planned", ca, ca_key, str(base / f"ca-old-{stamp}.crt"), str(base / f"ca-old-{stamp}.key"),
                   str(base / f"ca-new-{stamp}.crt"), str(base / f"ca-new-{stamp}.key"),
                   str(base / f"ca-bundle-{stamp}.crt"))
        save_state(self.state_path, st.to_json())
        return st

    # ---- edits ----------------------------------------------------------------------------------------------

    def _retarget(self, component: str, *edits: tuple[Iterable[str], str, set[str]]) -> None:
        """In the component's manifest (when present), for each (flags, target, ours): a listed flag whose value is
        one of `ours` -> `target` (others untouched); written once, so the kubelet restarts the pod once."""
        m = self._manifest(component)
        if m is None:
            return
        changed = False
        for flags, target, ours in edits:
            for name in flags:
                values = m.values(name)
                if values and values[-1] in ours and values != [target]:
                    changed |= m.set(name, [target])
        if changed:
            m.write()

    def _point_trust(self, st: State, target: str, pem: bytes,
                     *cm_edits: tuple[Iterable[str], str, set[str]]) -> None:
        """Every trust of the cluster CA -> `target` (the bundle, or the CA file at the end); `cm_edits`, more
        controller-manager flags to move in the same write (_retarget)."""
        ours = st.ours()
        for component, flags in TRUST_FLAGS.items():
            more = cm_edits if component == "kube-controller-manager" else ()
            self._retarget(component, (flags, target, ours), *more)
        ours_on_host = {os.path.normpath(self.host(o)) for o in ours}

        def retarget(ref: str, base: Path) -> str | None:
            """`target` when `ref` (relative: from the naming file's folder) is one of our CA files."""
            return target if os.path.normpath(under_root(self.root, ref, base)) in ours_on_host else None

        # KubeletConfiguration authentication.x509.clientCAFile (staging/src/k8s.io/kubelet/config/v1beta1/types.go),
        # relative to the config file's folder (a path of pkg/kubelet/apis/config/helpers.go
        # KubeletConfigurationPathRefs, resolved by pkg/kubelet/kubeletconfig/configfiles/configfiles.go).
        kubelet = self.root / "var" / "lib" / "kubelet" / "config.yaml"
        if kubelet.exists():
            try:
                doc = load_config_document(str(kubelet))
            except ConfigFileError as exc:
                raise RotationError(f"{exc}: cannot be read as a KubeletConfiguration") from None
            authn = doc.get("authentication") if isinstance(doc, dict) else None
            x = authn.get("x509") if isinstance(authn, dict) else None
            ref = x.get("clientCAFile") if isinstance(x, dict) else None
            if isinstance(x, dict) and isinstance(ref, str) and ref and ref != target and retarget(ref, kubelet.parent):
                x["clientCAFile"] = target
                write_file(kubelet, yaml.safe_dump(doc, sort_keys=False).encode(), mode=None, replace=True,
                           make_dirs=False)
        cas = [self._cert(p) for p in (st.old_crt, st.new_crt)]

        def is_ours(raw: bytes) -> bool:
            return any(c in cas for c in _pem_certs(raw))

        for kc in self._node_kubeconfigs():
            kc.trust(is_ours, pem, partial(retarget, base=kc.path.parent))
            kc.save()
        for path in self.kubeconfigs:
            kc = Kubeconfig.read(path)
            kc.trust(is_ours, pem, lambda _ref: None)
            kc.save()

    def _node_kubeconfigs(self) -> list[Kubeconfig]:
        kube = self.root / "etc" / "kubernetes"
        return [Kubeconfig.read(kube / n) for n in NODE_KUBECONFIGS if (kube / n).is_file()]

    # ---- checks ---------------------------------------------------------------------------------------------

    def _who(self, trust: str, cert: bytes, key: bytes) -> Who:
        """who_am_i against the connection's apiserver, trusting the file `trust`; failures as RotationError."""
        try:
            return who_am_i(self.client.host, self.host(trust).read_bytes(), cert, key)
        except ssl.SSLError as exc:
            raise RotationError(f"TLS with the apiserver trusting only {self.host(trust)}: "
                                f"{exc.reason or exc}") from None
        except OSError as exc:
            raise RotationError(f"{self.client.host}: {exc.strerror or exc}") from None

    def _probe(self, signer: tuple[str, str], trust: str) -> Who:
        """A throwaway client certificate (CN kubeward-ca-rotation-probe, no groups, an hour) of the CA whose
        copy is `signer` (certificate, key), against the apiserver, trusting the file `trust` for its serving
        certificate."""
        ca, ca_key = self._pair(*signer)
        key = new_key("ecdsa")
        cert = sign_leaf(LeafSpec(PROBE_CN, (), (CLIENT_AUTH,)), key, ca, ca_key,
                         not_after=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        return self._who(trust, cert_pem(cert), key_pem(key))

    def _expect(self, st: State, which: str, trust: str, want: bool) -> None:
        signer = (st.old_crt, st.old_key) if which == "old" else (st.new_crt, st.new_key)
        got = self._probe(signer, trust)
        if got.authenticated_as(PROBE_CN) != want:
            raise RotationError(f"a client certificate of the {which} CA "
                                f"{'does not authenticate' if want else 'still authenticates'} (HTTP {got.status})")

    def _publish(self, pem: bytes) -> None:
        """kube-root-ca.crt in every namespace holds exactly `pem` (data ca.crt, as the publisher writes it)."""
        namespaces, status, reason = self.client.list_raw(ResourceType("v1", "namespaces", "Namespace",
                                                                       namespaced=False))
        if status != 200:
            raise RotationError(f"listing namespaces: {reason}")
        text = pem.decode()
        live = sorted(str((n.get("metadata") or {}).get("name", "")) for n in namespaces
                      if (n.get("status") or {}).get("phase") != "Terminating")  # its ConfigMaps are going too
        for name in live:
            path = f"/api/v1/namespaces/{name}/configmaps/{ROOT_CA_CONFIGMAP}"
            for _attempt in range(5):
                status, doc = self.client.json("GET", path)
                if status == 404:
                    status, _ = self.client.json("POST", f"/api/v1/namespaces/{name}/configmaps", body={
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": name}, "data": {"ca.crt": text}})
                elif status == 200 and isinstance(doc, dict):
                    if doc.get("data") == {"ca.crt": text}:
                        break
                    doc["data"] = {"ca.crt": text}
                    status, _ = self.client.json("PUT", path, body=doc)
                if status in (200, 201):
                    break
                if status != 409:
                    raise RotationError(f"ConfigMap {name}/{ROOT_CA_CONFIGMAP}: HTTP {status}")
        items, status, reason = self.client.list_raw(ResourceType("v1", "configmaps", "ConfigMap"))
        if status != 200:
            raise RotationError(f"listing ConfigMaps: {reason}")
        have = {str((i.get("metadata") or {}).get("namespace")) for i in items
                if (i.get("metadata") or {}).get("name") == ROOT_CA_CONFIGMAP and i.get("data") == {"ca.crt": text}}
        missing = sorted(set(live) - have)
        if missing:
            raise RotationError(f"{ROOT_CA_CONFIGMAP} does not hold the expected CAs in {len(missing)} namespaces "
                                f"(first: {missing[0]}); a controller-manager still publishing the old "
                                "--root-ca-file? run again once it runs the new one")
        self.say(f"{ROOT_CA_CONFIGMAP} holds the expected CAs in {len(have)} namespaces")

    # ---- steps ----------------------------------------------------------------------------------------------

    def _generate(self, st: State) -> None:
        old, old_key = self._pair(st.ca, st.ca_key)
        files: list[tuple[Path, bytes, int]] = []
        if not self.host(st.old_crt).exists():
            files += [(self.host(st.old_key), key_pem(old_key), 0o600), (self.host(st.old_crt), cert_pem(old), 0o644)]
        if not self.host(st.new_crt).exists():
            kind, size = key_description(old_key.public_key())  # the old CA's kind: RSA of its size, else P-256
            key = new_key("rsa", max(size, 2048)) if kind == "RSA" else new_key("ecdsa")
            ca = new_ca(cn_of(old) or "kubernetes", key, days=self.ca_days)
            files += [(self.host(st.new_key), key_pem(key), 0o600), (self.host(st.new_crt), cert_pem(ca), 0o644)]
        if files:
            write_files(files, replace=False)
        new, _ = self._pair(st.new_crt, st.new_key)
        self._pair(st.old_crt, st.old_key)
        bundle = cert_pem(old) + cert_pem(new)
        if not self.host(st.bundle).exists() or self.host(st.bundle).read_bytes() != bundle:
            write_file(self.host(st.bundle), bundle, mode=0o644, replace=True, make_dirs=False)

    def _trust(self, st: State) -> None:
        self._point_trust(st, st.bundle, self.host(st.bundle).read_bytes())
        self._reconnect(st.bundle)
        self.steps.restart()
        self._expect(st, "old", st.bundle, True)
        self._expect(st, "new", st.bundle, True)

    def _published(self, st: State) -> None:
        self._publish(self.host(st.bundle).read_bytes())

    def _leaf(self, crt: str, key: str, old: x509.Certificate, new: x509.Certificate, new_key_: PrivateKey) -> None:
        cert, k = self._pair(crt, key)
        if issued_by(cert, old):
            write_file(self.host(crt), cert_pem(reissue(cert, k, new, new_key_)), mode=0o644, replace=True,
                       make_dirs=False)
            self.say(f"re-issued {crt} under the new CA")

    def _reissue(self, st: State) -> None:
        old = self._cert(st.old_crt)
        new, new_key_ = self._pair(st.new_crt, st.new_key)
        m = self._apiserver()
        for crt_flag, key_flag in (("tls-cert-file", "tls-private-key-file"),
                                   ("kubelet-client-certificate", "kubelet-client-key")):
            if m.values(crt_flag) and m.values(key_flag):
                self._leaf(m.values(crt_flag)[-1], m.values(key_flag)[-1], old, new, new_key_)
        for kc in self._node_kubeconfigs():
            kc.reissue_users(old, new, new_key_)
            kc.save()
        self._retarget("kube-controller-manager", (SINGLE_CA_FLAGS, st.new_crt, {st.ca}),
                       (SIGNING_KEY_FLAGS, st.new_key, {st.ca_key}))
        self.steps.restart()
        self._expect(st, "new", st.new_crt, True)
        self._expect(st, "old", st.bundle, True)

    def _users(self, st: State) -> None:
        old = self._cert(st.old_crt)
        new, new_key_ = self._pair(st.new_crt, st.new_key)
        for path in self.kubeconfigs:
            kc = Kubeconfig.read(path)
            kc.reissue_users(old, new, new_key_)
            names = list(kc.changed)
            if kc.save():
                self.say(f"{path}: re-issued {', '.join(names)}")
            for user, cert, key in kc.embedded_of(new):  # each authenticates as its CN with its new certificate
                cn = cn_of(x509.load_pem_x509_certificate(cert))
                got = self._who(st.bundle, cert, key)
                if not got.authenticated_as(cn):
                    raise RotationError(f"{path}: user {user}'s re-issued certificate does not authenticate as {cn} "
                                        f"(HTTP {got.status})")
        self._reconnect(st.bundle)  # the connection's own credentials may be among them
        status, _ = self.client.json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        if status not in (201, 404):
            raise RotationError(f"the connection does not authenticate after its kubeconfig was re-issued "
                                f"(HTTP {status})")

    def still_old(self, st: State) -> list[str]:
        """What still presents a certificate of the old CA (it would stop working once the old CA goes)."""
        old = self._cert(st.old_crt)
        out = []
        m = self._apiserver()
        for flag in ("tls-cert-file", "kubelet-client-certificate"):
            for v in m.values(flag)[-1:]:
                if issued_by(self._cert(v), old):
                    out.append(f"{self.host(v)} (--{flag})")
        for kc in self._node_kubeconfigs():
            out += [f"{kc.path}: user {u}" for u in kc.old_client_certs(old, self.root)]
        for path in self.kubeconfigs:
            kc = Kubeconfig.read(path)
            out += [f"{path}: user {u}" for u in kc.old_client_certs(old, None)]
        if self.connection is not None and self.connection.is_file():
            kc = Kubeconfig.read(self.connection)
            out += [f"{self.connection}: user {u} (the connection's kubeconfig)"
                    for u in kc.old_client_certs(old, None)]
        return out

    def _retire(self, st: State) -> None:
        left = self.still_old(st)
        if left:
            raise RotationError(f"{len(left)} certificates of the old CA are still in use (first: {left[0]}); they "
                                "stop working once it is retired: re-issue them under the new CA (a kubeconfig: pass "
                                "it with --kubeconfig) and run again")
        new, new_key_ = self._pair(st.new_crt, st.new_key)
        if self.host(st.ca).read_bytes() != cert_pem(new):
            write_files([(self.host(st.ca_key), key_pem(new_key_), 0o600), (self.host(st.ca), cert_pem(new), 0o644)],
                        replace=True)
        self._point_trust(st, st.ca, cert_pem(new), (SINGLE_CA_FLAGS, st.ca, {st.new_crt, st.bundle}),
                          (SIGNING_KEY_FLAGS, st.ca_key, {st.new_key}))
        self._reconnect(st.ca)
        self.steps.restart()
        self._expect(st, "new", st.ca, True)
        self._expect(st, "old", st.ca, False)
        self._publish(cert_pem(new))

    def run(self, until: str = "users") -> State:
        st = State.load(self.state_path) or self._begin()
        if st.step != "planned":
            self._reconnect(st.ca if st.step == "retired" else st.bundle)
        actions: dict[str, Callable[[], None]] = {
            "planned": lambda: self._generate(st), "generated": lambda: self._trust(st),
            "trusted": lambda: self._published(st), "published": lambda: self._reissue(st),
            "reissued": lambda: self._users(st), "users": lambda: self._retire(st)}
        self.steps.run_recorded(st, actions, self.state_path, until)
        return st
