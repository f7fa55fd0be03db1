"""CIS Kubernetes Benchmark node checks (control plane, etcd, worker), judged from node configuration.

IDs follow the CIS 1.12 numbering used by kube-bench (cfg/cis-1.12/master.yaml, etcd.yaml, node.yaml). Unlike a
flag-is-set test, every value is read with its component's typed default (an absent flag is its default, e.g.
kube-apiserver --anonymous-auth and --profiling default to true, --authorization-mode to AlwaysAllow), admission
plugins are the effective set (defaults + enabled - disabled), and three checks look behind the flags:
the etcd CA really differs from the apiserver client CA, the EncryptionConfiguration really encrypts secrets,
and the audit policy exists and logs something.

One module per component or topic (COMPONENT_MODULES), each registering its checks in the one control registry
(shape `node`, the component as the check's kind); `base` holds what they share, `runner` judges a NodeConfig,
`benchmark` lays a report out as kube-bench does. A new component (or the CIS worker section's kube-proxy) is
a new module here, listed below, plus its name in `base` when the runner should report it missing.
"""

from __future__ import annotations

import importlib

COMPONENT_MODULES = ("files", "apiserver", "controllermanager", "scheduler", "etcd", "kubelet", "kubeproxy",
                     "drift")
for _name in COMPONENT_MODULES:
    importlib.import_module(f"{__name__}.{_name}")

from .apiserver import DEFAULT_ON_ADMISSION, effective_admission  # noqa: E402
from .base import CONTROL_PLANE, NotRead  # noqa: E402
from .benchmark import (  # noqa: E402
    FAIL,
    MANUAL,
    MANUAL_STATE,
    PASS,
    SECTIONS,
    SKIP,
    STATES,
    TARGETS,
    WARN,
    BenchmarkCheck,
    benchmark,
)
from .runner import live_only, node_checks, run  # noqa: E402

__all__ = ["CONTROL_PLANE", "DEFAULT_ON_ADMISSION", "FAIL", "MANUAL", "MANUAL_STATE", "PASS", "SECTIONS", "SKIP",
           "STATES", "TARGETS", "WARN", "BenchmarkCheck", "NotRead", "benchmark", "effective_admission",
           "live_only", "node_checks", "run"]
