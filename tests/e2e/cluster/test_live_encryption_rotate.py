"""`encryption rotate` on a cluster of its own with 2,000 Secrets: killed after each restart and in the middle of
the rewrite, every run resumes where the last stopped; at the end etcd holds every Secret under the new key, the
old key is gone from the configuration and every Secret still reads back as written."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from conftest import HARNESS, RESTART_SCRIPT, rotation_command
from kubeward.engines.encryption import classify_value
from kubeward.sources.cluster import Client
from kubeward.sources.etcd import EtcdClient

SECRETS = 2000
NS = "rotate"
# Restarts of a clean run: added (1), promoted (2), removed (3). The runs below restart 6 times; these kill the
# rotation right after the restart, before it records the step (the worst moment: effect done, not recorded).
KILL_AFTER_RESTARTS = "1,3,5"





def _stored_keys(c: Any) -> dict[str, str | None]:
    pki = c.pki
    etcd = EtcdClient(c.etcd_endpoint, cacert=str(pki / "etcd/ca.crt"), cert=str(pki / "apiserver-etcd-client.crt"),
                      key=str(pki / "apiserver-etcd-client.key"), timeout=30)
    base = b"/registry/secrets/"
    return {k[len(base):].decode(): classify_value(v[:96]).key_name for k, v in etcd.range_prefix(base, page=500)}


def _rotate(c: Any, counter: Path, script: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(rotation_command(c, counter, script, KILL_AFTER_RESTARTS, "encryption", "rotate"),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def _step(c: Any) -> str | None:
    path = c.encryption_config.with_name(c.encryption_config.name + ".rotation.json")
    return yaml.safe_load(path.read_text())["step"] if path.exists() else None


def test_rotate_2000_secrets_killed_at_each_step(own_cluster: Any, tmp_path: Path) -> None:
    c = own_cluster
    admin = Client(str(c.kubeconfig))
    status, _ = admin.json("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                               "metadata": {"name": NS}})
    assert status == 201
    for i in range(SECRETS):
        status, _ = admin.json("POST", f"/api/v1/namespaces/{NS}/secrets", body={
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i:04d}"},
            "stringData": {"value": f"value-{i}"}})
        assert status == 201
    old_key = yaml.safe_load(c.encryption_config.read_text())["resources"][0]["providers"][0]["aescbc"]["keys"][0]
    assert {v for k, v in _stored_keys(c).items() if k.startswith(f"{NS}/")} == {old_key["name"]}
    script = tmp_path / "restart.py"
    script.write_text(RESTART_SCRIPT.format(harness=str(HARNESS)))
    counter = tmp_path / "restarts"

    steps_seen = []
    # run 1: killed after the restart of "added" (not recorded); run 2: records added, killed after promoted's
    for expect_killed_at in ("planned", "added"):
        p = _rotate(c, counter, script)
        _, err = p.communicate(timeout=600)
        assert p.returncode == -signal.SIGKILL, err
        steps_seen.append(_step(c))
        assert _step(c) == expect_killed_at, err
    # run 3: records promoted, then is killed in the middle of the rewrite
    p = _rotate(c, counter, script)
    assert p.stderr is not None
    for line in p.stderr:
        if "rewriting" in line:
            break
    time.sleep(2.0)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    assert _step(c) == "promoted"
    stored = _stored_keys(c)
    mine = {k: v for k, v in stored.items() if k.startswith(f"{NS}/")}
    new_key = next(v for v in mine.values() if v != old_key["name"])
    rewritten = sum(1 for v in mine.values() if v == new_key)
    assert 0 < rewritten < SECRETS, f"the kill was not in the middle of the rewrite ({rewritten} rewritten)"
    # run 4: rewrites the rest, verifies, is killed after the restart of "removed"; run 5 finishes
    p = _rotate(c, counter, script)
    _, err = p.communicate(timeout=600)
    assert p.returncode == -signal.SIGKILL and _step(c) == "verified", err
    p = _rotate(c, counter, script)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0 and _step(c) == "removed", err
    assert "complete" in err and old_key["secret"] not in err
    assert int(counter.read_text()) == 6

    # etcd: every Secret stored under the new key; the config: only the new key; the API: every value intact
    stored = _stored_keys(c)
    assert len([k for k in stored if k.startswith(f"{NS}/")]) == SECRETS
    assert set(stored.values()) == {new_key}, {k: v for k, v in stored.items() if v != new_key}
    keys = yaml.safe_load(c.encryption_config.read_text())["resources"][0]["providers"][0]["aescbc"]["keys"]
    assert [k["name"] for k in keys] == [new_key]
    assert keys[0]["secret"] not in err  # the new key is never printed either
    assert os.stat(c.encryption_config).st_mode & 0o077 == 0
    for i in (0, 777, SECRETS - 1):
        status, doc = admin.json("GET", f"/api/v1/namespaces/{NS}/secrets/s{i:04d}")
        assert status == 200 and base64.b64decode(doc["data"]["value"]).decode() == f"value-{i}"
    # a run after completion changes nothing
    p = _rotate(c, counter, script)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "already complete" in err and int(counter.read_text()) == 6
