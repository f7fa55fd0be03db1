"""Kubeconfig files: who they let in, how, and for how long.

Fields as client-go reads them (staging/src/k8s.io/client-go/tools/clientcmd/api/v1/types.go): a user entry
authenticates with `client-certificate(-data)` + `client-key(-data)`, `token` / `tokenFile`, `username` +
`password`, an `auth-provider` (whose config may hold `id-token`/`refresh-token`) or an `exec` plugin (nothing
stored); a cluster entry has `server`, `insecure-skip-tls-verify` and its CA. Relative file paths resolve against
the kubeconfig's folder (clientcmd ResolveLocalPaths). No value is ever put in a message: only field names.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509

from ..findings import Location
from ..pki.checks import EXPIRED, EXPIRING, MASTERS, client_capable, time_hits
from ..pki.layout import MASTERS_GROUP
from ..pki.slots import cn_of, orgs_of
from ..sources.files import display_path, load_config
from .base import (
    BASIC_AUTH,
    EMBEDDED_TOKEN,
    PLAIN_HTTP,
    SKIP_TLS,
    STATIC_KEY,
    Collector,
    changed_on,
    check_mode,
    file_loc,
    file_ref,
    under_root,
)

MAX_BYTES = 4 << 20  # a kubeconfig larger than this is not one
OIDC_SECRETS = ("id-token", "refresh-token", "access-token", "client-secret")  # auth-provider config keys
KIND = "Kubeconfig"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def entries(doc: dict[str, Any], section: str, inner: str) -> list[tuple[int, str, dict[str, Any]]]:
    """(index, name, inner mapping) of each entry of a named list (clusters/cluster, users/user, ...); the mapping
    is the document's own, so editing it edits the document ({} when the file holds no mapping there)."""
    out = []
    items = doc.get(section)
    for i, e in enumerate(items if isinstance(items, list) else []):
        e = _d(e)
        out.append((i, str(e.get("name", f"#{i}")), _d(e.get(inner))))
    return out


def load(path: Path) -> dict[str, Any] | str:
    """The parsed kubeconfig, or why not (a reason that quotes nothing of the file: it holds credentials).

    Read through the configuration-file guards every kubeward input has (bounded read, no FIFOs or devices,
    alias bombs and deep nesting refused), so a hostile kubeconfig costs what a hostile manifest does."""
    docs, errors = load_config(str(path), max_file_bytes=MAX_BYTES)
    if errors:
        message = errors[0].message
        # the parser's problem can quote a character of the file (a token's): only where is kept
        if message.startswith("invalid YAML at "):
            return f"not valid YAML ({message.removeprefix('invalid YAML at ').split(':', 1)[0]})"
        if "limit for configuration files" in message:
            return f"larger than {MAX_BYTES >> 20} MiB, not a kubeconfig"
        return message
    docs = [d for d in docs if d is not None]
    if len(docs) > 1:
        return "not a kubeconfig (several YAML documents; a kubeconfig is one)"
    doc = docs[0] if docs else None
    if not isinstance(doc, dict) or not any(k in doc for k in ("clusters", "users", "contexts")):
        return "not a kubeconfig (no clusters, users or contexts)"
    return doc


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The unverified claims of a JWT (for its `exp` and subject), None when the token is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(body))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def client_certs(user: dict[str, Any], base: Path, root: Path | None) -> tuple[list[x509.Certificate], str, str]:
    """(certificates, field, why not): the client certificate of a user entry, or why it could not be read; a
    file path resolves as clientcmd does (relative to the kubeconfig's folder `base`, absolute under `root`)."""
    data, ref = user.get("client-certificate-data"), user.get("client-certificate")
    if isinstance(data, str) and data:
        try:
            return x509.load_pem_x509_certificates(base64.b64decode(data)), "/client-certificate-data", ""
        except (ValueError, binascii.Error):
            return [], "/client-certificate-data", "client-certificate-data is not a base64 PEM certificate"
    if isinstance(ref, str) and ref:
        p = under_root(root, ref, base)
        try:
            if p.stat().st_size > MAX_BYTES:
                return [], "/client-certificate", f"client-certificate {display_path(str(p))} is too large"
            return x509.load_pem_x509_certificates(p.read_bytes()), "/client-certificate", ""
        except OSError as exc:
            return [], "/client-certificate", f"client-certificate {display_path(str(p))}: {exc.strerror}"
        except ValueError:
            return [], "/client-certificate", f"client-certificate {display_path(str(p))} is not a PEM certificate"
    return [], "", ""


def audit_kubeconfig(col: Collector, path: Path, *, root: Path | None = None) -> None:
    """Every finding and expiry of one kubeconfig file."""
    doc = load(path)
    if isinstance(doc, str):
        col.error(display_path(str(path)), doc)
        return
    col.objects += 1
    ref, loc, base, shown = file_ref(KIND, path), file_loc(path), path.parent, display_path(str(path))
    check_mode(col, KIND, path, "kubeconfig")
    clusters = {name: (i, c) for i, name, c in entries(doc, "clusters", "cluster")}
    for i, name, cluster in entries(doc, "clusters", "cluster"):
        col.judged(SKIP_TLS)
        if cluster.get("insecure-skip-tls-verify") is True:
            col.add(SKIP_TLS, ref, loc, f"/clusters/{i}/cluster/insecure-skip-tls-verify",
                    f'cluster "{name}" does not verify the server certificate')
    for i, name, entry in entries(doc, "users", "user"):
        _user(col, ref, loc, i, name, entry, base, root, shown, changed_on(path))
    for i, name, ctx in entries(doc, "contexts", "context"):
        col.judged(PLAIN_HTTP)
        found = clusters.get(str(ctx.get("cluster", "")))
        server = str(found[1].get("server", "")) if found else ""
        if server.lower().startswith("http://"):
            user = str(ctx.get("user", ""))
            col.add(PLAIN_HTTP, ref, loc, f"/contexts/{i}/context/cluster",
                    f'context "{name}" sends user "{user}"\'s credentials to an http:// server unencrypted')


def _user(col: Collector, ref: Any, loc: Location, i: int, name: str, user: dict[str, Any], base: Path,
          root: Path | None, shown: str, age: str) -> None:
    at = f"/users/{i}/user"
    cid = f"kubeconfig:{shown}#user={name}"
    col.judged(EMBEDDED_TOKEN)
    col.judged(STATIC_KEY)
    col.judged(BASIC_AUTH)
    token = user.get("token")
    if isinstance(token, str) and token:
        claims = jwt_claims(token)
        exp = claims.get("exp") if claims else None
        when = dt.datetime.fromtimestamp(exp, dt.UTC) if isinstance(exp, int | float) else None
        life = f"expires {when:%Y-%m-%d %H:%M}Z" if when else "no expiry the file shows"
        col.add(EMBEDDED_TOKEN, ref, loc, f"{at}/token", f'user "{name}" holds a bearer token ({life}{age})')
        col.expiry(f"{cid}/token", str(claims.get("sub", name)) if claims else name, when)
    token_file = user.get("tokenFile")
    if isinstance(token_file, str) and token_file:
        check_mode(col, "TokenFile", under_root(root, token_file, base), f'token file of user "{name}"')
    provider = _d(_d(user.get("auth-provider")).get("config"))
    held = [k for k in OIDC_SECRETS if provider.get(k)]
    if held:
        col.add(EMBEDDED_TOKEN, ref, loc, f"{at}/auth-provider/config",
                f'user "{name}"\'s auth-provider config holds {", ".join(held)}{age}')
    if user.get("password") or user.get("username"):
        col.add(BASIC_AUTH, ref, loc, f"{at}/password" if user.get("password") else f"{at}/username",
                f'user "{name}" authenticates with a username and password{age}')
    if user.get("client-key-data"):
        col.add(STATIC_KEY, ref, loc, f"{at}/client-key-data", f'user "{name}" has its private key in the file{age}')
    key_file = user.get("client-key")
    if isinstance(key_file, str) and key_file:
        key_path = under_root(root, key_file, base)
        check_mode(col, "KeyFile", key_path, f'client key of user "{name}"')
        col.add(STATIC_KEY, ref, loc, f"{at}/client-key",
                f'user "{name}" uses the long-lived private key {display_path(str(key_path))}')
    certs, field, why = client_certs(user, base, root)
    if why:
        col.error(shown, f'user "{name}": {why}: its expiry and groups are not assessed')
    if not certs:
        return
    leaf = certs[0]
    col.judged(EXPIRED)
    col.judged(EXPIRING)
    for meta, _, message in time_hits(leaf, col.now):
        col.add(meta, ref, loc, at + field, f'user "{name}" client certificate {message}')
    # O=system:masters is cluster-admin before RBAC is asked (pki/checks.py _masters_hits).
    col.judged(MASTERS)
    if MASTERS_GROUP in orgs_of(leaf) and client_capable(leaf):
        col.add(MASTERS, ref, loc, at + field,
                f'user "{name}" certificate (CN={cn_of(leaf)}) is in {MASTERS_GROUP}: cluster-admin that RBAC '
                "cannot revoke")
    col.expiry(f"{cid}/client-certificate", cn_of(leaf) or name, leaf.not_valid_after_utc)
