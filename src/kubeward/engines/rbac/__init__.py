"""The RBAC engine: an exact offline kube-apiserver authorizer, who-can, access matrix, risks and escalation paths.

Importable without the CLI: `RBACIndex.from_snapshot(snapshot)` compiles once; queries are cheap afterwards.
"""

from .index import Allowed, Grant, RBACIndex, role_label
from .matching import rule_allows
from .model import Binding, Decision, Request, Rule, Subject, UserInfo, user_info

__all__ = [
    "Allowed", "Binding", "Decision", "Grant", "RBACIndex", "Request", "Rule", "Subject", "UserInfo",
    "role_label", "rule_allows", "user_info",
]
