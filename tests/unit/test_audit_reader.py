"""Reading audit logs: JSON lines, gzip, stdin, EventList (v1, v1beta1), whole documents, bad input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from kubeward.audit.reader import ReadStats, iter_events
from vendored import AUDIT_SAMPLE

SAMPLE = str(AUDIT_SAMPLE)


def ev(i: int, api: str = "audit.k8s.io/v1") -> dict[str, object]:
    return {"kind": "Event", "apiVersion": api, "auditID": f"a{i}", "stage": "ResponseComplete", "verb": "get"}


def read(paths: list[str], stdin: io.BufferedReader | None = None) -> tuple[list[dict[str, object]], ReadStats]:
    rs = ReadStats()
    return list(iter_events(paths, rs, stdin=stdin)), rs


def test_real_log() -> None:
    events, rs = read([SAMPLE])
    assert len(events) == 37 == rs.events and rs.bad_lines == 0
    assert events[0]["auditID"] == "033d17af-082d-4b24-aa22-627752e83d71"


def test_jsonl_gz_and_eventlist_line(tmp_path: Path) -> None:
    lines = [orjson.dumps(ev(1)), orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1",
                                                "items": [ev(2, "audit.k8s.io/v1beta1"), ev(3)]})]
    gz = tmp_path / "audit.log.1"  # gzip recognised by content, not by name
    gz.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    events, rs = read([str(gz)])
    assert [e["auditID"] for e in events] == ["a1", "a2", "a3"] and rs.bad_lines == 0


def test_whole_pretty_printed_eventlist(tmp_path: Path) -> None:
    p = tmp_path / "list.json"
    p.write_bytes(orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev(1), ev(2)]},
                               option=orjson.OPT_INDENT_2))
    events, rs = read([str(p)])
    assert [e["auditID"] for e in events] == ["a1", "a2"] and rs.bad_lines == 0


def test_stdin_plain_and_gzip() -> None:
    data = orjson.dumps(ev(1)) + b"\n" + orjson.dumps(ev(2)) + b"\n"
    for blob in (data, gzip.compress(data)):
        events, _ = read(["-"], stdin=io.BufferedReader(io.BytesIO(blob)))  # type: ignore[arg-type]
        assert [e["auditID"] for e in events] == ["a1", "a2"]


def test_bad_lines_are_named_and_reading_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "mixed.log"
    p.write_bytes(b"\n".join([orjson.dumps(ev(1)), b"garbage{", b"", orjson.dumps({"kind": "Pod"}),
                              orjson.dumps(ev(2)), b"[1,2]"]) + b"\n")
    events, rs = read([str(p)])
    assert [e["auditID"] for e in events] == ["a1", "a2"]
    assert rs.bad_lines == 3
    where = [e.file for e in rs.errors]
    assert where[0].endswith("mixed.log:2") and where[1].endswith(":4") and where[2].endswith(":6")


def test_unreadable_paths(tmp_path: Path) -> None:
    events, rs = read([str(tmp_path / "missing.log"), SAMPLE])
    assert len(events) == 37
    assert len(rs.errors) == 1 and "No such file" in rs.errors[0].message


def test_directory_reads_its_files_oldest_first(tmp_path: Path) -> None:
    import os

    d = tmp_path / "audit"
    d.mkdir()
    (d / "audit.log").write_bytes(orjson.dumps(ev(3)) + b"\n")
    (d / "audit-2024-05-01T10-00-00.000.log.gz").write_bytes(gzip.compress(orjson.dumps(ev(1)) + b"\n"))
    (d / "audit-2024-05-01T11-00-00.000.log").write_bytes(orjson.dumps(ev(2)) + b"\n")
    for i, name in enumerate(["audit-2024-05-01T10-00-00.000.log.gz", "audit-2024-05-01T11-00-00.000.log",
                              "audit.log"]):
        os.utime(d / name, (1_700_000_000 + i, 1_700_000_000 + i))
    events, rs = read([str(d)])
    assert [e["auditID"] for e in events] == ["a1", "a2", "a3"] and rs.bad_lines == 0


def test_truncated_gzip_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(orjson.dumps(ev(1)) + b"\n" * 1000)[:-12])
    _, rs = read([str(p)])
    assert rs.errors and "read failed" in rs.errors[-1].message


def test_chunks_cover_every_line_exactly_once(tmp_path: Path) -> None:
    from kubeward.audit.parallel import _lines, chunk_ranges

    p = tmp_path / "l.log"
    lines = [b"x" * (i % 7) + str(i).encode() + b"\n" for i in range(200)]
    p.write_bytes(b"".join(lines) + b"tail-without-newline")
    for n in (1, 2, 3, 5, 8, 64, 5000):
        got = [ln for s, e in chunk_ranges(str(p), n) for ln in _lines(str(p), s, e)]
        assert got == [*lines, b"tail-without-newline"], n  # each line with its newline (line_blocks)
        # Lines over the limit are reported once each, wherever the chunk boundaries fall.
        got = [ln for s, e in chunk_ranges(str(p), n) for ln in _lines(str(p), s, e, limit=6)]
        assert got == [*(ln if len(ln) <= 7 else None for ln in lines), None], n


def test_overlong_line_is_skipped_not_buffered(tmp_path: Path) -> None:
    p = tmp_path / "long.log"
    p.write_bytes(orjson.dumps(ev(1)) + b"\n" + b"x" * 5000 + b"\n" + orjson.dumps(ev(2)) + b"\n")
    rs = ReadStats()
    events = list(iter_events([str(p)], rs, max_document=1000))
    assert [e["auditID"] for e in events] == ["a1", "a2"]
    assert rs.bad_lines == 1 and "longer than 1000 bytes" in rs.errors[0].message
    assert rs.errors[0].file.endswith("long.log:2")


@given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.booleans(),
       st.integers(1, 40), st.integers(1, 50))
def test_line_blocks_match_a_plain_split(lines: list[bytes], final_newline: bool, size: int, limit: int) -> None:
    from kubeward.audit.reader import line_blocks

    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = [x for block in line_blocks(io.BytesIO(data), limit, size=size) for x in block]
    want: list[bytes | None] = data.split(b"\n")
    if want and want[-1] == b"":
        want.pop()
    # Each line with its newline, the last one only when the data ends with one; too long without it: None.
    ends = [b"\n"] * (len(want) - 1) + [b"\n" if data.endswith(b"\n") else b""] if want else []
    assert got == [w + e if len(w) <= limit else None for w, e in zip(want, ends, strict=True)]  # type: ignore[operator]


def _jsonl(*objs: object) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objs)


def test_corrupt_first_line_loses_only_that_line(tmp_path: Path) -> None:
    deep = b"{\"a\":" + b"[" * 2000 + b"]" * 2000 + b"}"
    for bad, why in ((orjson.dumps(ev(0))[:-1], "("), (b'{"kind": "Event", "x": "\xff\xfe"}', "UTF-8"),
                     (deep, "not an audit Event")):
        p = tmp_path / "audit.log"
        p.write_bytes(bad + b"\n" + _jsonl(ev(1), ev(2), ev(3)))
        events, rs = read([str(p)])
        assert [e["auditID"] for e in events] == ["a1", "a2", "a3"], why
        assert rs.bad_lines == 1 and rs.errors[0].file.endswith("audit.log:1") and why in rs.errors[0].message


def test_two_corrupt_lines_then_events(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b'{"kind": "Ev\n{"kind": \n' + _jsonl(ev(1)))
    events, rs = read([str(p)])
    assert [e["auditID"] for e in events] == ["a1"] and rs.bad_lines == 2


def test_broken_pretty_document_is_still_read_line_by_line(tmp_path: Path) -> None:
    p = tmp_path / "list.json"
    p.write_bytes(b'{\n  "kind": "EventList",\n' + _jsonl(ev(1)) + b"  ]\n")
    events, rs = read([str(p)])
    assert [e["auditID"] for e in events] == ["a1"] and rs.bad_lines == 3


def test_utf8_bom(tmp_path: Path) -> None:
    p = tmp_path / "bom.log"
    p.write_bytes(b"\xef\xbb\xbf" + _jsonl(ev(1)) + b"\xef\xbb\xbf" + _jsonl(ev(2)))
    events, rs = read([str(p)])
    assert [e["auditID"] for e in events] == ["a1", "a2"] and rs.bad_lines == 0


def test_events_without_api_version_and_v1alpha1(tmp_path: Path) -> None:
    p = tmp_path / "old.log"
    bare = {k: v for k, v in ev(1).items() if k != "apiVersion"}
    p.write_bytes(_jsonl(bare, ev(2, "audit.k8s.io/v1alpha1"), {"auditID": "a3", "verb": "get"}))
    events, rs = read([str(p)])
    assert [e["auditID"] for e in events] == ["a1", "a2", "a3"] and rs.bad_lines == 0


def test_not_an_audit_log_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n" * 10)
    q = tmp_path / "pods.json"
    q.write_bytes(_jsonl({"kind": "Pod", "apiVersion": "v1"}, {"kind": "Pod", "apiVersion": "v1"}))
    events, rs = read([str(p), str(q), SAMPLE])
    assert len(events) == 37
    assert [(e.file, e.message.split(" (")[0]) for e in rs.errors] == [
        (str(p), "not an audit log"), (str(q), "not an audit log")]
    assert rs.bad_lines == 2


def test_unhashable_api_version_is_a_named_bad_line(tmp_path: Path) -> None:
    p = tmp_path / "odd.log"
    p.write_bytes(b'{"kind":"Event","apiVersion":["audit.k8s.io/v1"],"auditID":"x"}\n' + orjson.dumps(ev(1)) + b"\n")
    rs = ReadStats()
    assert [e["auditID"] for e in iter_events([str(p)], rs)] == ["a1"]
    assert rs.bad_lines == 1 and "not an audit Event" in rs.errors[0].message
