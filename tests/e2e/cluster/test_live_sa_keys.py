"""`creds rotate-sa-key` on a cluster of its own: tokens issued before, during and after the rotation; the run is
killed right after a restart (effect done, not recorded) in the add and in the switch step and resumed. Existing
tokens authenticate through add and switch, new ones carry the new key from switch on, the old key's tokens fail
only after retire. Legacy Secret tokens (the controller-manager's tokens controller, restarted by the harness when
its manifest changed): signed by the old key before, by the new one after switch; retire is refused while one holds
an old-key token, and goes ahead once the controller has re-signed it."""

from __future__ import annotations

import base64
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import yaml
from livekube import wait_for

from conftest import HARNESS, RESTART_SCRIPT, run_rotation
from kubeward.creds.sakeys import key_id, load_public, verifies
from kubeward.sources.cluster import Client

NS, SA = "default", "rotation-client"
# Restarts: add (1, killed), add again (2), switch (3, killed), switch again (4), retire (5).
KILL_AFTER_RESTARTS = "1,3"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"


def _legacy_secret(admin: Client, name: str) -> None:
    status, doc = admin.json("POST", SECRETS, body={
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": SA}}})
    assert status == 201, doc


def _legacy_token(admin: Client, name: str, not_this: str = "") -> str:
    """The token the tokens controller wrote into the Secret (once there, and other than `not_this`)."""
    got: list[str] = []

    def filled() -> bool:
        status, doc = admin.json("GET", f"{SECRETS}/{name}")
        raw = (doc.get("data") or {}).get("token") if status == 200 else None
        if raw and base64.b64decode(raw).decode() != not_this:
            got.append(base64.b64decode(raw).decode())
        return bool(got)

    wait_for(f"the tokens controller to fill {name}", filled)
    return got[0]


def _token(admin: Client) -> str:
    status, doc = admin.json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{SA}/token", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
    assert status == 201, doc
    return str(doc["status"]["token"])


def _works(admin: Client, token: str) -> bool:
    status, doc = admin.json("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    assert status == 201, doc
    st = doc["status"]
    return bool(st.get("authenticated")) and st["user"]["username"] == f"system:serviceaccount:{NS}:{SA}"


def _kid(token: str) -> str:
    head = token.split(".")[0]
    return str(orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def _rotate(c: Any, counter: Path, script: Path, *step: str) -> tuple[int, str]:
    return run_rotation(c, counter, script, KILL_AFTER_RESTARTS, "creds", "rotate-sa-key", *step)


def _state(c: Any) -> dict[str, str]:
    return dict(orjson.loads((c.node_root / "etc/kubernetes/sa-key-rotation.json").read_bytes()))


def _flags(c: Any, name: str, component: str = "kube-apiserver") -> list[str]:
    from kubeward.creds.sakeys import flag_values

    pod = yaml.safe_load(c.manifest(component).read_text())
    return flag_values(pod["spec"]["containers"][0]["command"], name)


def test_rotate_sa_key_tokens_before_during_after(own_cluster: Any, tmp_path: Path) -> None:
    c = own_cluster
    admin = Client(str(c.kubeconfig))
    status, _ = admin.json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts", body={
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA}})
    assert status == 201
    old_pub = load_public(c.pki / "sa.pub")
    old_kid = key_id(old_pub)
    before = _token(admin)
    assert _kid(before) == old_kid and _works(admin, before)
    _legacy_secret(admin, "legacy-before")
    legacy_before = _legacy_token(admin, "legacy-before")
    assert verifies(legacy_before, old_pub) and _works(admin, legacy_before)
    cm = c.manifest("kube-controller-manager")
    cm_flags = yaml.safe_load(cm.read_text())["spec"]["containers"][0]["command"]
    assert "--service-account-private-key-file=/etc/kubernetes/pki/sa.key" in cm_flags
    script = tmp_path / "restart.py"
    script.write_text(RESTART_SCRIPT.format(harness=str(HARNESS)))
    counter = tmp_path / "restarts"
    said = ""

    # add: killed right after its restart (the manifest has both keys, the step is not recorded), then resumed
    code, err = _rotate(c, counter, script, "--step", "add")
    said += err
    assert code == -signal.SIGKILL and _state(c)["step"] == "planned", err
    assert len(_flags(c, "service-account-key-file")) == 2
    code, err = _rotate(c, counter, script, "--step", "add")
    said += err
    assert code == 0 and _state(c)["step"] == "added", err
    st = _state(c)
    assert _flags(c, "service-account-key-file") == ["/etc/kubernetes/pki/sa.pub", st["new_public"]]
    assert _flags(c, "service-account-signing-key-file") == ["/etc/kubernetes/pki/sa.key"]
    new_pub = load_public(c.node_root / st["new_public"].lstrip("/"))
    new_kid = key_id(new_pub)
    assert os.stat(c.node_root / st["new_private"].lstrip("/")).st_mode & 0o777 == 0o600
    during_add = _token(admin)
    assert _kid(during_add) == old_kid  # the old key still signs
    assert _works(admin, before) and _works(admin, during_add)

    # switch (the default --step): killed after its restart, resumed
    code, err = _rotate(c, counter, script)
    said += err
    assert code == -signal.SIGKILL and _state(c)["step"] == "added", err
    code, err = _rotate(c, counter, script)
    said += err
    assert code == 0 and _state(c)["step"] == "switched" and "--step retire" in err, err
    assert _flags(c, "service-account-signing-key-file") == [st["new_private"]]
    during_switch = _token(admin)
    assert _kid(during_switch) == new_kid and verifies(during_switch, new_pub)
    assert not verifies(during_switch, load_public(c.pki / "sa.pub"))
    assert _works(admin, before) and _works(admin, during_add) and _works(admin, during_switch)
    # the controller-manager was restarted on its switched manifest: new legacy tokens are the new key's
    assert _flags(c, "service-account-private-key-file", "kube-controller-manager") == [st["new_private"]]
    _legacy_secret(admin, "legacy-after-switch")
    legacy_new = _legacy_token(admin, "legacy-after-switch")
    assert verifies(legacy_new, new_pub) and not verifies(legacy_new, old_pub) and _works(admin, legacy_new)
    assert _works(admin, legacy_before)

    # retire is refused while a legacy Secret holds a token signed by the old key (nothing edited, no restart)
    code, err = _rotate(c, counter, script, "--step", "retire")
    said += err
    assert code == 2 and _state(c)["step"] == "switched", err
    assert f"1 legacy token Secrets hold tokens signed by the old key (first: {NS}/legacy-before)" in err, err
    assert len(_flags(c, "service-account-key-file")) == 2 and int(counter.read_text()) == 4
    assert _works(admin, legacy_before)
    # as the message says: clear its data.token, the tokens controller signs a new one with the new key; the old
    # token no longer matches its Secret, so the legacy authenticator refuses it already (pkg/serviceaccount/legacy.go
    # "Token does not match server's copy"), once the apiserver's 10 s cache of successful token authentications
    # has let it go (pkg/kubeapiserver/options/authentication.go TokenSuccessCacheTTL)
    status, doc = admin.json("PATCH", f"{SECRETS}/legacy-before", body=[{"op": "remove", "path": "/data/token"}],
                             headers={"Content-Type": "application/json-patch+json"})
    assert status == 200, doc
    legacy_resigned = _legacy_token(admin, "legacy-before", not_this=legacy_before)
    assert verifies(legacy_resigned, new_pub) and _works(admin, legacy_resigned)
    wait_for("the old legacy token to be refused", lambda: not _works(admin, legacy_before), timeout=30)

    # retire: only now do the old key's tokens stop working
    code, err = _rotate(c, counter, script, "--step", "retire")
    said += err
    assert code == 0 and _state(c)["step"] == "retired" and "complete" in err, err
    assert _flags(c, "service-account-key-file") == [st["new_public"]]
    after = _token(admin)
    assert _kid(after) == new_kid and _works(admin, after) and _works(admin, during_switch)
    assert not _works(admin, before) and not _works(admin, during_add)
    assert _works(admin, legacy_new) and _works(admin, legacy_resigned) and not _works(admin, legacy_before)
    assert int(counter.read_text()) == 5
    assert os.stat(c.node_root / "etc/kubernetes/sa-key-rotation.json").st_mode & 0o077 == 0
    for token in (before, during_add, during_switch, after, legacy_before, legacy_new, legacy_resigned):
        assert token not in said and token.split(".")[2] not in said

    # a run after completion changes nothing
    code, err = _rotate(c, counter, script, "--step", "all")
    assert code == 0 and "already complete" in err and int(counter.read_text()) == 5
