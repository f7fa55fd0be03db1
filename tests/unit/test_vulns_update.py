"""`kubeward vulns update`: a local http.server serves good, truncated, malformed and wrong-schema feeds; only
verified data is stored (atomically, in the user cache), the old data survives every failure, and every report
names the data it used."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.vulns.feed import shipped
from kubeward.vulns.update import (
    OFFICIAL_FILE,
    OSV_FILE,
    UpdateError,
    cached_feed,
    cached_official,
    load_source,
    parse_official,
)

# The official feed's shape (JSON Feed 1.1 with the _kubernetes_io extension), trimmed to three items.
OFFICIAL = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Kubernetes Vulnerability Announcements - CVE Feed",
    "home_page_url": "https://kubernetes.io",
    "feed_url": "https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json",
    "description": "Auto-refreshing official CVE feed for Kubernetes repository",
    "authors": [{"name": "Kubernetes Community", "url": "https://www.kubernetes.dev"}],
    "_kubernetes_io": {"feed_refreshed_at": "2026-11-30T09:00:03Z", "updated_at": "2026-11-28T18:31:45Z"},
    "items": [
        {"id": "CVE-2024-5321", "url": "https://github.com/kubernetes/kubernetes/issues/126161",
         "external_url": "https://www.cve.org/cverecord?id=CVE-2024-5321",
         "summary": "Incorrect permissions on Windows containers logs",
         "content_text": "A security issue was discovered in Kubernetes clusters with Windows nodes ...",
         "date_published": "2024-07-17T17:21:27Z",
         "_kubernetes_io": {"google_group_url": "https://groups.google.com/g/kubernetes-announce/search?q=CVE-2024-5321",
                            "issue_number": 126161}},
        {"id": "CVE-2026-9999", "url": "https://github.com/kubernetes/kubernetes/issues/139999",
         "summary": "A new kube-apiserver issue", "content_text": "...", "date_published": "2026-11-28T18:31:45Z",
         "_kubernetes_io": {"issue_number": 139999}},
        {"id": "CVE-2024-3177", "url": "https://github.com/kubernetes/kubernetes/issues/124336",
         "summary": "Bypassing mountable secrets policy imposed by the ServiceAccount admission plugin",
         "content_text": "...", "date_published": "2024-04-22T15:43:05Z"},
    ],
}
RECORD = {"id": "CVE-2099-0001", "modified": "2099-01-02T00:00:00Z", "published": "2099-01-01T00:00:00Z",
          "summary": "test record", "affected": [{"package": {"ecosystem": "k8s", "name": "k8s.io/kubelet"},
                                                   "ranges": [{"type": "SEMVER", "events": [
                                                       {"introduced": "1.30.0"}, {"fixed": "1.30.9"}]}],
                                                   "severity": [{"type": "CVSS_V3", "score":
                                                                 "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}]}


def _zip(members: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, doc in members.items():
            z.writestr(name, doc if isinstance(doc, bytes) else json.dumps(doc))
    return buf.getvalue()


GOOD_ZIP = _zip({"cve-feed-osv-main/vulns/CVE-2099-0001.json": RECORD,
                 "cve-feed-osv-main/vulns/CVE-2024-5321.json": {**RECORD, "id": "CVE-2024-5321"},
                 "cve-feed-osv-main/package.json": {"name": "tooling"}})  # not a record: left alone
BODIES: dict[str, tuple[bytes, dict[str, str]]] = {
    "/good.json": (json.dumps(OFFICIAL).encode(), {}),
    "/osv.zip": (GOOD_ZIP, {}),
    "/truncated.json": (json.dumps(OFFICIAL).encode()[:200], {}),
    "/short-body.json": (json.dumps(OFFICIAL).encode()[:200], {"Content-Length": "5000"}),
    "/malformed.json": (b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": ', {}),
    "/wrong-schema.json": (json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "x",
                                       "items": [{"title": "no id"}]}).encode(), {}),
    "/not-a-feed.json": (json.dumps({"hello": "world"}).encode(), {}),
    "/empty.json": (json.dumps({**OFFICIAL, "items": []}).encode(), {}),
    "/dupes.json": (json.dumps({**OFFICIAL, "items": [OFFICIAL["items"][0]] * 2}).encode(), {}),
    "/bad-record.zip": (_zip({"CVE-2099-0002.json": {"id": "CVE-2099-0002", "modified": "2099-01-01",
                                                    "affected": [{"package": {"name": "k8s.io/kubelet"},
                                                                  "ranges": [{"type": "GIT", "events": []}]}]}}), {}),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path not in BODIES:
            self.send_error(404)
            return
        body, headers = BODIES[self.path]
        self.send_response(200)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KUBEWARD_CACHE_DIR", raising=False)
    return tmp_path / "xdg" / "kubeward" / "vulndata"


def update(*args: str) -> Any:
    return CliRunner().invoke(cli, ["vulns", "update", *args])


def vulns(*args: str) -> Any:
    return CliRunner().invoke(cli, ["vulns", "--version", "1.30.2", "-o", "json", "--fail-on", "none",
                                    "--today", "2026-12-01", *args])


def test_official_feed_over_http_is_stored_and_reported(server: str, cache: Path) -> None:
    r = update("--from", f"{server}/good.json")
    assert r.exit_code == 0, r.output
    assert f"wrote {cache / OFFICIAL_FILE}" in r.stderr and "dated 2026-11-30, 3 CVEs" in r.stderr
    official = cached_official(cache)
    assert official is not None and [i for i, _, _ in official.items] == ["CVE-2024-5321", "CVE-2026-9999",
                                                                          "CVE-2024-3177"]
    out = vulns()
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    data = next(f for f in doc["findings"] if f["control"]["id"] == "KW-V000")
    assert "official CVE list" in data["message"] and "dated 2026-11-30" in data["message"]
    # The CVE the OSV data does not have is said, not skipped; the two it has are judged as before.
    gaps = [f for f in doc["findings"] if f["control"]["id"] == "KW-V002"]
    assert [g["path"] for g in gaps] == ["/items/CVE-2026-9999"]
    assert "A new kube-apiserver issue" in gaps[0]["message"] and "not judged" in gaps[0]["message"]
    assert "official CVE list:" in out.stderr


def test_osv_zip_over_http_replaces_the_snapshot(server: str, cache: Path) -> None:
    r = update("--from", f"{server}/osv.zip")
    assert r.exit_code == 0, r.output
    assert "2 OSV records" in r.stderr and (cache / OSV_FILE).is_file()
    feed = cached_feed(cache)
    assert feed is not None and {r.id for r in feed.records} == {"CVE-2099-0001", "CVE-2024-5321"}
    assert feed.date.isoformat() == "2099-01-02"
    doc = json.loads(vulns().stdout)
    ids = {f["control"]["id"] for f in doc["findings"]}
    assert "CVE-2099-0001" in ids and "CVE-2024-3177" not in ids  # judged by the stored data, not the snapshot
    assert "/osv.zip (verified by kubeward vulns update on " in doc["findings"][0]["message"]


def test_stored_records_read_back_the_same(cache: Path, tmp_path: Path) -> None:
    """The stored document parses to the same records the shipped snapshot holds (ranges, severities, refs)."""
    folder = tmp_path / "records"
    folder.mkdir()
    raw = json.loads(gzip.decompress(
        (Path(__file__).parents[2] / "src/kubeward/data/k8s-cve-feed-osv.json.gz").read_bytes()))
    for rec in raw["records"]:
        (folder / f"{rec['id']}.json").write_text(json.dumps(rec))
    r = update("--from", str(folder))
    assert r.exit_code == 0, r.output
    stored = cached_feed(cache)
    assert stored is not None
    assert sorted(stored.records, key=lambda x: x.id) == sorted(shipped().records, key=lambda x: x.id)


@pytest.mark.parametrize(("path", "said"), [
    ("/truncated.json", "not JSON"),
    ("/short-body.json", "truncated"),
    ("/malformed.json", "not JSON"),
    ("/wrong-schema.json", "items[0]: no string id"),
    ("/not-a-feed.json", "neither a JSON Feed"),
    ("/empty.json", "no items: refusing to replace the data with nothing"),
    ("/dupes.json", "id CVE-2024-5321 appears twice"),
    ("/bad-record.zip", "CVE-2099-0002: affected[0].ranges[0].type: 'GIT' ranges are not evaluated"),
    ("/missing.json", "HTTP 404"),
])
def test_bad_downloads_keep_the_old_data(server: str, cache: Path, path: str, said: str) -> None:
    assert update("--from", f"{server}/good.json").exit_code == 0
    assert update("--from", f"{server}/osv.zip").exit_code == 0
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    r = update("--from", f"{server}{path}")
    assert r.exit_code == 2 and said in r.stderr and "the old data is kept" in r.stderr, r.stderr
    assert "Traceback" not in r.output
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before  # no temporary file left either


def test_plain_http_elsewhere_is_refused(cache: Path) -> None:
    r = update("--from", "http://example.com/index.json")
    assert r.exit_code == 2 and "only https URLs" in r.stderr
    assert not cache.exists()


def test_shipped_snapshot_is_the_fallback_and_a_newer_one_wins(cache: Path, tmp_path: Path) -> None:
    doc = json.loads(vulns().stdout)
    assert "cve-feed-osv at 9760a22, dated 2024-11-18" in doc["findings"][0]["message"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"source": "old mirror", "commit": "x", "date": "2020-01-01",
                               "records": [{**RECORD, "modified": "2020-01-01T00:00:00Z"}]}))
    assert update("--from", str(old)).exit_code == 0
    doc = json.loads(vulns().stdout)
    assert "dated 2024-11-18" in doc["findings"][0]["message"]  # the stored data is older than the snapshot


def test_a_damaged_store_is_one_line(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / OSV_FILE).write_bytes(b"\x1f\x8b not gzip")
    out = vulns()
    assert out.exit_code == 2 and str(cache / OSV_FILE) in out.stderr and "Traceback" not in out.output


def test_parse_official_dates() -> None:
    no_ext = {k: v for k, v in OFFICIAL.items() if k != "_kubernetes_io"}
    assert parse_official(no_ext, "x").date.isoformat() == "2026-11-28"  # the newest item
    with pytest.raises(UpdateError, match="not a JSON Feed version"):
        parse_official({**OFFICIAL, "version": "1"}, "x")
    with pytest.raises(UpdateError, match="no such file"):
        load_source("/nonexistent/feed.json")


def test_vulns_help_names_update_and_update_help() -> None:
    assert "kubeward vulns update" in CliRunner().invoke(cli, ["vulns", "--help"]).output
    r = CliRunner().invoke(cli, ["vulns", "update", "--help"])
    assert r.exit_code == 0 and "--from" in r.output
