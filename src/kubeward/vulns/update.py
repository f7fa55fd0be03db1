"""`kubeward vulns update`: refresh the vulnerability data into the user's cache, verified, atomically.

Two kinds of data, each with its own file under the cache folder (`$XDG_CACHE_HOME/kubeward/vulndata`, by default
`~/.cache/kubeward/vulndata`; `KUBEWARD_CACHE_DIR` overrides the `kubeward` part), so a pip user can write them:

- `osv.json.gz`: OSV records with version ranges (a folder or zip of kubernetes-sigs/cve-feed-osv records, or a
  feed document like the shipped one), what `vulns` judges versions with; the shipped snapshot stays the
  fallback when there is none;
- `official.json`: the CVE list of the official Kubernetes CVE feed
  (https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json, JSON Feed 1.1,
  https://www.jsonfeed.org/version/1.1/). It has no version ranges; `vulns` reports each of its CVEs that the OSV
  data lacks as not judged, so a newer CVE is never silently missing.

A download is verified before anything is written: every record parsed, ids unique, the schema's required
fields present, at least one record; a failure leaves the old data as it was. Plain http is refused except to
the loopback address (a local mirror).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import ipaddress
import json
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .feed import MAX_FEED_BYTES, MAX_RECORDS, Feed, load_path
from .osv import OSVError, Record, parse_record

OFFICIAL_URL = "https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json"
OSV_FILE = "osv.json.gz"
OFFICIAL_FILE = "official.json"
TIMEOUT = 30.0
# OSV record files in a folder or archive: named for their id (CVE-2023-5528.json, GHSA-….json); other JSON in a
# repository archive (schemas, tooling) is not a record.
_RECORD_NAME = re.compile(r"[A-Z][A-Z0-9]*-[A-Za-z0-9._-]+\.json")


class UpdateError(ValueError):
    """A download or file that cannot be used (the message names it and why); the old data is kept."""


@dataclass(frozen=True, slots=True)
class Official:
    """The official feed's CVE list: ids (with summary and URL), its date and where it came from."""

    source: str
    date: dt.date
    items: tuple[tuple[str, str, str], ...]  # (id, summary, url)

    def describe(self) -> str:
        return f"{self.source}, dated {self.date.isoformat()}, {len(self.items)} CVEs"


def cache_dir() -> Path:
    base = os.environ.get("KUBEWARD_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubeward")
    return Path(base) / "vulndata"


# --- fetching ---------------------------------------------------------------------------------------------------

def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def fetch(url: str, limit: int = MAX_FEED_BYTES) -> bytes:
    """GET `url` (https, or http to the loopback address), at most `limit` bytes, the whole body or an error."""
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        raise UpdateError(f"{url}: only https URLs (or http to localhost) are fetched")
    req = urllib.request.Request(url, headers={"User-Agent": "kubeward-vulns-update",
                                               "Accept": "application/json, application/zip, */*"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # the scheme is checked above
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise UpdateError(f"{url}: larger than {limit >> 20} MiB")
            body = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise UpdateError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpdateError(f"{url}: {reason}") from None
    if len(body) > limit:
        raise UpdateError(f"{url}: larger than {limit >> 20} MiB")
    if length is not None and length.isdigit() and int(length) != len(body):
        raise UpdateError(f"{url}: truncated ({len(body)} of {length} bytes)")
    return body


# --- verifying --------------------------------------------------------------------------------------------------

def _json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UpdateError(f"{where}: not JSON ({exc}); truncated or not a feed") from None


def _unique(ids: Iterable[str], where: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise UpdateError(f"{where}: id {i} appears twice")
        seen.add(i)


def _date_of(text: Any) -> dt.date | None:
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_official(doc: Any, source: str) -> Official:
    """The official feed (JSON Feed 1.1: `version`, `title`, `items` with an `id` each) with its refresh date
    (`_kubernetes_io.feed_refreshed_at` or `updated_at`, else the newest item date)."""
    if not isinstance(doc, dict):
        raise UpdateError(f"{source}: not a JSON object")
    version = doc.get("version")
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/1"):
        raise UpdateError(f"{source}: version {version!r} is not a JSON Feed version (https://jsonfeed.org/version/1.1)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise UpdateError(f"{source}: items: not a list")
    if not items:
        raise UpdateError(f"{source}: no items: refusing to replace the data with nothing")
    if len(items) > MAX_RECORDS:
        raise UpdateError(f"{source}: more than {MAX_RECORDS} items")
    out: list[tuple[str, str, str]] = []
    dates: list[dt.date] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"].strip():
            raise UpdateError(f"{source}: items[{i}]: no string id (JSON Feed requires one)")
        out.append((item["id"].strip(), str(item.get("summary") or ""), str(item.get("url") or "")))
        for key in ("date_modified", "date_published"):
            if (d := _date_of(item.get(key))) is not None:
                dates.append(d)
    _unique((i for i, _, _ in out), source)
    ext = doc.get("_kubernetes_io")
    ext = ext if isinstance(ext, dict) else {}
    date = _date_of(ext.get("feed_refreshed_at")) or _date_of(ext.get("updated_at")) or max(dates, default=None)
    if date is None:
        raise UpdateError(f"{source}: no date (_kubernetes_io.feed_refreshed_at, updated_at or item dates)")
    return Official(source, date, tuple(out))


def _records(named: Iterable[tuple[str, bytes]], source: str) -> Feed:
    records: list[Record] = []
    for name, raw in named:
        try:
            records.append(parse_record(_json(raw, name)))
        except OSVError as exc:
            raise UpdateError(f"{name}: {exc}") from None
        if len(records) > MAX_RECORDS:
            raise UpdateError(f"{source}: more than {MAX_RECORDS} records")
    return _feed(records, source, f"verified by kubeward vulns update on {dt.date.today().isoformat()}")


def _feed(records: list[Record], source: str, commit: str) -> Feed:
    if not records:
        raise UpdateError(f"{source}: no OSV records: refusing to replace the data with nothing")
    _unique((r.id for r in records), source)
    for r in records:
        if _date_of(r.modified) is None:
            raise UpdateError(f"{source}: {r.id}: modified {r.modified!r} is not a date (OSV requires it)")
    date = max(d for r in records if (d := _date_of(r.modified)) is not None)
    return Feed(source, commit, date, tuple(records))


def records_from_zip(raw: bytes, source: str) -> Feed:
    """OSV records in a zip (a repository archive of kubernetes-sigs/cve-feed-osv), bounded in members and size."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise UpdateError(f"{source}: not a zip file ({exc})") from None
    members = [m for m in zf.infolist() if not m.is_dir() and _RECORD_NAME.fullmatch(Path(m.filename).name)]
    if len(members) > MAX_RECORDS:
        raise UpdateError(f"{source}: more than {MAX_RECORDS} records")
    total = 0

    def read() -> Iterable[tuple[str, bytes]]:
        nonlocal total
        for m in members:
            with zf.open(m) as f:  # the size header may lie: read at most the limit
                data = f.read(MAX_FEED_BYTES + 1)
            total += len(data)
            if len(data) > MAX_FEED_BYTES or total > MAX_FEED_BYTES:
                raise UpdateError(f"{source}: more than {MAX_FEED_BYTES >> 20} MiB uncompressed")
            yield f"{source}!{m.filename}", data

    try:
        return _records(read(), source)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a corrupt member
        raise UpdateError(f"{source}: {exc}") from None


def load_source(where: str | None) -> Feed | Official:
    """What `--from` names (default: the official feed): a URL (JSON Feed, feed document, OSV record or zip), a
    folder of OSV records, a zip of them, or a JSON file (JSON Feed or feed document)."""
    where = where or OFFICIAL_URL
    if "://" in where:
        raw = fetch(where)
        return _classify(raw, where)
    p = Path(where)
    if not p.exists():
        raise UpdateError(f"{where}: no such file or folder")
    if p.is_dir():
        try:
            feed = load_path(where)
        except OSVError as exc:
            raise UpdateError(str(exc)) from None
        return _feed(list(feed.records), where,
                     f"a local folder, verified by kubeward vulns update on {dt.date.today().isoformat()}")
    if p.stat().st_size > MAX_FEED_BYTES:
        raise UpdateError(f"{where}: larger than {MAX_FEED_BYTES >> 20} MiB")
    return _classify(p.read_bytes(), where)


def _classify(raw: bytes, source: str) -> Feed | Official:
    if raw[:2] == b"PK":
        return records_from_zip(raw, source)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(io.BytesIO(raw)) as g:
                raw = g.read(MAX_FEED_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise UpdateError(f"{source}: bad gzip data ({exc})") from None
        if len(raw) > MAX_FEED_BYTES:
            raise UpdateError(f"{source}: more than {MAX_FEED_BYTES >> 20} MiB uncompressed")
    doc = _json(raw, source)
    if isinstance(doc, dict) and ("items" in doc or "version" in doc):
        return parse_official(doc, source)
    if isinstance(doc, dict) and "records" in doc:
        from .feed import parse_feed

        try:
            feed = parse_feed(doc)
        except OSVError as exc:
            raise UpdateError(f"{source}: {exc}") from None
        return _feed(list(feed.records), feed.source or source, feed.commit or "feed document")
    if isinstance(doc, dict) and "id" in doc:
        return _records([(source, raw)], source)
    raise UpdateError(f"{source}: neither a JSON Feed (version, items), a feed document (records), an OSV record "
                      "nor a zip of OSV records")


# --- storing and reading back -----------------------------------------------------------------------------------

def store(data: Feed | Official, folder: Path | None = None) -> Path:
    """Write the verified data atomically (the old file stays until the new one is complete)."""
    from ..safefile import write_file

    folder = folder or cache_dir()
    if isinstance(data, Official):
        doc: dict[str, Any] = {"kind": "official-cve-feed", "source": data.source, "date": data.date.isoformat(),
                               "fetched": dt.date.today().isoformat(),
                               "items": [{"id": i, "summary": s, "url": u} for i, s, u in data.items]}
        path, raw = folder / OFFICIAL_FILE, json.dumps(doc, indent=1).encode()
    else:
        doc = {"source": data.source, "commit": data.commit, "date": data.date.isoformat(),
               "fetched": dt.date.today().isoformat(), "records": [_record_json(r) for r in data.records]}
        path, raw = folder / OSV_FILE, gzip.compress(json.dumps(doc).encode(), mtime=0)
    write_file(path, raw, mode=0o644, replace=True, dir_mode=0o755)
    return path


def _record_json(r: Record) -> dict[str, Any]:
    """A record back in OSV form (what parse_record reads), for the stored feed document."""
    def event(e: Any) -> dict[str, str]:
        if e.version is None:
            return {e.kind: "*"}
        text = "0" if e.kind == "introduced" and str(e.version) == "0.0.0" else str(e.version)
        return {e.kind: text}

    affected = []
    for a in r.affected:
        entry: dict[str, Any] = {"package": {"ecosystem": a.ecosystem, "name": a.package},
                                 "ranges": [{"type": "SEMVER", "events": [event(e) for e in (*rng.events, *rng.limits)]}
                                            for rng in a.ranges],
                                 "versions": sorted(a.versions)}
        if a.cvss_v3:
            entry["severity"] = [{"type": "CVSS_V3", "score": a.cvss_v3}]
        affected.append(entry)
    return {"id": r.id, "summary": r.summary, "published": r.published, "modified": r.modified,
            "aliases": list(r.aliases), "references": [{"url": u} for u in r.references], "affected": affected}


def cached_feed(folder: Path | None = None) -> Feed | None:
    """The stored OSV data, or None when there is none (the shipped snapshot is then used); a stored file that
    no longer reads is an UpdateError naming it."""
    from .feed import _read, parse_feed

    path = (folder or cache_dir()) / OSV_FILE
    if not path.is_file():
        return None
    try:
        return parse_feed(_read(path))
    except (OSVError, OSError) as exc:
        raise UpdateError(f"{path}: {exc} (run kubeward vulns update, or remove the file)") from None


def cached_official(folder: Path | None = None) -> Official | None:
    path = (folder or cache_dir()) / OFFICIAL_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_bytes())
        return Official(str(doc["source"]), dt.date.fromisoformat(doc["date"]),
                        tuple((str(x["id"]), str(x.get("summary", "")), str(x.get("url", ""))) for x in doc["items"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UpdateError(f"{path}: unreadable ({exc}); run kubeward vulns update, or remove the file") from None


def current_data(data_path: str | None = None) -> tuple[Feed, Official | None]:
    """The data `vulns` and `monitor` judge with: `data_path` (--data) alone, else the stored OSV data from
    `vulns update` unless the shipped snapshot is newer (after an upgrade of kubeward), with the stored official
    CVE list. UpdateError: a stored file no longer reads; OSVError: `data_path` is not vulnerability data."""
    from .feed import shipped

    if data_path:
        return load_path(data_path), None
    cached, official = cached_feed(), cached_official()
    snapshot = shipped()
    return (cached if cached is not None and cached.date >= snapshot.date else snapshot), official
