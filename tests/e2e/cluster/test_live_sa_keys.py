"""`creds rotate-sa-key` on a cluster of its own: tokens issued before, during and after the rotation; the run is
killed right after a restart (effect done, not recorded) in the add and in the switch step and resumed. Existing
tokens authenticate through add and switch, new ones carry the new key from switch on, the old key's tokens fail
only after retire."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson
import yaml

from conftest import HARNESS, RESTART_SCRIPT, rotation_command
from kubeward.creds.sakeys import key_id, load_public, verifies
from kubeward.sources.cluster import Client

NS, SA = "default", "rotation-client"
# Restarts: add (1, killed), add again (2), switch (3, killed), switch again (4), retire (5).
KILL_AFTER_RESTARTS = "1,3"





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
    p = subprocess.run([*rotation_command(c, counter, script, KILL_AFTER_RESTARTS, "creds", "rotate-sa-key"), *step],
                       stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, timeout=600, check=False)
    return p.returncode, p.stderr


def _state(c: Any) -> dict[str, str]:
    return dict(orjson.loads((c.node_root / "etc/kubernetes/sa-key-rotation.json").read_bytes()))


def _flags(c: Any, name: str) -> list[str]:
    from kubeward.creds.sakeys import flag_values

    pod = yaml.safe_load((c.node_root / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
    return flag_values(pod["spec"]["containers"][0]["command"], name)


def test_rotate_sa_key_tokens_before_during_after(own_cluster: Any, tmp_path: Path) -> None:
    c = own_cluster
    admin = Client(str(c.kubeconfig))
    status, _ = admin.json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts", body={
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA}})
    assert status == 201
    old_kid = key_id(load_public(c.pki / "sa.pub"))
    before = _token(admin)
    assert _kid(before) == old_kid and _works(admin, before)
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

    # retire: only now do the old key's tokens stop working
    code, err = _rotate(c, counter, script, "--step", "retire")
    said += err
    assert code == 0 and _state(c)["step"] == "retired" and "complete" in err, err
    assert _flags(c, "service-account-key-file") == [st["new_public"]]
    after = _token(admin)
    assert _kid(after) == new_kid and _works(admin, after) and _works(admin, during_switch)
    assert not _works(admin, before) and not _works(admin, during_add)
    assert int(counter.read_text()) == 5
    assert os.stat(c.node_root / "etc/kubernetes/sa-key-rotation.json").st_mode & 0o077 == 0
    for token in (before, during_add, during_switch, after):
        assert token not in said and token.split(".")[2] not in said

    # a run after completion changes nothing
    code, err = _rotate(c, counter, script, "--step", "all")
    assert code == 0 and "already complete" in err and int(counter.read_text()) == 5
