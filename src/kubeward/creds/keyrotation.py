"""`encryption rotate`: the documented key rotation of encryption at rest, as a resumable state machine.

The procedure is upstream's ("Rotating a decryption key", kubernetes.io/docs/tasks/administer-cluster/
encrypt-data/): add the new key second in the writing provider and restart (every server can then read it), make
it first and restart (new writes use it), rewrite every Secret (a no-op update re-encrypts: the storage layer
rewrites stale data, staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go GuaranteedUpdate), then remove the old
key and restart. Each step is checked before the next starts: the apiserver is ready after each restart, a canary
write lands in etcd under the new key, and every Secret's stored value carries the new key's prefix
(`k8s:enc:<provider>:v1:<key>:`, engines/encryption.py) before the old key goes.

The state file (0600) records the last completed step; each step is idempotent, so a run killed anywhere is
resumed by running the command again. The new key's secret is written to the configuration before the state
says so, and is never printed. Scope: one control-plane node (an HA cluster needs every apiserver restarted at
each step; the restart command is the operator's).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import yaml

from ..engines.encryption import KEYED, classify_value, parse
from ..safefile import write_file
from ..sources.cluster import Client
from ..sources.etcd import EtcdClient
from .rotation import RotationError, Steps, command_restart, save_state

__all__ = ["Node", "Rotation", "RotationError", "State", "command_restart", "node_from_root"]

STEPS = ("planned", "added", "promoted", "rewritten", "verified", "removed")
CANARY = ("kube-system", "kubeward-encryption-rotation-canary")


@dataclass(slots=True)
class Node:
    """Where the apiserver's encryption configuration and etcd are, read from its static-pod manifest."""

    config: Path
    etcd_endpoint: str
    etcd_ca: str
    etcd_cert: str
    etcd_key: str
    etcd_prefix: str


def node_from_root(root: Path) -> Node:
    from ..sources.node import load_node

    cfg = load_node(root)
    c = cfg.components.get("kube-apiserver")
    if c is None:
        raise RotationError(f"{cfg.manifests_dir}: no kube-apiserver manifest")
    f = c.flags

    def host(flag: str) -> str:
        v = f.get(flag)
        if not v:
            raise RotationError(f"kube-apiserver has no --{flag}")
        return str(cfg.host(v))

    servers = f.list("etcd-servers")
    if not servers:
        raise RotationError("kube-apiserver has no --etcd-servers")
    return Node(Path(host("encryption-provider-config")), servers[0], host("etcd-cafile"), host("etcd-certfile"),
                host("etcd-keyfile"), f.get("etcd-prefix") or "/registry")


def _load_config(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RotationError(f"{path}: cannot be read as an EncryptionConfiguration "
                            f"({getattr(exc, 'strerror', None) or 'invalid YAML'})") from None
    cfg = parse(doc)
    if cfg.errors:
        raise RotationError(f"{path}: invalid: {cfg.errors[0].path}: {cfg.errors[0].message}")
    return dict(doc)


def _secrets_provider(doc: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The writing provider of the entry that covers secrets, and its key list (edited in place).

    The entry as config.go picks it: the first naming `secrets`, else `*.` (the core group), else `*.*`. An entry
    that also covers other resources is refused: only Secrets are rewritten, and removing the old key would leave
    the others unreadable."""
    entries = [e for e in doc.get("resources") or [] if isinstance(e, dict)]
    for wanted in ("secrets", "*.", "*.*"):
        entry = next((e for e in entries if wanted in (e.get("resources") or [])), None)
        if entry is None:
            continue
        others = [r for r in entry.get("resources") or [] if r != "secrets"]
        if others:
            raise RotationError(f"the entry that encrypts secrets also covers {', '.join(others)}: only Secrets "
                                "are rewritten here, so rotate with an entry of its own for secrets")
        (ptype, pcfg), = entry["providers"][0].items()
        if ptype not in KEYED:
            raise RotationError(f"secrets are written by {ptype}: only aescbc, aesgcm and secretbox keys "
                                "are rotated here (KMS keys rotate in the KMS)")
        return ptype, pcfg["keys"]
    raise RotationError("no resources entry covers secrets")


def _write_config(path: Path, doc: dict[str, Any]) -> None:
    write_file(path, yaml.safe_dump(doc, sort_keys=False).encode(), mode=0o600, replace=True, make_dirs=False)


@dataclass(slots=True)
class State:
    step: str
    provider: str
    old_key: str
    new_key: str
    secret: str | None  # the new key until the configuration holds it

    def to_json(self) -> bytes:
        return orjson.dumps({"step": self.step, "provider": self.provider, "oldKey": self.old_key,
                             "newKey": self.new_key, "secret": self.secret}, option=orjson.OPT_INDENT_2)

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            d = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise RotationError(f"{path}: unreadable rotation state ({exc})") from None
        return cls(d["step"], d["provider"], d["oldKey"], d["newKey"], d.get("secret"))


class Rotation:
    """One rotation: `run()` does the steps after the recorded one, checking each."""

    def __init__(self, node: Node, client: Client, state_path: Path, restart: Callable[[], None],
                 say: Callable[[str], None] = lambda _m: None) -> None:
        self.node, self.client, self.state_path, self.say = node, client, state_path, say
        self.steps = Steps(STEPS, DESCRIPTIONS, client, restart, say)
        self.etcd = EtcdClient(node.etcd_endpoint, cacert=node.etcd_ca, cert=node.etcd_cert, key=node.etcd_key,
                               timeout=30.0)

    # ---- state ---------------------------------------------------------------------------------------------

    def _save(self, st: State) -> None:
        save_state(self.state_path, st.to_json())

    def _begin(self) -> State:
        doc = _load_config(self.node.config)
        ptype, keys = _secrets_provider(doc)
        old = str(keys[0]["name"])
        new = f"kubeward-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        st = State("planned", ptype, old, new, base64.b64encode(os.urandom(32)).decode())
        self._save(st)
        return st

    # ---- checks --------------------------------------------------------------------------------------------

    def _restart(self) -> None:
        self.steps.restart()

    def _key_of(self, etcd_key: bytes) -> str | None:
        for key, value in self.etcd.range_prefix(etcd_key, page=1):
            # the prefix range's first key is this one, if it exists (longer keys sort after it)
            return classify_value(value[:96]).key_name if key == etcd_key else None
        return None

    def _secret_keys(self) -> dict[str, str | None]:
        """Every Secret in etcd -> the key name its stored value was encrypted with (None: not encrypted)."""
        base = (self.node.etcd_prefix.rstrip("/") + "/secrets/").encode()
        return {k[len(base):].decode(errors="replace"): classify_value(v[:96]).key_name
                for k, v in self.etcd.range_prefix(base, page=500)}

    def _canary(self, want: str) -> None:
        ns, name = CANARY
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                "stringData": {"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        status, _ = self.client.json("PUT", f"/api/v1/namespaces/{ns}/secrets/{name}", body=body)
        if status == 404:
            status, _ = self.client.json("POST", f"/api/v1/namespaces/{ns}/secrets", body=body)
        if status not in (200, 201):
            raise RotationError(f"canary Secret {ns}/{name} not written: HTTP {status}")
        got = self._key_of(f"{self.node.etcd_prefix.rstrip('/')}/secrets/{ns}/{name}".encode())
        if got != want:
            raise RotationError(f"canary Secret {ns}/{name} is stored with key {got!r}, not {want!r}: the "
                                "apiserver does not run the new configuration")

    # ---- steps ---------------------------------------------------------------------------------------------

    def _add(self, st: State) -> None:
        doc = _load_config(self.node.config)
        _, keys = _secrets_provider(doc)
        names = [k["name"] for k in keys]
        if st.new_key not in names:
            if st.secret is None:
                raise RotationError("the new key is neither in the configuration nor in the state file")
            keys.insert(1, {"name": st.new_key, "secret": st.secret})
            _write_config(self.node.config, doc)
        self._restart()

    def _promote(self, st: State) -> None:
        doc = _load_config(self.node.config)
        _, keys = _secrets_provider(doc)
        if keys[0]["name"] != st.new_key:
            keys.sort(key=lambda k: k["name"] != st.new_key)  # the new key first, the others as they were
            _write_config(self.node.config, doc)
        self._restart()
        self._canary(st.new_key)

    def _rewrite(self, st: State) -> None:
        stored = self._secret_keys()
        todo = {k for k, v in stored.items() if v != st.new_key}
        self.say(f"rewriting {len(todo)} of {len(stored)} secrets")
        done = 0
        for item in self._list_secrets():
            meta = item.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            if key not in todo:
                continue
            self._put_unchanged(key, {"apiVersion": "v1", "kind": "Secret", **item})
            done += 1
            if done % 500 == 0:
                self.say(f"rewrote {done} of {len(todo)}")

    def _list_secrets(self) -> list[dict[str, Any]]:
        from ..sources.cluster import ResourceType

        items, status, reason = self.client.list_raw(ResourceType("v1", "secrets", "Secret"))
        if status != 200:
            raise RotationError(f"listing secrets: {reason}")
        return items

    def _put_unchanged(self, key: str, doc: dict[str, Any]) -> None:
        """An update that changes nothing: the apiserver writes it again, encrypted with the current key."""
        ns, _, name = key.partition("/")
        path = f"/api/v1/namespaces/{ns}/secrets/{name}"
        for _attempt in range(5):
            status, _ = self.client.json("PUT", path, body=doc)
            if status in (200, 404):  # 404: deleted meanwhile, nothing to rewrite
                return
            if status != 409:
                raise RotationError(f"secret {key}: update HTTP {status}")
            status, doc = self.client.json("GET", path)  # 409: changed since read; take the new version
            if status == 404:
                return
            if status != 200:
                raise RotationError(f"secret {key}: GET HTTP {status}")
        raise RotationError(f"secret {key}: kept changing while being rewritten")

    def _verify(self, st: State) -> None:
        stored = self._secret_keys()
        stale = sorted(k for k, v in stored.items() if v != st.new_key)
        if stale:
            raise RotationError(f"{len(stale)} of {len(stored)} secrets in etcd are not stored with the new key "
                                f"(first: {stale[0]}); run again to rewrite them")
        status, _ = self.client.json("GET", "/api/v1/secrets", query={"limit": 1})
        if status != 200:
            raise RotationError(f"listing secrets through the API: HTTP {status}")
        self.say(f"verified: all {len(stored)} secrets in etcd are stored with key {st.new_key}")

    def _remove(self, st: State) -> None:
        stored = self._secret_keys()  # nothing may still need the old key
        stale = [k for k, v in stored.items() if v != st.new_key]
        if stale:
            raise RotationError(f"{len(stale)} secrets still need an older key (first: {sorted(stale)[0]})")
        doc = _load_config(self.node.config)
        _, keys = _secrets_provider(doc)
        if len(keys) > 1:
            keys[:] = [k for k in keys if k["name"] == st.new_key]
            _write_config(self.node.config, doc)
        self._restart()
        status, _ = self.client.json("GET", "/api/v1/secrets")  # every secret decrypts with the new key alone
        if status != 200:
            raise RotationError(f"listing secrets after removing the old key: HTTP {status}")
        self._canary(st.new_key)

    def run(self) -> State:
        st = State.load(self.state_path) or self._begin()
        actions = {"planned": self._add, "added": self._promote, "promoted": self._rewrite,
                   "rewritten": self._verify, "verified": self._remove}

        def record(step: str) -> None:
            st.step = step
            if step == "added":
                st.secret = None  # the configuration holds it now
            self._save(st)

        self.steps.advance(st.step, {k: partial(f, st) for k, f in actions.items()}, record)
        return st


DESCRIPTIONS = {
    "added": "new key added second (readable), apiserver restarted",
    "promoted": "new key first (writes), apiserver restarted, canary stored with it",
    "rewritten": "every Secret rewritten",
    "verified": "every Secret in etcd carries the new key",
    "removed": "old key removed, apiserver restarted, secrets still readable",
}
