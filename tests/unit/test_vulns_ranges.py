"""SemVer 2.0.0 ordering and OSV range evaluation, against small brute-force references written independently."""

from __future__ import annotations

import functools
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.vulns.osv import OSVError, parse_range, parse_record
from kubeward.vulns.semver import SemverError, parse

SEMVER_ORG = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
              "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0"]


def test_semver_org_precedence_example() -> None:
    vs = [parse(t) for t in SEMVER_ORG]
    assert all(a < b for a, b in itertools.pairwise(vs))
    assert parse("1.0.0+build.1").same_precedence(parse("1.0.0+other")) and parse("1.0.0+a") != parse("1.0.0+b")


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1..0", "1.0.0-a..b",
                                  "1.0.0 ", "", "1" * 300 + ".0.0"])
def test_not_semver(text: str) -> None:
    with pytest.raises(SemverError):
        parse(text)


def ref_cmp(a: str, b: str) -> int:
    """semver.org §11, written as a comparison of strings: split, then compare piece by piece."""
    def split(t: str) -> tuple[list[int], list[str]]:
        t = t.split("+", 1)[0]
        core, _, pre = t.partition("-")
        return [int(x) for x in core.split(".")], (pre.split(".") if pre else [])

    (ca, pa), (cb, pb) = split(a), split(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if not pa or not pb:
        return (len(pb) > 0) - (len(pa) > 0)  # the one without pre-release is greater
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


num = st.integers(0, 3).map(str)
ident = st.one_of(num, st.sampled_from(["alpha", "beta", "rc", "a1", "x-y", "B", "0a"]))
semvers = st.builds(lambda c, p, b: f"{c[0]}.{c[1]}.{c[2]}" + (f"-{'.'.join(p)}" if p else "") + (f"+{b}" if b else ""),
                    st.tuples(num, num, num), st.lists(ident, max_size=3), st.sampled_from(["", "b1", "x.y"]))


@settings(max_examples=600, deadline=None)
@given(semvers, semvers)
def test_order_matches_reference(a: str, b: str) -> None:
    va, vb = parse(a), parse(b)
    want = ref_cmp(a, b)
    assert (va < vb, va.same_precedence(vb), va > vb) == (want < 0, want == 0, want > 0)


# --- ranges -------------------------------------------------------------------------------------------------------

UNIVERSE = sorted({"1.0.0", "1.0.1", "1.1.0-rc.1", "1.1.0", "1.1.1", "1.2.0-alpha", "1.2.0-alpha.1", "1.2.0", "1.3.0",
                   "2.0.0-beta.2", "2.0.0", "2.0.1", "3.0.0"}, key=functools.cmp_to_key(ref_cmp))


def ref_affected(version: str, events: list[dict[str, str]]) -> bool:
    """The OSV schema's intervals, built by brute force over an explicit list of versions: each introduced opens
    [introduced, next fixed) or [introduced, next last_affected]; limits cut at the first one reached."""
    order = ["0", *UNIVERSE]
    pos = {v: i for i, v in enumerate(order)}
    plain = sorted((e for e in events if "limit" not in e), key=lambda e: pos[next(iter(e.values()))])
    affected: set[str] = set()
    for i, e in enumerate(plain):
        if "introduced" not in e:
            continue
        start = pos[e["introduced"]]
        end, inclusive = len(order), False
        for later in plain[i + 1:]:
            if "fixed" in later:
                end, inclusive = pos[later["fixed"]], False
                break
            if "last_affected" in later:
                end, inclusive = pos[later["last_affected"]], True
                break
        affected.update(order[start:end + 1 if inclusive else end])
    limits = [e["limit"] for e in events if "limit" in e]
    if limits:
        affected = {v for v in affected if any(lim == "*" or pos[v] < pos[lim] for lim in limits)}
    return version in affected


@st.composite
def ranges(draw: Any) -> list[dict[str, str]]:
    """Events at distinct versions (a range whose events tie is ambiguous in the schema)."""
    versions = draw(st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=6, unique=True))
    kinds = draw(st.lists(st.sampled_from(["introduced", "fixed", "last_affected", "limit"]),
                          min_size=len(versions), max_size=len(versions)))
    events = [{k: v} for k, v in zip(kinds, versions, strict=True)]
    if draw(st.booleans()):
        events.insert(0, {"introduced": "0"})
    if draw(st.booleans()):
        events.append({"limit": "*"})
    return draw(st.permutations(events))  # the schema sorts before evaluating: written order must not matter


@settings(max_examples=800, deadline=None)
@given(ranges(), st.sampled_from(UNIVERSE))
def test_range_matches_reference(events: list[dict[str, str]], version: str) -> None:
    r = parse_range({"type": "SEMVER", "events": events})
    assert r.includes(parse(version)) is ref_affected(version, events)


def test_unsorted_feed_ranges() -> None:
    """CVE-2023-5528 writes its intervals newest first; evaluation sorts them."""
    events = [{"introduced": "1.28.0"}, {"fixed": "1.28.4"}, {"introduced": "1.27.0"}, {"fixed": "1.27.8"},
              {"introduced": "1.8.0"}, {"fixed": "1.25.16"}]
    r = parse_range({"type": "SEMVER", "events": events})
    got = {v: r.includes(parse(v)) for v in ("1.7.9", "1.8.0", "1.25.15", "1.25.16", "1.26.0", "1.27.7", "1.27.8",
                                             "1.28.3", "1.28.4", "1.29.0")}
    assert got == {"1.7.9": False, "1.8.0": True, "1.25.15": True, "1.25.16": False, "1.26.0": False,
                   "1.27.7": True, "1.27.8": False, "1.28.3": True, "1.28.4": False, "1.29.0": False}
    assert [str(v) for v in r.fixes_above(parse("1.27.7"))] == ["1.27.8", "1.28.4"]


def test_pre_releases_in_ranges() -> None:
    r = parse_range({"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.30.0"}]})
    assert r.includes(parse("1.30.0-rc.1")) and not r.includes(parse("1.30.0"))
    la = parse_range({"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.2.0"}]})
    assert la.includes(parse("1.2.0")) and not la.includes(parse("1.2.1-alpha")) and not la.includes(parse("0.9.0"))


@pytest.mark.parametrize(("raw", "needle"), [
    ({"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}, "only SEMVER"),
    ({"type": "SEMVER", "events": []}, "non-empty"),
    ({"type": "SEMVER", "events": [{"introduced": "1.0"}]}, "not a SemVer"),
    ({"type": "SEMVER", "events": [{"introduced": "1.0.0", "fixed": "2.0.0"}]}, "exactly one"),
    ({"type": "SEMVER", "events": [{"fixed": 2}]}, "not a string"),
])
def test_malformed_ranges_are_errors_not_unaffected(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(OSVError, match=needle):
        parse_range(raw)


def test_explicit_versions_list() -> None:
    rec = parse_record({"id": "X", "affected": [{"package": {"name": "p"}, "versions": ["1.2.3"]}]})
    assert rec.affected[0].includes(parse("1.2.3")) and not rec.affected[0].includes(parse("1.2.4"))
