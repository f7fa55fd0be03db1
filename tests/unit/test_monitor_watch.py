"""The reflector on a scripted server: bookmarks move the resourceVersion on, a 410 Gone (status or ERROR event)
relists, a 403 makes the type unreadable; the Lease election; PolicyReport bodies and reading them back."""

from __future__ import annotations

import queue
import threading
from typing import Any

import orjson

from kubeward.findings import ControlMeta, Finding, Location, ObjectRef, Report, Severity
from kubeward.monitor.leader import LeaderElector
from kubeward.monitor.policyreport import MAX_RESULTS, desired, key_of, result_of
from kubeward.monitor.state import finding_key
from kubeward.monitor.watch import Backoff, Change, Reflector
from kubeward.sources.cluster import ResourceType

PODS = ResourceType("v1", "pods", "Pod")


def _pod(name: str, rv: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "a", "resourceVersion": rv}}


class _Stream:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.data = b"".join(orjson.dumps(e) + b"\n" for e in events)

    def stream(self, amt: int, decode_content: bool = True) -> Any:
        for i in range(0, len(self.data), 7):  # events split across chunks
            yield self.data[i:i + 7]

    def release_conn(self) -> None:
        pass

    def read(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class FakeClient:
    """Lists and watches from a script; records the resourceVersion of every watch."""

    def __init__(self, lists: list[tuple[int, list[dict[str, Any]], str]],
                 watches: list[tuple[int, list[dict[str, Any]]]], stop: threading.Event) -> None:
        self.lists, self.watches, self.stop = lists, watches, stop
        self.watched_from: list[str] = []

    def list_versioned(self, rtype: ResourceType) -> tuple[list[dict[str, Any]], int, str, str]:
        if not self.lists:
            self.stop.set()
            return [], 500, "done", ""
        status, items, rv = self.lists.pop(0)
        return items, status, "HTTP 403: forbidden" if status == 403 else "", rv

    def stream(self, path: str, query: dict[str, Any], read_timeout: float) -> tuple[int, Any]:
        self.watched_from.append(query["resourceVersion"])
        assert query["allowWatchBookmarks"] == "true" and query["watch"] == "true"
        if not self.watches:
            self.stop.set()
            return 500, None
        status, events = self.watches.pop(0)
        return status, _Stream(events)


def _run(client: FakeClient, stop: threading.Event) -> tuple[list[Change], list[str]]:
    out: queue.Queue[Change] = queue.Queue()
    restarts: list[str] = []
    r = Reflector(client, PODS, out, stop, watch_timeout=1, on_restart=lambda _t, why: restarts.append(why),
                  backoff=Backoff(first=0.001, cap=0.001))
    r._sleep = lambda _s: None  # type: ignore[method-assign]
    r.run()
    got = []
    while not out.empty():
        got.append(out.get())
    return got, restarts


def test_bookmarks_advance_and_410_relists() -> None:
    stop = threading.Event()
    client = FakeClient(
        lists=[(200, [_pod("p1", "5")], "10"), (200, [_pod("p2", "30")], "31")],
        watches=[
            (200, [{"type": "ADDED", "object": _pod("p2", "11")}, {"type": "BOOKMARK", "object": {
                "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "20"}}}]),  # ends: resume at 20
            (200, [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}]),
            (410, []),  # after the relist: HTTP 410 straight away -> relist again (the script then ends)
        ], stop=stop)
    changes, restarts = _run(client, stop)
    assert client.watched_from == ["10", "20", "31"]
    assert [c.what for c in changes][:3] == ["list", "ADDED", "list"]  # then the script's end
    assert restarts[:2] == ["gone", "gone"]


def test_forbidden_watch_makes_the_type_unreadable() -> None:
    stop = threading.Event()
    client = FakeClient(lists=[(200, [], "1"), (403, [], "")], watches=[(403, [])], stop=stop)
    changes, restarts = _run(client, stop)
    assert [c.what for c in changes][:3] == ["list", "unreadable", "unreadable"]
    assert changes[1].status == 403 and restarts[0] == "forbidden"


def test_an_event_of_another_type_is_refused() -> None:
    stop = threading.Event()
    client = FakeClient(lists=[(200, [], "1")], watches=[(200, [{"type": "ADDED", "object": {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "resourceVersion": "2"}}}])], stop=stop)
    changes, restarts = _run(client, stop)
    assert [c.what for c in changes] == ["list"]  # no ADDED: the watch is retried from where it was
    assert restarts[0] == "error" and client.watched_from[:2] == ["1", "1"]


class LeaseServer:
    """A Lease store with the apiserver's optimistic concurrency: a PUT must carry the current resourceVersion."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 0

    def json(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        if method == "GET":
            return (200, orjson.loads(orjson.dumps(self.lease))) if self.lease else (404, {})
        if method == "POST":
            if self.lease:
                return 409, {}
            self.rv += 1
            self.lease = dict(body, metadata=dict(body["metadata"], resourceVersion=str(self.rv)))
            return 201, self.lease
        assert method == "PUT" and self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            return 409, {}
        self.rv += 1
        self.lease = dict(body, metadata=dict(body["metadata"], resourceVersion=str(self.rv)))
        return 200, self.lease


def test_one_leader_and_takeover_after_release() -> None:
    server = LeaseServer()
    a = LeaderElector(server, "ns", "kw", "a", lease_duration=15)  # type: ignore[arg-type]
    b = LeaderElector(server, "ns", "kw", "b", lease_duration=15)  # type: ignore[arg-type]
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False  # a's lease is fresh
    assert a.try_acquire_or_renew() is True  # renew
    assert b.try_acquire_or_renew() is False
    a.leading.set()
    a.release()
    assert server.lease is not None and server.lease["spec"]["holderIdentity"] == ""
    assert b.try_acquire_or_renew() is True
    assert server.lease["spec"]["holderIdentity"] == "b" and server.lease["spec"]["leaseTransitions"] == 1
    assert a.try_acquire_or_renew() is False


def test_an_expired_lease_is_taken_by_local_observation() -> None:
    import kubeward.monitor.leader as leader

    server = LeaseServer()
    a = LeaderElector(server, "ns", "kw", "a", lease_duration=15)  # type: ignore[arg-type]
    b = LeaderElector(server, "ns", "kw", "b", lease_duration=15)  # type: ignore[arg-type]
    assert a.try_acquire_or_renew()
    now = [1000.0]
    real = leader.time.monotonic
    leader.time.monotonic = lambda: now[0]  # type: ignore[assignment]
    try:
        assert not b.try_acquire_or_renew()  # first sight of a's record
        now[0] += 14.0
        assert not b.try_acquire_or_renew()
        now[0] += 2.0  # unchanged for 16 s of b's clock: a is gone
        assert b.try_acquire_or_renew()
    finally:
        leader.time.monotonic = real  # type: ignore[assignment]


def _finding(cid: str, sev: Severity, ns: str | None, name: str, path: str = "/spec") -> Finding:
    meta = ControlMeta(id=cid, title="t", severity=sev, category="c", frameworks=(), remediation="", description="")
    return Finding(meta, ObjectRef("v1", "Pod" if ns else "Node", ns, name), Location(cluster="x"), path, "m")


def test_policyreport_results_read_back_as_the_same_findings() -> None:
    fs = [_finding("KW-W001", Severity.CRITICAL, "a", "p"), _finding("KW-W002", Severity.INFO, None, "n")]
    for f in fs:
        r = result_of(f)
        assert key_of(r) == finding_key(f)
        assert r["severity"] in ("high", "medium", "low")  # the v1alpha2 enum
        assert r["properties"]["severity"] == f.control.severity.label
    report = Report(objects=2, findings=fs, errors=[], not_assessed=[])
    want = desired(report, ["a", "b"])
    assert set(want) == {None, "a", "b"}
    assert want["a"]["summary"]["fail"] == 1 and want["b"]["results"] == []
    assert [r["policy"] for r in want[None]["results"]] == ["KW-W002"]


def test_a_scope_with_more_than_max_results_is_several_objects_read_back_as_one() -> None:
    """No finding is left out of the reports: a restarted monitor must know every one it announced."""
    from kubeward.monitor.policyreport import ReportWriter

    fs = [_finding("KW-W001", Severity.HIGH, "a", f"p{i}") for i in range(MAX_RESULTS + 5)]
    want = desired(Report(objects=len(fs), findings=fs, errors=[], not_assessed=[]), ["a"])
    assert len(want["a"]["results"]) == MAX_RESULTS + 5 and want["a"]["summary"]["fail"] == MAX_RESULTS + 5
    server = ReportServer()
    assert ReportWriter(server).sync(want) == 0  # type: ignore[arg-type]
    base = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/a/policyreports/"
    assert {p for p in server.objects if p.startswith(base)} == {base + "kubeward", base + "kubeward-2"}
    assert [len(server.objects[base + n]["results"]) for n in ("kubeward", "kubeward-2")] == [MAX_RESULTS, 5]
    assert server.objects[base + "kubeward-2"]["summary"]["fail"] == 5
    again = ReportWriter(server)  # type: ignore[arg-type]
    assert again.load() == {finding_key(f) for f in fs}
    server.calls.clear()
    assert again.sync(want) == 0 and server.calls == []  # read back as what was written: nothing to do
    fewer = desired(Report(objects=3, findings=fs[:3], errors=[], not_assessed=[]), ["a"])
    assert again.sync(fewer) == 0
    assert base + "kubeward-2" not in server.objects and len(server.objects[base + "kubeward"]["results"]) == 3


class ReportServer:
    """PolicyReports with resourceVersions; `fail` makes the next writes answer 500."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv, self.fail, self.calls = 0, 0, []

    def json(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.calls.append(method)
        if method in ("POST", "PUT") and self.fail:
            self.fail -= 1
            return 500, {"message": "boom"}
        if method == "POST":
            path = f"{path}/{body['metadata']['name']}"
            if path in self.objects:
                return 409, {}
        if method in ("POST", "PUT"):
            if method == "PUT" and body["metadata"].get("resourceVersion") != \
                    self.objects.get(path, {}).get("metadata", {}).get("resourceVersion"):
                return 409, {}
            self.rv += 1
            self.objects[path] = dict(body, metadata=dict(body["metadata"], resourceVersion=str(self.rv)))
            return (201 if method == "POST" else 200), self.objects[path]
        if method == "DELETE":
            return (200, {}) if self.objects.pop(path, None) is not None else (404, {})
        if path.endswith(("/clusterpolicyreports", "/v1alpha2/policyreports")):  # a list, of every namespace
            kind = path.rsplit("/", 1)[1]
            return 200, {"items": [o for p, o in self.objects.items() if p.rsplit("/", 2)[1] == kind]}
        return (200, self.objects[path]) if path in self.objects else (404, {})


def test_report_writer_writes_changes_only_retries_failures_and_collects_garbage() -> None:
    from kubeward.monitor.policyreport import ReportWriter

    server = ReportServer()
    w = ReportWriter(server)  # type: ignore[arg-type]
    one = {"summary": {"fail": 1}, "results": [{"policy": "KW-W001"}]}
    assert w.sync({"a": one, None: {"summary": {}, "results": []}}) == 0
    assert set(server.objects) == {"/apis/wgpolicyk8s.io/v1alpha2/namespaces/a/policyreports/kubeward",
                                   "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/kubeward"}
    server.calls.clear()
    assert w.sync({"a": one}, keep={"a", None}) == 0 and server.calls == []  # nothing changed: no call
    server.fail = 1
    two = {"summary": {"fail": 2}, "results": []}
    assert w.sync({"a": two}, keep={"a", None}) == 1 and w.pending == {"a"}
    assert w.sync({"a": two}, keep={"a", None}) == 0 and w.pending == set()
    path = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/a/policyreports/kubeward"
    assert server.objects[path]["summary"] == {"fail": 2}
    server.objects[path]["metadata"]["resourceVersion"] = "999"  # someone else wrote it meanwhile
    assert w.sync({"a": one}, keep={"a", None}) == 0 and server.objects[path]["summary"] == {"fail": 1}
    assert w.sync({}, keep={None}) == 0 and path not in server.objects  # namespace gone: its report goes
