"""What every resumable control-plane rotation shares (`encryption rotate`, `creds rotate-sa-key`, `pki rotate-ca`).

A rotation is a sequence of named steps on one control-plane node. Each step edits files, runs the operator's
restart command, waits for the apiserver to be ready and checks its effect; only then is the step recorded in the
state file (0600, written atomically). Every step is idempotent, so a run killed anywhere — even after the
restart and before the record — is resumed by running the command again.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import ClassVar, Self

import orjson

from ..safefile import write_file
from ..sources.cluster import Client

READY_TIMEOUT = 180.0


class RotationError(Exception):
    """A step's check failed: the message says which and why; nothing after it was done."""


class PathState:
    """A rotation's record: the last step done and the host paths (as the manifests name them) of the files it
    works with; never key material. Subclasses are slotted dataclasses of strings, `step` first; `STEPS` names
    the steps a state file may hold."""

    STEPS: ClassVar[tuple[str, ...]] = ()
    step: str  # each subclass's first field (declared here for its readers, not a field of this base)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)  # type: ignore[call-overload]

    @classmethod
    def load(cls, path: Path) -> Self | None:
        """The recorded state, None when there is none yet; an unreadable or foreign file is one clear error."""
        try:
            d = orjson.loads(path.read_bytes())
            names = [f.name for f in fields(cls)]  # type: ignore[arg-type]  # a dataclass subclass
            st = cls(**{k: str(d[k]) for k in names})
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise RotationError(f"{path}: unreadable rotation state ({type(exc).__name__})") from None
        if cls.STEPS and st.step not in cls.STEPS:
            raise RotationError(f"{path}: unknown step {st.step!r}")
        return st


def save_state(path: Path, data: bytes) -> None:
    """The state file: 0600 (it names key files, and may briefly hold a secret), replaced atomically."""
    write_file(path, data + b"\n", mode=0o600, replace=True, make_dirs=False)


def wait_ready(client: Client, timeout: float = READY_TIMEOUT) -> None:
    """Until the apiserver's /readyz answers 200 (every post-start hook done, the new flags in effect)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            status, _, _ = client.call("GET", "/readyz")
            if status == 200:
                return
            last = f"HTTP {status}"
        except Exception as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise RotationError(f"kube-apiserver not ready {timeout:.0f}s after the restart ({last})")


def command_restart(argv: str) -> Callable[[], None]:
    """The operator's restart command (run without a shell), which must exit 0."""
    args = shlex.split(argv)
    if not args:
        raise RotationError("--restart-command is empty")

    def restart() -> None:
        out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600)
        if out.returncode != 0:
            tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
            raise RotationError(f"restart command exited {out.returncode}: {tail}")

    return restart


class Steps:
    """The step loop: from the recorded step, run each next action, then record it (`save`) — up to `until`."""

    def __init__(self, steps: tuple[str, ...], descriptions: Mapping[str, str], client: Client,
                 restart: Callable[[], None], say: Callable[[str], None]) -> None:
        self.steps, self.descriptions = steps, descriptions
        self.client, self.restart_fn, self.say = client, restart, say

    def restart(self) -> None:
        self.restart_fn()
        wait_ready(self.client)

    def advance(self, current: str, actions: Mapping[str, Callable[[], None]], record: Callable[[str], None],
                until: str | None = None) -> str:
        """Run the actions after `current` (keyed by the step they start from) up to `until` (default: the last
        step); `record(step)` saves each completed one. Returns the last step recorded."""
        stop = self.steps.index(until or self.steps[-1])
        while self.steps.index(current) < stop:
            nxt = self.steps[self.steps.index(current) + 1]
            self.say(f"step {nxt}: {self.descriptions[nxt]}")
            actions[current]()
            record(nxt)
            current = nxt
            self.say(f"step {nxt}: done")
        return current

    def run_recorded(self, state: PathState, actions: Mapping[str, Callable[[], None]], path: Path,
                     until: str) -> None:
        """`advance` from a PathState's step, the state file rewritten (0600, atomically) after each step."""
        def record(step: str) -> None:
            state.step = step
            save_state(path, state.to_json())

        if self.steps.index(state.step) < self.steps.index(until):
            self.advance(state.step, actions, record, until)
