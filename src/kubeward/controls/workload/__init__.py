"""Workload hardening controls (NSA-CISA hardening guide, CIS Kubernetes Benchmark section 5), one module per topic.

Every pod control sees Pods and the pod templates of every workload kind through PodView, and walks init,
regular and ephemeral containers. Fields that exist at both pod and container level are resolved the way the
kubelet does: the container's securityContext value wins, the pod's securityContext value is the fallback
(k8s.io/api core/v1 types.go, PodSecurityContext: "If set in both SecurityContext and PodSecurityContext, the
value specified in SecurityContext takes precedence"). A Pod Security fact (privileged, host namespaces,
capabilities, seccomp, ...) is never re-coded here: the controls read the PSS engine's checks
(engines/pss/facts.py), so a finding exists exactly when Pod Security Admission would refuse the pod, and one
field that fails both a baseline check and the restricted check overriding it is one finding carrying both levels
(controls/pss.py).

Importing this package registers every workload control.
"""

from __future__ import annotations

from . import resources  # noqa: F401
from .accounts import (
    SENSITIVE_NAME,
    credential_value,
    default_service_account,
    env_literal_secret,
    placeholder,
    sa_token_automount,
    secret_env,
    sensitive_name,
)
from .capabilities import (
    BASELINE_CAPS,
    extra_capabilities,
    net_raw_kept,
    not_drop_all,
    restricted_capabilities,
)
from .common import (
    RUNNABLE,
    pss_hits,
    pss_input,
)
from .health import (
    NAMESPACED_KINDS,
    PSA_ENFORCE,
    SYSTEM_NAMESPACES,
    default_namespace,
    ephemeral_present,
    namespace_no_psa,
)
from .host import (
    host_path,
    host_path_writable,
    host_ports,
    runtime_socket,
    sensitive_host_path,
)
from .identity import (
    HIGH_ID,
    root_groups,
    run_as_gid0,
    writable_root_fs,
)
from .images import (
    SYSTEM_PRIORITY_CLASSES,
    Image,
    cluster_component,
    image_registry_not_allowed,
    kube_system_workload,
    parse_image,
    pull_policy,
    registry_allowed,
    split_registry,
)
from .sandbox import (
    git_repo_volume,
    restricted_volume,
    share_process_namespace,
    unsafe_sysctls,
)

__all__ = [
    "BASELINE_CAPS",
    "HIGH_ID",
    "NAMESPACED_KINDS",
    "PSA_ENFORCE",
    "RUNNABLE",
    "SENSITIVE_NAME",
    "SYSTEM_NAMESPACES",
    "SYSTEM_PRIORITY_CLASSES",
    "Image",
    "cluster_component",
    "credential_value",
    "default_namespace",
    "default_service_account",
    "env_literal_secret",
    "ephemeral_present",
    "extra_capabilities",
    "git_repo_volume",
    "host_path",
    "host_path_writable",
    "host_ports",
    "image_registry_not_allowed",
    "kube_system_workload",
    "namespace_no_psa",
    "net_raw_kept",
    "not_drop_all",
    "parse_image",
    "placeholder",
    "pss_hits",
    "pss_input",
    "pull_policy",
    "registry_allowed",
    "restricted_capabilities",
    "restricted_volume",
    "root_groups",
    "run_as_gid0",
    "runtime_socket",
    "sa_token_automount",
    "secret_env",
    "sensitive_host_path",
    "sensitive_name",
    "share_process_namespace",
    "split_registry",
    "unsafe_sysctls",
    "writable_root_fs",
]
