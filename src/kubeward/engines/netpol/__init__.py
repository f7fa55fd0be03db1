"""NetworkPolicy engine: exact upstream semantics, reachability by equivalence classes, explain, lint, generate.

Compile once (`from_snapshot`), then query many times: `decide`/`evaluate_flow` for one connection,
`ClassIndex(cluster).matrix(port, protocol)` for the whole pod matrix.
"""

from .classes import ClassIndex, ClassMatrix
from .cluster import Cluster, build, from_snapshot
from .decide import Decision, decide, evaluate_flow
from .model import PROTOCOLS, External, Pod
from .policy import Policy, compile_policy

__all__ = [
    "PROTOCOLS", "ClassIndex", "ClassMatrix", "Cluster", "Decision", "External", "Pod", "Policy", "build",
    "compile_policy", "decide", "evaluate_flow", "from_snapshot",
]
