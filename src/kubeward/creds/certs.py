"""Certificates that expire: the control plane's and etcd's (the kubeadm PKI folder, judged by `pki check`'s
controls), the kubelet's, and the CA bundles the apiserver trusts for webhooks and aggregated APIs.

An expired webhook or APIService CA bundle is an outage: the apiserver cannot call the webhook (failurePolicy
Fail rejects every matching request) or the aggregated API (its group disappears from discovery).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

from cryptography import x509

from ..findings import ControlMeta, Location, ObjectRef
from ..pki.checks import EXPIRED, EXPIRING, KEY_OWNER, KEY_PERMS, MASTERS, check, time_hits
from ..pki.errors import PkiError
from ..pki.inventory import read_dir
from ..pki.slots import cn_of
from ..resource import Resource
from ..snapshot import Snapshot
from ..sources.files import display_path
from .base import AGGREGATOR_SKIP_TLS, Collector, check_mode, file_loc

# What `creds audit` takes from `pki check`: validity, system:masters and key files. Chains, EKUs and slots are
# that command's (`kubeward pki check DIR`).
PKI_CONTROLS: tuple[ControlMeta, ...] = (EXPIRED, EXPIRING, MASTERS, KEY_PERMS, KEY_OWNER)
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
MAX_BYTES = 1 << 20


def audit_pki_dir(col: Collector, pki: Path) -> None:
    """The kubeadm PKI folder (control plane and etcd): `pki check`'s credential controls and every expiry."""
    try:
        inv = read_dir(pki)
    except PkiError as exc:
        col.error(display_path(str(pki)), str(exc).split(": ", 1)[-1])
        return
    report = check(inv, now=col.now)
    wanted = {m.id for m in PKI_CONTROLS}
    col.objects += report.objects
    col.errors += report.errors
    for f in report.findings:
        if f.control.id in wanted:  # located like every other file of this command (display_path)
            where = file_loc(os.path.abspath(f.location.file)) if f.location.file else f.location
            col.add(f.control, f.object, where, f.path, f.message)
    for cid, res in report.controls.items():
        if cid in wanted:
            col.judged(res.meta, res.evaluated)
    for cf in inv.certs:
        col.expiry(f"cert:{display_path(str(cf.path))}", cn_of(cf.cert) or cf.name, cf.cert.not_valid_after_utc)


def _pem_certs(col: Collector, path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM file; a file that should hold one and cannot be read is an input error."""
    try:
        if path.stat().st_size > MAX_BYTES:
            col.error(display_path(str(path)), "too large for a PEM file: not assessed")
            return []
        data = path.read_bytes()
    except OSError as exc:
        col.error(display_path(str(path)), f"{exc.strerror or 'cannot be read'}: not assessed")
        return []
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []  # a key file or anything else: no certificate to judge
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        col.error(display_path(str(path)), "not a valid PEM certificate: not assessed")
        return []


def _judge_cert(col: Collector, cert: x509.Certificate, kind: str, name: str, loc: Location, path: str,
                what: str, expiry_id: str) -> None:
    col.judged(EXPIRED)
    col.judged(EXPIRING)
    ref = ObjectRef("kubeward.io/v1", kind, None, name)
    for meta, _, message in time_hits(cert, col.now):
        col.add(meta, ref, loc, path, f"{what} {message}")
    col.expiry(expiry_id, cn_of(cert) or name, cert.not_valid_after_utc)


def audit_kubelet_pki(col: Collector, folder: Path) -> None:
    """The kubelet's serving and client certificates (/var/lib/kubelet/pki: kubelet.crt, kubelet-client-*.pem)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.is_symlink() or path.suffix not in (".crt", ".pem") or not path.is_file():
            continue
        certs = _pem_certs(col, path)
        if not certs:
            continue
        col.objects += 1
        shown = display_path(str(path))
        _judge_cert(col, certs[0], "Certificate", shown, file_loc(path), "/notAfter",
                    f"kubelet certificate {path.name}", f"cert:{shown}")
        key = path if path.suffix == ".pem" else path.with_suffix(".key")
        try:
            holds_key = b"PRIVATE KEY-----" in key.read_bytes()[:MAX_BYTES]
        except OSError:
            holds_key = False
        if holds_key:
            check_mode(col, "KeyFile", key, f"kubelet private key {key.name}")


def _bundle(value: Any) -> list[x509.Certificate] | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return x509.load_pem_x509_certificates(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        return []


def _webhook_bundles(col: Collector, res: Resource) -> None:
    hooks = res.obj.get("webhooks")
    for i, hook in enumerate(hooks if isinstance(hooks, list) else []):
        if not isinstance(hook, dict):
            continue
        cc = hook.get("clientConfig")
        certs = _bundle(cc.get("caBundle") if isinstance(cc, dict) else None)
        hook_name = str(hook.get("name", f"#{i}"))
        _judge_bundle(col, res, certs, f"/webhooks/{i}/clientConfig/caBundle", f'webhook "{hook_name}" CA bundle',
                      f"webhook:{res.kind}/{res.name}#{hook_name}")


def _judge_bundle(col: Collector, res: Resource, certs: list[x509.Certificate] | None, path: str, what: str,
                  expiry_id: str) -> None:
    if certs is None:
        return
    if not certs:
        col.error(f"{res.kind}/{res.name}", f"{path}: not a base64 PEM certificate bundle")
        return
    col.judged(EXPIRED)
    col.judged(EXPIRING)
    for n, cert in enumerate(certs):
        label = what if len(certs) == 1 else f"{what} certificate {n + 1} of {len(certs)}"
        for meta, _, message in time_hits(cert, col.now):
            col.add(meta, res.ref(), res.location(path), path, f"{label} {message}")
        col.expiry(expiry_id if len(certs) == 1 else f"{expiry_id}/{n}", cn_of(cert) or res.name,
                   cert.not_valid_after_utc)


def audit_cluster_bundles(col: Collector, snap: Snapshot) -> None:
    """Webhook configurations and APIServices: CA bundles' validity, and APIServices that verify nothing."""
    for res in snap.of_kind(*WEBHOOK_KINDS):
        col.objects += 1
        _webhook_bundles(col, res)
    for res in snap.of_kind("APIService"):
        spec = res.obj.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("service"), dict):
            continue  # served by kube-apiserver itself (Local): no TLS hop
        col.objects += 1
        col.judged(AGGREGATOR_SKIP_TLS)
        if spec.get("insecureSkipTLSVerify") is True:
            col.add(AGGREGATOR_SKIP_TLS, res.ref(), res.location("/spec/insecureSkipTLSVerify"),
                    "/spec/insecureSkipTLSVerify", "the apiserver does not verify the extension server's certificate")
        _judge_bundle(col, res, _bundle(spec.get("caBundle")), "/spec/caBundle", "APIService CA bundle",
                      f"apiservice:{res.name}")


def node_kubeconfigs(root: Path) -> list[Path]:
    """kubeadm's kubeconfigs (admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf,
    kubelet.conf, bootstrap-kubelet.conf) under ROOT/etc/kubernetes."""
    folder = root / "etc" / "kubernetes"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.conf") if p.is_file() and not p.is_symlink())
