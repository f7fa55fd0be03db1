"""The vulnerability data kubeward ships: the Kubernetes CVE feed in OSV format, one dated, gzip-compressed
snapshot (data/k8s-cve-feed-osv.json.gz, Apache-2.0, see its NOTICE and LICENSE beside it)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..shipped import data_file
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
        """`SOURCE at COMMIT, dated …` for a checkout; `SOURCE (how it was made), dated …` otherwise."""
        how = f" ({self.commit})" if " " in self.commit else f" at {self.commit}" if self.commit else ""
        return f"{self.source}{how}, dated {self.date.isoformat()}, {len(self.records)} records"


def parse_feed(doc: Any) -> Feed:
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise OSVError("feed: expected an object with a records list")
    try:
        date = dt.date.fromisoformat(str(doc.get("date")))
    except ValueError:
        raise OSVError(f"feed: date {doc.get('date')!r} is not YYYY-MM-DD") from None
    records = tuple(parse_record(r) for r in doc["records"])
    return Feed(str(doc.get("source", "")), str(doc.get("commit", "")), date, records)


MAX_FEED_BYTES = 64 << 20  # a feed document or record file larger than this is refused (hostile input)
MAX_RECORDS = 100_000


def _read(path: Path) -> Any:
    if path.stat().st_size > MAX_FEED_BYTES:
        raise OSVError(f"{path}: larger than {MAX_FEED_BYTES >> 20} MiB")
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        with gzip.open(io.BytesIO(raw)) as g:  # bounded: a gzip bomb stops at the limit
            raw = g.read(MAX_FEED_BYTES + 1)
        if len(raw) > MAX_FEED_BYTES:
            raise OSVError(f"{path}: more than {MAX_FEED_BYTES >> 20} MiB uncompressed")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise OSVError(f"{path}: not JSON ({exc})") from None


def load_path(path: str) -> Feed:
    """Data the user gives instead of the shipped snapshot: a feed document like the shipped one
    (`{"date", "records": [...]}`, optionally .gz), or a folder of OSV record files (a checkout of
    kubernetes-sigs/cve-feed-osv), dated by its newest record's `modified`."""
    p = Path(path)
    if not p.exists():
        raise OSVError(f"{path}: no such file or folder")
    if p.is_file():
        return parse_feed(_read(p))
    files = sorted(p.glob("*.json"))
    if not files:
        raise OSVError(f"{path}: no OSV *.json records in the folder")
    if len(files) > MAX_RECORDS:
        raise OSVError(f"{path}: more than {MAX_RECORDS} records")
    records = []
    for f in files:
        try:
            records.append(parse_record(_read(f)))
        except OSVError as exc:
            raise OSVError(f"{f}: {exc}") from None
    newest = max((r.modified[:10] for r in records if r.modified), default="")
    try:
        date = dt.date.fromisoformat(newest)
    except ValueError:
        raise OSVError(f"{path}: no record has a modified date to date the data by") from None
    return Feed(str(p), "a local folder, dated by its newest record", date, tuple(records))


@cache
def shipped() -> Feed:
    raw = data_file(SNAPSHOT).read_bytes()
    return parse_feed(json.loads(gzip.decompress(raw)))
