"""`admission manifests`: the in-cluster webhook, built to pass kubeward's own scan.

Two replicas under PSS restricted with a PodDisruptionBudget, their own least RBAC (get/list/watch namespaces:
the label cache), a NetworkPolicy (ingress to the webhook port, egress to DNS and the API), a quota and limit
range, and a ValidatingWebhookConfiguration that leaves out kube-system and the webhook's own namespace (so a
broken webhook can always be repaired) and kubeward's own objects. No Secret is printed: the serving certificate
comes from `--tls-dir` files (loaded with `kubectl create secret tls`) or from cert-manager. With a client CA the
webhook requires the apiserver's client certificate (mutual TLS); the CA (public) goes in a ConfigMap, and the
probes become TCP probes, since the kubelet cannot present a certificate.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import __version__

NAME = "kubeward-admission"
CLIENT_CA = f"{NAME}-client-ca"
PORT = 8443
PART_OF = {"app.kubernetes.io/part-of": "kubeward"}
APP = {"app.kubernetes.io/name": NAME, **PART_OF}
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

# What the webhook judges: every kind a control judges when created or updated (docs/admission.md).
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "replicationcontrollers", "podtemplates", "services", "secrets", "configmaps", "namespaces",
          "serviceaccounts")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
    ("networking.k8s.io", ("ingresses", "networkpolicies")),
    ("rbac.authorization.k8s.io", ("roles", "rolebindings", "clusterroles", "clusterrolebindings")),
)


def _meta(name: str, namespace: str | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(APP)
    if annotations:
        meta["annotations"] = annotations
    return meta


def manifests(namespace: str = "kubeward", *, image: str = f"ghcr.io/kubeward/kubeward:{__version__}",
              fail_policy: str = "Fail", timeout: int = 10, ca_bundle: bytes | None = None,
              cert_manager: bool = False, client_ca: bytes | None = None) -> list[dict[str, Any]]:
    svc_dns = f"{NAME}.{namespace}.svc"
    pinned = "@sha256:" in image
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {**PART_OF, "pod-security.kubernetes.io/enforce": "restricted",
                                                     "pod-security.kubernetes.io/enforce-version": "latest"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, namespace),
         "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(NAME),
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": _meta(NAME),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(NAME, namespace),
         "data": {"admission.yaml": f"exemptions:\n  namespaces: [kube-system, {namespace}]\n"}},
        *([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CLIENT_CA, namespace),
             "data": {"ca.crt": client_ca.decode("ascii")}}] if client_ca is not None else []),
        _deployment(namespace, image, pinned, client_ca is not None),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(NAME, namespace),
         "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(APP)}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(NAME, namespace),
         "spec": {"type": "ClusterIP", "selector": dict(APP),
                  "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(NAME, namespace),
         "spec": {"podSelector": {"matchLabels": dict(APP)}, "policyTypes": ["Ingress", "Egress"],
                  # the apiserver calls from the node network: its address is not known here
                  "ingress": [{"ports": [{"port": PORT, "protocol": "TCP"}]}],
                  "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                             {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}]}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(NAME, namespace),
         "spec": {"hard": {"pods": "10", "requests.cpu": "2", "requests.memory": "2Gi", "limits.cpu": "4",
                           "limits.memory": "4Gi"}}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta(NAME, namespace),
         "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                              "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]}},
    ]
    if cert_manager:
        objs += [
            {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": _meta(f"{NAME}-selfsigned", namespace),
             "spec": {"selfSigned": {}}},
            {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": _meta(NAME, namespace),
             "spec": {"secretName": f"{NAME}-tls", "dnsNames": [svc_dns, f"{svc_dns}.cluster.local"],
                      "issuerRef": {"name": f"{NAME}-selfsigned", "kind": "Issuer"},
                      "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}}},
        ]
    objs.append(_webhook_config(namespace, fail_policy, timeout, ca_bundle, cert_manager))
    return objs


def _deployment(namespace: str, image: str, pinned: bool, mutual_tls: bool = False) -> dict[str, Any]:
    probe = {"scheme": "HTTPS", "port": "https"}
    args = ["admission", "serve", "--host", "0.0.0.0", "--port", str(PORT), "--tls-cert", "/tls/tls.crt",
            "--tls-key", "/tls/tls.key", "--config", "/config/admission.yaml"]
    if mutual_tls:
        args += ["--client-ca", "/client-ca/ca.crt"]

    def check(path: str) -> dict[str, Any]:
        # /healthz and /readyz sit behind the client-certificate handshake, which the kubelet cannot make
        return {"tcpSocket": {"port": "https"}} if mutual_tls else {"httpGet": {"path": path, **probe}}
    container: dict[str, Any] = {
        "name": "webhook", "image": image, "imagePullPolicy": "IfNotPresent" if pinned else "Always",
        "args": args,
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {**check("/readyz"), "periodSeconds": 5},
        "livenessProbe": {**check("/healthz"), "periodSeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "runAsUser": 65532, "runAsGroup": 65532, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True},
                         {"name": "config", "mountPath": "/config", "readOnly": True},
                         {"name": "api-token", "mountPath": SA_MOUNT, "readOnly": True}],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "tls", "secret": {"secretName": f"{NAME}-tls"}},
        {"name": "config", "configMap": {"name": NAME}},
        {"name": "api-token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    ]
    if mutual_tls:
        container["volumeMounts"].append({"name": "client-ca", "mountPath": "/client-ca", "readOnly": True})
        volumes.append({"name": "client-ca", "configMap": {"name": CLIENT_CA}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME, namespace),
        "spec": {
            "replicas": 2, "selector": {"matchLabels": dict(APP)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": dict(APP)},
                "spec": {
                    "serviceAccountName": NAME,
                    # The token is mounted explicitly, for the namespace watch only (a bound, expiring token).
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                                        "fsGroup": 65532},
                    "priorityClassName": "system-cluster-critical",
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "ScheduleAnyway",
                                                   "labelSelector": {"matchLabels": dict(APP)}}],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _webhook_config(namespace: str, fail_policy: str, timeout: int, ca_bundle: bytes | None,
                    cert_manager: bool) -> dict[str, Any]:
    client: dict[str, Any] = {"service": {"name": NAME, "namespace": namespace, "path": "/validate", "port": 443}}
    if ca_bundle is not None:
        client["caBundle"] = base64.b64encode(ca_bundle).decode()
    inject = {"cert-manager.io/inject-ca-from": f"{namespace}/{NAME}"} if cert_manager else None
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": _meta(NAME, annotations=inject),
        "webhooks": [{
            "name": "validate.admission.kubeward.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": fail_policy, "timeoutSeconds": timeout, "matchPolicy": "Equivalent",
            "clientConfig": client,
            "rules": [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": list(resources), "scope": "*"} for group, resources in RULES],
            # kube-system and the webhook's own namespace are never judged, so a broken webhook can be repaired
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                        "values": ["kube-system", namespace]}]},
            "objectSelector": {"matchExpressions": [{"key": "app.kubernetes.io/part-of", "operator": "NotIn",
                                                     "values": ["kubeward"]}]},
        }],
    }


def serving_certificate(namespace: str, days: int = 365) -> tuple[bytes, bytes, bytes]:
    """(ca.crt, tls.crt, tls.key) PEM from kubeward's PKI: a CA of its own and a serving certificate for the
    Service's DNS names (the apiserver verifies the name it dials, `<svc>.<ns>.svc`)."""
    from ..pki.files import cert_pem, key_pem
    from ..pki.issue import SERVER_AUTH, AltNames, LeafSpec, new_ca, new_key, sign_leaf

    ca_key = new_key("ecdsa")
    ca = new_ca(f"{NAME}-ca", ca_key)
    key = new_key("ecdsa")
    alt = AltNames()
    svc = f"{NAME}.{namespace}.svc"
    alt.add([svc, f"{svc}.cluster.local"])
    leaf = sign_leaf(LeafSpec(svc, usages=(SERVER_AUTH,), alt=alt), key, ca, ca_key, days=days)
    return cert_pem(ca), cert_pem(leaf), key_pem(key)
