"""`audit policy generate`: audit policies that log what security needs, explained rule by rule.

Order matters (first match wins, checker.go), so noise is dropped first, then sensitive resources are pinned to
Metadata before any broader rule could log their bodies, then the interesting writes get bodies, then a catch-all.
Sources: the kube-apiserver audit docs (kubernetes.io/docs/tasks/debug/debug-cluster/audit/) and the GCE
cluster policy (cluster/gce/gci/configure-helper.sh) for the noisy system traffic.
"""

from __future__ import annotations

from typing import Any

import yaml

PROFILES = ("minimal", "recommended", "forensic")
WRITE = ["create", "update", "patch", "delete", "deletecollection"]
READ = ["get", "list", "watch"]

Rule = tuple[str, dict[str, Any]]

EVENT_DELETES: Rule = (
    "Event deletes are covering tracks (detection events-deleted): logged before the Event noise rule below.",
    {"level": "Metadata", "verbs": ["delete", "deletecollection"],
     "resources": [{"group": "", "resources": ["events"]}, {"group": "events.k8s.io", "resources": ["events"]}]})

NOISE: list[Rule] = [
    ("Health, version and discovery probes: constant, anonymous-safe, nothing to investigate.",
     {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/version/",
                                           "/openapi*", "/swagger*"]}),
    ("kube-proxy watching endpoints and services: the same reads every few seconds.",
     {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"],
      "resources": [{"group": "", "resources": ["endpoints", "services", "services/status"]},
                    {"group": "discovery.k8s.io", "resources": ["endpointslices"]}]}),
    ("Kubelets reading their own node: heartbeat traffic.",
     {"level": "None", "userGroups": ["system:nodes"], "verbs": ["get"],
      "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}]}),
    ("Leader-election and node leases renewed by the control plane and kubelets.",
     {"level": "None", "verbs": ["get", "update"],
      "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]}),
    ("Event objects: high volume, not security relevant (the events themselves are not audit records).",
     {"level": "None", "resources": [{"group": "", "resources": ["events"]},
                                    {"group": "events.k8s.io", "resources": ["events"]}]}),
]

CONFIGMAP_WRITES: Rule = (
    "Configmap writes with the request body, so `configmap-credentials` can see credentials put in a configmap "
    "(they are then in the log once, at the write that must be fixed; reads stay at Metadata below).",
    {"level": "Request", "verbs": ["create", "update", "patch"],
     "resources": [{"group": "", "resources": ["configmaps"]}]})

SENSITIVE: list[Rule] = [
    ("Secrets, configmap reads, token reviews and token requests carry credentials in their bodies: who touched "
     "them is logged, never the content. This rule comes before every other rule that logs bodies.",
     {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets", "configmaps",
                                                                    "serviceaccounts/token"]},
                                        {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]}),
]

ACCESS = ["pods/exec", "pods/attach", "pods/portforward", "pods/ephemeralcontainers", "nodes/proxy"]

EXEC_META: Rule = (
    "Interactive access to containers and kubelets (exec, attach, port-forward, ephemeral debug containers, node "
    "proxy).",
    {"level": "Metadata", "resources": [{"group": "", "resources": ACCESS}]})

EXEC_FULL: Rule = (
    "Interactive access to containers and kubelets (exec, attach, port-forward, ephemeral debug containers, node "
    "proxy), with the request (the command is in the URI; stream contents are never captured by the apiserver).",
    {"level": "RequestResponse", "resources": [{"group": "", "resources": ACCESS}]})

KUBELET_AUTHZ: Rule = (
    "The kubelets' SubjectAccessReviews with their body: each is a call to a kubelet's own API (port 10250), "
    "and the body names the caller (detection kubelet-api-access).",
    {"level": "Request", "userGroups": ["system:nodes"], "verbs": ["create"],
     "resources": [{"group": "authorization.k8s.io", "resources": ["subjectaccessreviews"]}]})

ANONYMOUS: Rule = (
    "Anonymous requests, reads included: rare, and each one allowed is a finding (detection anonymous-allowed).",
    {"level": "Metadata", "userGroups": ["system:unauthenticated"]})

RBAC_WRITES: Rule = (
    "RBAC and certificate changes with full bodies: who granted what to whom, which certificate was approved.",
    {"level": "RequestResponse", "verbs": WRITE,
     "resources": [{"group": "rbac.authorization.k8s.io"},
                   {"group": "certificates.k8s.io"},
                   {"group": "admissionregistration.k8s.io"}]})

WORKLOAD_WRITES: Rule = (
    "Workload, service and network changes with the request body: privileged pods, host namespaces, hostPath "
    "mounts, NodePort services and ingresses are visible to `kubeward audit analyze`.",
    {"level": "Request", "verbs": WRITE,
     "resources": [{"group": "", "resources": ["pods", "services", "serviceaccounts", "namespaces", "nodes",
                                              "persistentvolumes", "persistentvolumeclaims"]},
                   {"group": "apps"}, {"group": "batch"}, {"group": "networking.k8s.io"}, {"group": "policy"}]})

READS_NONE: Rule = ("Other reads: not logged in the minimal profile.", {"level": "None", "verbs": READ})

CATCH_ALL: Rule = ("Everything else: who did what, when, from where (no bodies).", {"level": "Metadata"})

ALL_WRITES_FULL: Rule = (
    "Every other write with request and response bodies (forensic reconstruction of changes).",
    {"level": "RequestResponse", "verbs": WRITE})


def profile_rules(profile: str) -> list[Rule]:
    """The rules in order. Every profile logs what the built-in detections need (audit/coverage.py, checked by
    tests and `audit policy check --for-detections`), except what `minimal` gives up by design: other reads
    (so 403 bursts and impersonation on reads) and the kubelets' SubjectAccessReview bodies."""
    noise = [NOISE[0], EVENT_DELETES, *NOISE[1:]]
    if profile == "minimal":
        return [*noise, CONFIGMAP_WRITES, *SENSITIVE, EXEC_META, ANONYMOUS, RBAC_WRITES, WORKLOAD_WRITES,
                READS_NONE, CATCH_ALL]
    if profile == "recommended":
        return [*noise, CONFIGMAP_WRITES, *SENSITIVE, EXEC_FULL, KUBELET_AUTHZ, RBAC_WRITES, WORKLOAD_WRITES,
                CATCH_ALL]
    if profile == "forensic":
        return [NOISE[0], CONFIGMAP_WRITES, *SENSITIVE, EXEC_FULL, ALL_WRITES_FULL, CATCH_ALL]
    raise ValueError(f"unknown profile {profile!r} (one of: {', '.join(PROFILES)})")


def policy_document(profile: str) -> dict[str, Any]:
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "omitManagedFields": True, "rules": [r for _, r in profile_rules(profile)]}


def generate(profile: str) -> str:
    """The policy as commented YAML (each rule preceded by why it is there)."""
    out = [
        f"# kubeward audit policy, profile {profile!r}. Use with kube-apiserver --audit-policy-file.",
        "# Rules are evaluated in order and the first match wins; unmatched requests are not logged.",
        "apiVersion: audit.k8s.io/v1",
        "kind: Policy",
        "# RequestReceived duplicates every request; ResponseComplete carries the same metadata plus the outcome.",
        "omitStages: [RequestReceived]",
        "# managedFields bloat bodies without adding security information.",
        "omitManagedFields: true",
        "rules:",
    ]
    for comment, rule in profile_rules(profile):
        out.append(f"# {comment}")
        body = yaml.safe_dump([rule], sort_keys=False, default_flow_style=None, width=110)
        out.extend(body.rstrip("\n").splitlines())
    return "\n".join(out) + "\n"
