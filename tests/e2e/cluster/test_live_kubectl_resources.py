"""Resource arguments resolved by kubeward as the real kubectl resolves them: a kubectl built from the official
v1.37 modules (e2e/kubectl) runs `auth can-i get ARG` against the harness apiserver with -v=8, the
SelfSubjectAccessReview it sends is decoded from the logged protobuf body, and its group and resource (and
kubectl's warnings on stderr) are compared with kubeward's `build_request` for the same argument, over every
spelling kubectl users type: plural, singular, Kind, short names, resource.group, resource.version.group,
group prefixes, typos, CRDs. 100% agreement is required."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path
from typing import Any

from livekube import wait_for

from kubeward.apidata import fetch_discovery
from kubeward.cli.rbac import build_request
from kubeward.discovery import RESTMapper
from kubeward.sources.cluster import Client

REPO = Path(__file__).resolve().parents[3]
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "gadgets.kubeward.example"},
       "spec": {"group": "kubeward.example", "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gdg"]},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


def _varint(b: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def _fields(b: bytes) -> dict[int, bytes]:
    """The length-delimited fields of one protobuf message (the only wire type these messages use here)."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 2:
            n, i = _varint(b, i)
            out.setdefault(field, b[i:i + n])
            i += n
        elif wire == 0:
            _, i = _varint(b, i)
        else:
            raise ValueError(f"wire type {wire}")
    return out


def _sar(log: str) -> dict[str, str]:
    """resourceAttributes of the SelfSubjectAccessReview in kubectl's -v=8 log (runtime.Unknown protobuf)."""
    lines = log.splitlines()
    for k, line in enumerate(lines):
        if '"Request Body" body=<' not in line:
            continue
        data = bytearray()
        for dump in lines[k + 1:]:
            if not dump.startswith("\t"):
                break
            data += bytes.fromhex(" ".join(dump.split("|")[0].split()[1:]))
        if b"SelfSubjectAccessReview" not in data:
            continue
        raw = _fields(bytes(data[4:]))[2]  # k8s\0 magic, then Unknown{typeMeta=1, raw=2}
        attrs = _fields(_fields(_fields(raw)[2])[1])  # SSAR.spec(2).resourceAttributes(1)
        names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
        return {v: attrs.get(f, b"").decode() for f, v in names.items()}
    raise AssertionError("no SelfSubjectAccessReview body in kubectl's log:\n" + log[-3000:])


def _spellings(mapper: RESTMapper, rng: random.Random) -> list[str]:
    out: set[str] = {"*", "users", "groups", "nosuchthing", "nosuchthing.apps", "pods.nosuch.group", "list", "podlist"}
    for r in mapper.top_level():
        forms = {r.name, r.singular, r.kind, r.kind.upper(), *r.short_names, r.kind + "List"}
        if r.group:
            first = r.group.split(".")[0]
            forms |= {f"{r.name}.{r.group}", f"{r.singular}.{r.group}", f"{r.name}.{r.version}.{r.group}",
                      f"{r.name}.{first}", f"{r.kind}.{r.group}", *(f"{s}.{r.group}" for s in r.short_names),
                      *(f"{s}.{first}" for s in r.short_names)}
        forms |= {r.name[:-1] + "z", r.name + "x"}
        out |= {f for f in forms if f}
    picked = sorted(out)
    rng.shuffle(picked)
    return [*sorted(picked[:260]), "gadgets", "gadget", "Gadget", "gdg", "gadgets.kubeward.example", "gdg.kubeward"]


def test_resource_arguments_resolve_as_kubectl(live: Any, admin: Client, kubectl: Path, tmp_path: Path) -> None:
    status, doc = admin.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=CRD)
    assert status in (201, 409), doc

    def served() -> bool:
        status, _ = admin.json("GET", "/apis/kubeward.example/v1")
        return status == 200

    wait_for("the CRD to be served", served, 60)
    mapper = RESTMapper.builtin().with_crds([CRD])
    live_mapper = RESTMapper.from_discovery(fetch_discovery(admin))
    env = {**os.environ, "HOME": str(tmp_path)}  # a fresh discovery cache for kubectl
    agreed = warned = 0
    args = _spellings(mapper, random.Random(37))
    mismatches = []
    for arg in args:
        r = subprocess.run([str(kubectl), "--kubeconfig", str(live.kubeconfig), "auth", "can-i", "get", arg,
                            "-n", "dev", "-v=8"], capture_output=True, text=True, env=env, check=False, timeout=60)
        theirs = _sar(r.stderr)
        warning = next((ln[len("Warning: "):] for ln in r.stderr.splitlines()
                        if ln.startswith("Warning: the server doesn't have")), "")
        ours = build_request(mapper, "get", arg, None, "dev", False, None)
        resolved = mapper.resolve(arg)
        assert live_mapper.with_crds([CRD]).resolve(arg) == resolved  # shipped data = live discovery here too
        not_namespaced = "is not namespace scoped" in r.stderr
        got = (ours.api_group, ours.resource, resolved.warning, not resolved.namespaced)
        want = (theirs["group"], theirs["resource"], warning, not_namespaced)
        warned += bool(warning)
        if got == want:
            agreed += 1
        else:
            mismatches.append(f"{arg!r}: kubectl sent group={want[0]!r} resource={want[1]!r} warning={want[2]!r} "
                              f"cluster-scoped={want[3]}; kubeward group={got[0]!r} resource={got[1]!r} "
                              f"warning={got[2]!r} cluster-scoped={got[3]}")
    # kubeward's RESOURCE/SUB is kubectl's RESOURCE --subresource SUB
    subs = [("po", "log"), ("pods", "exec"), ("deploy", "scale"), ("sts", "scale"), ("sa", "token"),
            ("Node", "proxy"), ("svc", "status"), ("csr", "approval"), ("gdg", "status"), ("jobs.batch", "status")]
    for arg, sub in subs:
        r = subprocess.run([str(kubectl), "--kubeconfig", str(live.kubeconfig), "auth", "can-i", "get", arg,
                            "--subresource", sub, "-n", "dev", "-v=8"], capture_output=True, text=True, env=env,
                           check=False, timeout=60)
        theirs = _sar(r.stderr)
        ours = build_request(mapper, "get", f"{arg}/{sub}", None, "dev", False, None)
        got, want = (ours.api_group, ours.resource, ours.subresource), (theirs["group"], theirs["resource"],
                                                                        theirs["subresource"])
        if got == want:
            agreed += 1
        else:
            mismatches.append(f"{arg}/{sub}: kubectl {want}, kubeward {got}")
    assert not mismatches, "\n".join(mismatches)
    print(f"\nkubectl resource arguments: {agreed}/{len(args) + len(subs)} resolve as kubectl v1.37 resolves them "
          f"({warned} unknown, warned as kubectl warns; {len(subs)} with --subresource)")
    assert warned >= 10 and len(args) > 200
