"""The apiserver's own credentials: static token and basic-auth files, and how it issues service-account tokens.

Flags come from the kube-apiserver static-pod manifest under the node root (sources/node.py, the same reading
as `node check`); host paths in them resolve below that root.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..findings import NotAssessed, ObjectRef
from ..pki.layout import MASTERS_GROUP
from ..sources.files import display_path
from ..sources.node import Component, NodeConfig, parse_duration
from .base import (
    BASIC_AUTH_FILE,
    STATIC_TOKEN,
    TOKEN_LIFETIME,
    TOKEN_SETTINGS,
    Collector,
    changed_on,
    check_mode,
    file_loc,
    file_ref,
    under_root,
)

MAX_BYTES = 16 << 20
APISERVER = "kube-apiserver"


def read_csv_credentials(text: str) -> list[tuple[int, str, list[str]]]:
    """(line, user, groups) of each record of a token or basic-auth file: `secret,user,uid[,"g1,g2"]`, as
    apiserver/plugin/pkg/authenticator/token/tokenfile/tokenfile.go reads it (encoding/csv, leading spaces trimmed,
    groups split on commas, empty secrets ignored; a record of fewer than 3 fields makes the apiserver refuse the
    file and is skipped here). The secret column is never returned."""
    out = []
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    try:
        for record in reader:
            if len(record) < 3 or not record[0]:
                continue
            groups = [g.strip() for g in record[3].split(",") if g.strip()] if len(record) > 3 else []
            out.append((reader.line_num, record[1], groups))
    except csv.Error:
        out.append((reader.line_num, "", ["(unparsable record)"]))
    return out


def _host(cfg: NodeConfig, value: str) -> Path:
    return under_root(cfg.root, value)


def _credential_file(col: Collector, cfg: NodeConfig, c: Component, flag: str, kind: str) -> None:
    value = c.flags.get(flag)
    meta = STATIC_TOKEN if kind == "TokenFile" else BASIC_AUTH_FILE
    col.judged(meta)
    if not value:
        return
    path = _host(cfg, value)
    shown = display_path(str(path))
    try:
        if path.stat().st_size > MAX_BYTES:
            col.error(shown, f"larger than {MAX_BYTES >> 20} MiB: --{flag} not assessed")
            return
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        col.not_assessed.append(NotAssessed(f"--{flag} {value}", exc.strerror or "cannot be read"))
        return
    check_mode(col, kind, path, f"--{flag} file")
    ref, loc = file_ref(kind, path), file_loc(path)
    what = "token" if kind == "TokenFile" else "password"
    age = changed_on(path)
    for line, user, groups in read_csv_credentials(text):
        admin = f", in {MASTERS_GROUP}" if MASTERS_GROUP in groups else ""
        col.add(meta, ref, loc, f"/line/{line}",
                f'line {line}: a non-expiring {what} for user "{user}"{admin} (groups: {", ".join(groups) or "none"}{age})')
        col.expiry(f"{'static-token' if what == 'token' else 'basic-auth'}:{shown}#line={line}", user, None)


def _private_key_file(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return b"PRIVATE KEY-----" in fh.read(MAX_BYTES)
    except OSError:
        return False


def _token_settings(col: Collector, cfg: NodeConfig, c: Component) -> None:
    ref = ObjectRef("v1", "Pod", c.resource.namespace or "kube-system", c.resource.name or c.name)
    loc = file_loc(c.manifest)
    col.judged(TOKEN_LIFETIME)
    col.judged(TOKEN_SETTINGS)
    # Unset or 0: no cap on TokenRequest.expirationSeconds (pkg/kubeapiserver/options/authentication.go,
    # ServiceAccounts.MaxExpiration); the API only bounds it by 2^32 seconds.
    max_exp = c.flags.get("service-account-max-token-expiration")
    seconds = parse_duration(max_exp) if max_exp is not None else 0.0
    if not seconds:
        col.add(TOKEN_LIFETIME, ref, loc, f"/spec/containers/{c.container}/command",
                "--service-account-max-token-expiration is not set: tokens of any lifetime can be requested")
    for flag in ("service-account-issuer", "service-account-signing-key-file", "service-account-key-file"):
        values = c.flags.values.get(flag, [])
        if not values:
            col.add(TOKEN_SETTINGS, ref, loc, f"/spec/containers/{c.container}/command", f"--{flag} is not set")
            continue
        if flag == "service-account-issuer":
            continue
        for v in values:
            path = _host(cfg, v)
            if not path.is_file():
                col.add(TOKEN_SETTINGS, ref, loc, f"/spec/containers/{c.container}/command",
                        f"--{flag} names {v}, which is not a readable file here")
            elif flag == "service-account-signing-key-file" or _private_key_file(path):
                check_mode(col, "KeyFile", path, f"service-account signing key (--{flag})")


def audit_apiserver(col: Collector, cfg: NodeConfig) -> None:
    c = cfg.components.get(APISERVER)
    if c is None:
        col.not_assessed.append(NotAssessed(
            "kube-apiserver credentials", f"no kube-apiserver manifest in {display_path(str(cfg.manifests_dir))}"))
        return
    col.objects += 1
    _credential_file(col, cfg, c, "token-auth-file", "TokenFile")
    _credential_file(col, cfg, c, "basic-auth-file", "BasicAuthFile")
    _token_settings(col, cfg, c)
