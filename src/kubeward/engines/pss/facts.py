"""Pod Security facts for every other reader (scan controls, audit detections, admission): the checks' own verdicts,
at the latest policy version, narrowed to the container or pod field that fails.

A PSA check judges a whole pod and names the offenders in one message. The scan wants one finding per offending
container with a path, so `faults` re-runs the same upstream-exact check function on views holding one container
(without annotations, with the pod's securityContext it inherits) and on a view holding none (with the
annotations and pod-level fields). A container view's failure is the container's only when its detail names the
container (a pod-level setting also fails every container view, and is the pod view's fault). Every check is a
disjunction of per-container, pod-level and per-annotation conditions, so the union of the faults is the whole
pod's verdict; should one ever not be, the whole pod's verdict is kept (one pod-level fault), so a fact can never
be lost between the engine and the scan.
"""

from __future__ import annotations

from ...records import record
from .messages import render
from .pod import Obj, PodInput
from .registry import CHECKS, CheckFn
from .versions import MAX_MINOR

_EMPTY: Obj = {}


def _latest() -> dict[str, CheckFn]:
    out = {}
    for c in CHECKS:
        vc = c.at(MAX_MINOR)
        assert vc is not None
        out[c.id] = vc.check
    return out


LATEST: dict[str, CheckFn] = _latest()
_NAMED = 'container "'  # how PSA details name a container: `container "a"`, `pod or container "a"`


@record(frozen=True)
class Fault:
    """One failing part of a pod for one check: a container (`container` is its dict) or the pod itself."""

    container: Obj | None
    reason: str
    detail: str

    @property
    def message(self) -> str:
        return render(self.reason or "unknown forbidden reason", self.detail)


def _view(p: PodInput, containers: list[Obj], annotations: Obj) -> PodInput:
    view = PodInput.__new__(PodInput)
    view.meta, view.spec, view.pod_sc = p.meta, p.spec, p.pod_sc
    view.annotations, view.containers = annotations, containers
    return view


def fails(check_id: str, p: PodInput) -> bool:
    """Whether the pod fails the check at the latest version (what PSA and `kubeward pss check` decide)."""
    return LATEST[check_id](p) is not None


def faults(check_id: str, p: PodInput) -> list[Fault]:
    """The containers (in PSA's visiting order) and pod-level settings that make the pod fail the check; empty
    exactly when the pod passes it."""
    fn = LATEST[check_id]
    whole = fn(p)
    if whole is None:
        return []
    out = []
    for c in p.containers:
        if (hit := fn(_view(p, [c], _EMPTY))) is not None and _NAMED in hit[1]:
            out.append(Fault(c, *hit))
    if (hit := fn(_view(p, [], p.annotations))) is not None:
        out.append(Fault(None, *hit))
    return out or [Fault(None, *whole)]
