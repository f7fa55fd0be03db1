"""EncryptionConfiguration (apiserver.config.k8s.io/v1) and etcd value prefixes, with upstream semantics.

Upstream:
- validation: staging/src/k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go
  (one provider per list element; AES keys 16/24/32 bytes, secretbox 32; key name and base64 secret required;
  resource names lowercase, no bare `*`, no `*.events.k8s.io`/`extensions`, no `resource.*`, no duplicates or
  overlaps such as `secrets` with `*.`; KMS: name, unix endpoint, apiVersion v1|v2, positive timeout);
- defaults: staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/defaults.go (KMS apiVersion v1, timeout 3s,
  cachesize 1000 for v1);
- transformers and prefixes: staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go —
  the first provider of an entry encrypts new writes, every provider can read; value prefix
  `k8s:enc:<aescbc|aesgcm|secretbox>:v1:<key name>:`, `k8s:enc:kms:v1:<name>:`, `k8s:enc:kms:v2:<name>:`,
  identity writes no prefix; the first resource entry naming a group/resource wins, then `*.<group>`, then `*.*`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import yaml

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
PROVIDERS = ("kms", "aesgcm", "aescbc", "secretbox", "identity")
KEYED = {"aesgcm": (16, 24, 32), "aescbc": (16, 24, 32), "secretbox": (32,)}
NON_REST = {"apiserveripinfo", "serviceipallocations", "servicenodeportallocations"}
PREFIX_RE = re.compile(rb"^k8s:enc:(aescbc|aesgcm|secretbox|kms):(v1|v2):([^:]+):")


@dataclass(frozen=True, slots=True)
class Problem:
    """A validation error or a weakness, with the JSON pointer of the offending field."""

    path: str
    message: str
    weak: bool = False  # a weakness that still encrypts (aescbc, KMS v1), not plaintext


@dataclass(frozen=True, slots=True)
class Provider:
    type: str
    path: str
    key_names: tuple[str, ...] = ()
    kms_name: str = ""
    kms_api_version: str = ""

    def write_prefix(self) -> str | None:
        """The prefix new writes carry (None for identity: values are stored as they are)."""
        if self.type == "identity":
            return None
        if self.type == "kms":
            return f"k8s:enc:kms:{self.kms_api_version}:{self.kms_name}:"
        return f"k8s:enc:{self.type}:v1:{self.key_names[0]}:" if self.key_names else None


@dataclass(slots=True)
class Entry:
    resources: list[str]
    providers: list[Provider]
    path: str


@dataclass(slots=True)
class EncryptionConfig:
    entries: list[Entry] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    def entry_for(self, group_resource: str) -> Entry | None:
        """config.go: exact group/resource (first entry wins), then `*.<group>`, then `*.*`."""
        resource, group = parse_group_resource(group_resource)
        for wanted in ((resource, group), ("*", group), ("*", "*")):
            for e in self.entries:
                if any(parse_group_resource(r) == wanted for r in e.resources):
                    return e
        return None

    def writer_for(self, group_resource: str) -> Provider | None:
        """The provider that encrypts new writes of the resource, or None when nothing covers it."""
        e = self.entry_for(group_resource)
        return e.providers[0] if e and e.providers else None


def parse_group_resource(text: str) -> tuple[str, str]:
    """schema.ParseGroupResource: `secrets` → (secrets, ""), `deployments.apps` → (deployments, apps)."""
    if "." in text:
        resource, group = text.split(".", 1)
        return resource, group
    return text, ""


def _validate_resources(resources: list[Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    strs = [r for r in resources if isinstance(r, str)]
    for j, r in enumerate(resources):
        p = f"{path}/{j}"
        if not isinstance(r, str):
            out.append(Problem(p, "resource must be a string"))
        elif r.lower() != r:
            out.append(Problem(p, "resource name should not contain capital letters"))
        elif r == "*":
            out.append(Problem(p, "use '*.' to encrypt all the resources from core API group or *.* to encrypt all "
                                  "resources"))
        elif r in NON_REST:
            out.append(Problem(p, "resources which do not have REST API/s cannot be encrypted"))
        else:
            res, grp = parse_group_resource(r)
            if grp == "events.k8s.io":
                out.append(Problem(p, "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. "
                                      "Use 'events' instead in the config file"))
            elif grp == "extensions":
                out.append(Problem(p, "'extensions' group has been removed and cannot be used for encryption"))
            elif grp == "*" and res != "*":
                out.append(Problem(p, "encrypting the same resource across groups is not supported"))
    grs = [parse_group_resource(r) for r in strs]
    dup = overlap = False
    for i, a in enumerate(grs):
        for j, b in enumerate(grs):
            if i == j:
                continue
            if a == b and not dup:  # only the first duplicate pair skips the overlap test (as upstream)
                dup = True
                continue
            if not overlap and (a == ("*", "*") or (a[1] == b[1] and "*" in (a[0], b[0]))):
                overlap = True
    if dup:
        out.append(Problem(path, "the same resource cannot be specified multiple times"))
    if overlap:
        out.append(Problem(path, "using overlapping resources such as 'secrets' and '*.' in the same resource list "
                                 "is not allowed as they will be masked"))
    return out


def _validate_keys(keys: Any, path: str, sizes: tuple[int, ...]) -> tuple[list[Problem], tuple[str, ...]]:
    if not isinstance(keys, list) or not keys:
        return [Problem(path, "at least one keys is required")], ()
    out: list[Problem] = []
    names: list[str] = []
    for i, k in enumerate(keys):
        p = f"{path}/{i}"
        if not isinstance(k, dict):
            out.append(Problem(p, "key must be a mapping with name and secret"))
            continue
        name, secret = k.get("name") or "", k.get("secret") or ""
        if not name:
            out.append(Problem(f"{p}/name", "name is a mandatory field for a key"))
        names.append(str(name))
        if not secret:
            out.append(Problem(f"{p}/secret", "secret is a mandatory field for a key"))
            continue
        try:
            raw = base64.b64decode(str(secret), validate=True)
        except (binascii.Error, ValueError):
            out.append(Problem(f"{p}/secret", "secrets must be base64 encoded"))  # value never echoed
            continue
        if len(raw) not in sizes:
            out.append(Problem(f"{p}/secret", f"secret is not of the expected length, got {len(raw)}, expected one "
                                              f"of {list(sizes)}"))
    return out, tuple(names)


def _positive_duration(v: Any) -> bool:
    """metav1.Duration decoding (Go time.ParseDuration) and the `> 0` rule."""
    from ..sources.node import parse_duration

    secs = parse_duration(str(v)) if isinstance(v, str) else None
    return secs is not None and secs > 0


def _provider(item: Any, path: str, errors: list[Problem], kms_names: set[str]) -> Provider | None:
    if not isinstance(item, dict):
        errors.append(Problem(path, "provider must be a mapping"))
        return None
    present = [t for t in PROVIDERS if item.get(t) is not None]
    if not present:
        errors.append(Problem(path, "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, "
                                    "Secretbox, Identity"))
        return None
    if len(present) > 1:
        errors.append(Problem(path, "more than one provider specified in a single element, should split into "
                                    "different list elements"))
        return None
    kind = present[0]
    body = item[kind]
    p = f"{path}/{kind}"
    if kind == "identity":
        return Provider("identity", p)
    if not isinstance(body, dict):
        errors.append(Problem(p, f"{kind} must be a mapping"))
        return None
    if kind in KEYED:
        problems, names = _validate_keys(body.get("keys"), f"{p}/keys", KEYED[kind])
        errors.extend(problems)
        return Provider(kind, p, names)
    # KMS, after defaulting (apiVersion v1, timeout 3s, cachesize 1000 for v1)
    api = str(body.get("apiVersion") or "v1")
    name = str(body.get("name") or "")
    if not name:
        errors.append(Problem(f"{p}/name", "name is a mandatory field for a provider"))
    if api != "v1" and ":" in name:
        errors.append(Problem(f"{p}/name", f"invalid KMS provider name {name}, must not contain ':'"))
    if api != "v1" and name in kms_names:
        errors.append(Problem(f"{p}/name", f"duplicate KMS provider name {name}, names must be unique"))
    kms_names.add(name)
    if body.get("timeout") is not None and not _positive_duration(body.get("timeout")):
        errors.append(Problem(f"{p}/timeout", "timeout should be a positive value"))
    endpoint = str(body.get("endpoint") or "")
    if not endpoint:
        errors.append(Problem(f"{p}/endpoint", "endpoint is a mandatory field for a kms"))
    elif urlparse(endpoint).scheme != "unix":
        errors.append(Problem(f"{p}/endpoint", f"unsupported scheme {urlparse(endpoint).scheme!r} for KMS provider, "
                                               "only unix is supported"))
    if api not in ("v1", "v2"):
        errors.append(Problem(f"{p}/apiVersion", "unsupported apiVersion apiVersion for KMS provider, only v1 and v2 "
                                                 "are supported"))
    if api != "v1" and body.get("cachesize") is not None:
        errors.append(Problem(f"{p}/cachesize", "cachesize is not supported in v2"))
    if api == "v1" and body.get("cachesize") == 0:
        errors.append(Problem(f"{p}/cachesize", "cachesize should be a positive value, or negative to disable"))
    return Provider("kms", p, (), name, api)


def parse(obj: Any) -> EncryptionConfig:
    """Validate a decoded document; structural errors are collected, never raised."""
    cfg = EncryptionConfig()
    if not isinstance(obj, dict):
        cfg.errors.append(Problem("", "not a mapping"))
        return cfg
    if obj.get("kind") != KIND or obj.get("apiVersion") != API_VERSION:
        cfg.errors.append(Problem("", f"want kind {KIND} apiVersion {API_VERSION}, got kind {obj.get('kind')!r} "
                                      f"apiVersion {obj.get('apiVersion')!r}"))
        return cfg
    resources = obj.get("resources")
    if not isinstance(resources, list) or not resources:
        cfg.errors.append(Problem("/resources", "at least one resources is required"))
        return cfg
    kms_names: set[str] = set()
    for i, conf in enumerate(resources):
        base = f"/resources/{i}"
        if not isinstance(conf, dict):
            cfg.errors.append(Problem(base, "must be a mapping with resources and providers"))
            continue
        rs = raw if isinstance(raw := conf.get("resources"), list) else []
        if not rs:
            cfg.errors.append(Problem(f"{base}/resources", f"at least one {base[1:]}/resources is required"))
        cfg.errors.extend(_validate_resources(rs, f"{base}/resources"))
        ps = raw if isinstance(raw := conf.get("providers"), list) else []
        if not ps:
            cfg.errors.append(Problem(f"{base}/providers", f"at least one {base[1:]}/providers is required"))
        providers = [p for j, item in enumerate(ps)
                     if (p := _provider(item, f"{base}/providers/{j}", cfg.errors, kms_names)) is not None]
        cfg.entries.append(Entry([r for r in rs if isinstance(r, str)], providers, base))
    return cfg


def weaknesses(cfg: EncryptionConfig, resources: tuple[str, ...] = ("secrets",)) -> list[Problem]:
    """Beyond validity: does it actually encrypt the resources that matter (secrets first)?"""
    out: list[Problem] = []
    for gr in resources:
        entry = cfg.entry_for(gr)
        if entry is None:
            out.append(Problem("/resources", f"{gr} are not listed: stored in plaintext (identity)"))
            continue
        if not entry.providers:
            continue
        first = entry.providers[0]
        if first.type == "identity":
            out.append(Problem(first.path, f"first provider for {gr} is identity: new writes are stored in plaintext"))
        elif first.type == "aescbc":
            out.append(Problem(first.path, f"{gr} use aescbc, which upstream no longer recommends (padding oracle); "
                                           "prefer kms v2, secretbox or aesgcm", weak=True))
        elif first.type == "kms" and first.kms_api_version == "v1":
            out.append(Problem(first.path, f"{gr} use KMS v1, deprecated upstream; use KMS v2", weak=True))
    return out


@dataclass(frozen=True, slots=True)
class ValueClass:
    encrypted: bool
    provider: str | None
    key_name: str | None
    format: str  # "encrypted" | "protobuf" | "json" | "unknown"


def classify_value(value: bytes) -> ValueClass:
    """What a stored etcd value is: `k8s:enc:…` prefixed, protobuf (`k8s\\x00`), JSON, or unknown."""
    m = PREFIX_RE.match(value)
    if m:
        return ValueClass(True, m.group(1).decode(), m.group(3).decode(errors="replace"), "encrypted")
    if value.startswith(b"k8s\x00"):
        return ValueClass(False, None, None, "protobuf")
    if value.lstrip()[:1] in (b"{", b"["):
        return ValueClass(False, None, None, "json")
    return ValueClass(False, None, None, "unknown")


def resolve_resource(text: str, version: str | None = None) -> str:
    """A `--resources` entry as the EncryptionConfiguration names it (`configmaps`, `deployments.apps`), from any
    spelling kubectl resolves (`cm`, `configmap`, `deploy`; kubeward.discovery). Wildcards (`*.`, `*.*`,
    `*.GROUP`) stay; `plural.group` in a group the built-in API lacks is a custom resource and stays as written.
    Anything else unknown raises ValueError: a misspelt name would silently encrypt nothing."""
    from ..discovery import RESTMapper

    t = text.strip()
    if t.startswith("*."):
        return t
    mapper = RESTMapper.builtin(version)
    got = mapper.resolve(t)
    if got.known and got.resource != "*":
        return got.label
    _, _, group = t.lower().partition(".")
    if "/" not in t and group and "." in group and all(g.name != group for g in mapper.groups):
        return t
    raise ValueError(f"the server doesn't have a resource type {t!r}"
                     + ("" if got.known else " (a custom resource is written PLURAL.GROUP)"))


def generate(provider: str = "aesgcm", resources: tuple[str, ...] = ("secrets",), key_name: str = "key1") -> str:
    """A fresh config: the chosen provider first (writes), identity last (reads data written before)."""
    if provider not in KEYED:
        raise ValueError(f"unknown provider {provider!r} (one of: {', '.join(KEYED)})")
    secret = base64.b64encode(os.urandom(32)).decode()
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "resources": [{
            "resources": list(resources),
            "providers": [{provider: {"keys": [{"name": key_name, "secret": secret}]}}, {"identity": {}}],
        }],
    }
    return yaml.safe_dump(doc, sort_keys=False)
