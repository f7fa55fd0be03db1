"""Alert sinks: stdout/file formats, webhook retry with backoff, bounded queue with counted drops."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubeward.alerts import Alert
from kubeward.alertsinks import Alerting, FileSink, StreamSink, WebhookSink, slack_payload
from kubeward.findings import Severity


def alert(i: int = 0, sev: Severity = Severity.HIGH) -> Alert:
    return Alert("secret-read", sev, f"id{i}", "2024-05-01T10:00:00Z", "jane", ["10.0.0.1"], "get",
                 {"resource": "secrets", "namespace": "a", "name": "db"}, "secret a/db read (get)")


class Recorder(HTTPServer):
    fail_first = 0
    bodies: list[Any]


class _H(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *a: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(500)
        else:
            self.server.bodies.append(orjson.loads(body))
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    srv = Recorder(("127.0.0.1", 0), _H)
    srv.bodies = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_stream_and_file_sinks(tmp_path: Path) -> None:
    buf = io.StringIO()
    p = tmp_path / "alerts.jsonl"
    fs = FileSink(str(p))
    al = Alerting([StreamSink("json", buf), fs], Severity.MEDIUM)
    al.emit(alert(1))
    al.emit(alert(2, Severity.LOW))  # below --min-severity: not emitted
    assert al.close() == []
    assert [orjson.loads(x)["auditID"] for x in buf.getvalue().splitlines()] == ["id1"]
    assert [orjson.loads(x)["auditID"] for x in p.read_bytes().splitlines()] == ["id1"]
    table = io.StringIO()
    ss = StreamSink("table", table)
    ss.emit(alert(3))
    ss.close()  # written by the sink's own thread
    assert "secret-read" in table.getvalue() and "secrets a/db" in table.getvalue()


def test_webhook_retries_with_backoff(recorder: Recorder) -> None:
    recorder.fail_first = 2
    sleeps: list[float] = []
    sink = WebhookSink(f"http://127.0.0.1:{recorder.server_address[1]}/hook", retries=3, sleep=sleeps.append)
    sink.emit(alert(1))
    sink.close()
    assert [b["auditID"] for b in recorder.bodies] == ["id1"]
    assert sleeps == [0.5, 1.0] and sink.counters.retries == 2 and sink.counters.delivered == 1
    assert sink.problems() is None


def test_webhook_slack_payload(recorder: Recorder) -> None:
    sink = WebhookSink(f"http://127.0.0.1:{recorder.server_address[1]}/", slack=True)
    sink.emit(alert(1))
    sink.close()
    [body] = recorder.bodies
    assert body == slack_payload(alert(1)) and body["text"].startswith("[high] secret-read")


def test_webhook_gives_up_and_counts(tmp_path: Path) -> None:
    sink = WebhookSink("http://127.0.0.1:9/", retries=1, sleep=lambda s: None, timeout=0.5)
    sink.emit(alert(1))
    sink.close()
    assert sink.counters.failed == 1 and "1 failed after retries" in (sink.problems() or "")


def test_bounded_queue_counts_drops() -> None:
    gate = threading.Event()
    sink = WebhookSink("http://127.0.0.1:9/", queue_size=2, retries=0, timeout=0.2)
    sink._deliver = lambda a: gate.wait(5)  # type: ignore[method-assign]  # a stuck receiver
    warnings: list[str] = []
    sink._on_first_drop = warnings.append
    for i in range(10):
        sink.emit(alert(i))
    assert sink.counters.dropped >= 7  # at most one in flight and two queued
    assert len(warnings) == 1 and "dropping" in warnings[0]
    gate.set()
    sink.close()
    c = sink.counters
    assert c.dropped + c.delivered + c.failed <= 10 and c.dropped >= 7
    assert "dropped" in (sink.problems() or "")
