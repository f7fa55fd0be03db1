"""Support windows of Kubernetes minors (https://kubernetes.io/releases/): a minor is actively supported until its
maintenance mode starts, then gets only critical and security fixes until its end of life, then none.

The dates come from a dated table shipped with kubeward (data/k8s-releases.json); a minor newer than the table is
said to be unknown, never guessed supported, and a table older than STALE_DAYS is a finding of its own.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from ..findings import ControlMeta, Finding, Location, ObjectRef, Severity
from ..shipped import data_file
from .components import RELEASE, Found

TABLE = "k8s-releases.json"
STALE_DAYS = 120  # a minor is released about every four months: an older table may miss one
_UPGRADE = "Upgrade to a supported Kubernetes minor (https://kubernetes.io/releases/)."
SUPPORTED = ControlMeta("KW-V020", "Kubernetes minor is supported", Severity.INFO, "versions",
                        remediation="Nothing to do: the minor receives fixes; plan the upgrade before maintenance.",
                        description="The minor is before its maintenance mode start date (kubernetes.io/releases).")
MAINTENANCE = ControlMeta("KW-V021", "Kubernetes minor is in maintenance mode", Severity.LOW, "versions",
                          remediation=_UPGRADE,
                          description="Between maintenance mode start and end of life only critical and security "
                                      "fixes are released.")
END_OF_LIFE = ControlMeta("KW-V022", "Kubernetes minor is end of life", Severity.HIGH, "versions",
                          remediation=_UPGRADE,
                          description="No fixes, security fixes included, after the end of life date.")
UNKNOWN = ControlMeta("KW-V023", "Kubernetes minor is not in the release table", Severity.MEDIUM, "versions",
                      remediation="Use a kubeward release with a newer release table.",
                      description="A minor newer than the shipped table: its support window is not known.")
TABLE_DATE = ControlMeta("KW-V024", "Release table used", Severity.INFO, "versions",
                         remediation="Nothing to do: says which dated table judged the support windows.",
                         description="Every versions report names the release table and its date.")
TABLE_STALE = ControlMeta("KW-V025", "Release table is older than 120 days", Severity.MEDIUM, "versions",
                          remediation="Use a kubeward release with a newer release table.",
                          description="An old table misses newer minors and changed end of life dates.")
SUPPORT_CONTROLS = (SUPPORTED, MAINTENANCE, END_OF_LIFE, UNKNOWN, TABLE_DATE, TABLE_STALE)
TABLE_REF = ObjectRef("kubeward.io/v1", "ReleaseTable", None, "kubernetes-releases")


@dataclass(frozen=True, slots=True)
class Window:
    minor: int
    released: dt.date | None
    maintenance: dt.date | None
    eol: dt.date


@dataclass(frozen=True, slots=True)
class Table:
    date: dt.date
    source: str
    windows: dict[int, Window]  # 1.N -> N

    def describe(self) -> str:
        """One line for stderr: where the table comes from (its first address; the data file names all) and its date."""
        return f"{self.source.split(' ', 1)[0]}, dated {self.date.isoformat()}"


def _date(text: object) -> dt.date | None:
    return dt.date.fromisoformat(str(text)) if text else None


@cache
def shipped() -> Table:
    doc = json.loads(data_file(TABLE).read_bytes())
    windows = {}
    for m in doc["minors"]:
        major, minor = (int(x) for x in m["minor"].split("."))
        assert major == 1
        eol = _date(m["eol"])
        assert eol is not None
        windows[minor] = Window(minor, _date(m.get("released")), _date(m.get("maintenance")), eol)
    return Table(dt.date.fromisoformat(doc["date"]), doc["source"], windows)


def status(table: Table, minor: int, today: dt.date) -> tuple[ControlMeta, str]:
    """(the control that holds, what to say) for Kubernetes 1.<minor> on `today`."""
    w = table.windows.get(minor)
    if w is None:
        if minor < min(table.windows):
            oldest = table.windows[min(table.windows)]
            return END_OF_LIFE, f"end of life (before 1.{oldest.minor}, which ended {oldest.eol.isoformat()})"
        return UNKNOWN, (f"newer than the release table (dated {table.date.isoformat()}, newest 1."
                         f"{max(table.windows)}): its support window is not known")
    released = f"released {w.released.isoformat()}; " if w.released else ""
    if today >= w.eol:
        return END_OF_LIFE, f"end of life since {w.eol.isoformat()} ({released}{(today - w.eol).days} days ago)"
    if w.maintenance is not None and today >= w.maintenance:
        return MAINTENANCE, (f"in maintenance mode since {w.maintenance.isoformat()} (critical and security fixes "
                             f"only), end of life {w.eol.isoformat()} ({released}{(w.eol - today).days} days left)")
    until = f"maintenance mode from {w.maintenance.isoformat()}, " if w.maintenance else ""
    return SUPPORTED, f"supported ({released}{until}end of life {w.eol.isoformat()})"


def support_findings(found: Iterable[Found], today: dt.date, table: Table | None = None) -> Iterator[Finding]:
    """The table's own date (always), its age when old, and one finding per Kubernetes component version found
    (add-ons such as ingress-nginx have their own release lines and are not judged here)."""
    table = table or shipped()
    age = (today - table.date).days
    yield Finding(TABLE_DATE, TABLE_REF, Location(), "/date", f"{table.describe()}; {age} days old on "
                  f"{today.isoformat()}")
    if age > STALE_DAYS:
        yield Finding(TABLE_STALE, TABLE_REF, Location(), "/date",
                      f"the release table is dated {table.date.isoformat()}, {age} days before {today.isoformat()} "
                      f"(more than {STALE_DAYS}): newer minors and changed dates are not in it")
    for f in found:
        if f.component not in RELEASE or f.version.major != 1:
            continue
        meta, said = status(table, f.version.minor, today)
        yield Finding(meta, f.object, f.location, f.path,
                      f"{f.component} {f.text}: Kubernetes 1.{f.version.minor} is {said}")
