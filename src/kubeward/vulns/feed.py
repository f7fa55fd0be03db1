"""The vulnerability data kubeward ships: the Kubernetes CVE feed in OSV format, one dated, gzip-compressed
snapshot (data/k8s-cve-feed-osv.json.gz, Apache-2.0, see its NOTICE and LICENSE beside it)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .osv import OSVError, Record, parse_record

SNAPSHOT = "k8s-cve-feed-osv.json.gz"
STALE_DAYS = 90  # older than this, the snapshot misses CVEs a user must hear about: a finding of its own


@dataclass(frozen=True, slots=True)
class Feed:
    source: str
    commit: str
    date: dt.date
    records: tuple[Record, ...]

    def age_days(self, today: dt.date) -> int:
        return (today - self.date).days

    def describe(self) -> str:
        return f"{self.source} at {self.commit}, dated {self.date.isoformat()}, {len(self.records)} records"


def parse_feed(doc: Any) -> Feed:
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise OSVError("feed: expected an object with a records list")
    try:
        date = dt.date.fromisoformat(str(doc.get("date")))
    except ValueError:
        raise OSVError(f"feed: date {doc.get('date')!r} is not YYYY-MM-DD") from None
    records = tuple(parse_record(r) for r in doc["records"])
    return Feed(str(doc.get("source", "")), str(doc.get("commit", "")), date, records)


@cache
def shipped() -> Feed:
    raw = resources.files("kubeward").joinpath("data", SNAPSHOT).read_bytes()
    return parse_feed(json.loads(gzip.decompress(raw)))
