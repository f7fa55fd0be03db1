"""Property: whatever the items of a batch are, feeding them never raises, every item is either an event or one
counted error, and the analyzer and sinks see each event at most once."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.audit.analyzer import Analyzer
from kubeward.audit.feed import analyze, batch_events
from kubeward.audit.reader import ReadStats

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                      st.text(max_size=20))
json_any = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=4),
                                                        st.dictionaries(st.text(max_size=12), c, max_size=4)),
                        max_leaves=20)
FIELDS = ["kind", "apiVersion", "auditID", "stage", "verb", "user", "sourceIPs", "userAgent", "objectRef",
          "responseStatus", "requestObject", "responseObject", "annotations", "impersonatedUser", "requestURI",
          "stageTimestamp", "items"]
BASE = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "x", "stage": "ResponseComplete",
        "verb": "get", "user": {"username": "jane"}, "objectRef": {"resource": "secrets", "namespace": "a",
                                                                   "name": "s"}, "responseStatus": {"code": 200}}
eventish = st.builds(lambda over: {**BASE, **over}, st.dictionaries(st.sampled_from(FIELDS), json_any, max_size=4))
item = st.one_of(eventish, json_any)


@settings(max_examples=300, deadline=None)
@given(st.lists(item, max_size=8))
def test_every_item_is_an_event_or_one_error(items: list[Any]) -> None:
    stats = ReadStats()
    fed: list[dict[str, Any]] = []
    seen_alerts: list[Any] = []
    analyzer = Analyzer()

    def feed_events() -> Any:
        for ev in batch_events({"kind": "EventList", "items": items}, "w", stats):
            fed.append(ev)
            yield ev

    n = analyze(analyzer, feed_events(), seen_alerts.append, "w", stats)
    assert n == len(fed)
    analysis_errors = sum(1 for e in stats.errors if "could not be analyzed" in str(e))
    assert len(fed) + stats.bad_lines - analysis_errors == len(items)
    assert all(any(x is ev for x in items) for ev in fed)  # events are the items themselves, each once


@settings(max_examples=200, deadline=None)
@given(json_any)
def test_any_document_is_events_or_an_error(doc: Any) -> None:
    stats = ReadStats()
    got = list(batch_events(doc, "w", stats))
    assert got or stats.bad_lines >= 1 or (isinstance(doc, dict) and doc.get("kind") == "EventList")
