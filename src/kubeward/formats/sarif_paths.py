"""Attack paths as SARIF 2.1.0: one result per path, the path itself a codeFlow (§3.36) whose threadFlow locations
(§3.38) are the steps, each at the object and field that makes it possible, its message the evidence and fix.
Viewers that draw code flows (GitHub code scanning, the VS Code SARIF viewer) then step through the attack."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from .. import __version__
from ..paths.graph import Edge
from ..paths.rank import Path
from .sarif import SCHEMA_URI, artifact_location

RULE_ID = "attack-path"


def _location(e: Edge, text: str) -> dict[str, Any]:
    loc: dict[str, Any] = {"message": {"text": text}}
    if e.obj is not None:
        loc["logicalLocations"] = [{"name": e.obj.name, "fullyQualifiedName": str(e.obj), "kind": "resource"}]
    if e.file:
        physical: dict[str, Any] = {"artifactLocation": artifact_location(e.file)}
        if e.line:
            physical["region"] = {"startLine": e.line}
        loc["physicalLocation"] = physical
    return loc


def _result(p: Path) -> dict[str, Any]:
    flow = []
    for i, s in enumerate(p.steps, 1):
        e = s.main
        text = f"{i}. {s.node}: {e.evidence}" + (f" — fix: {e.fix}" if e.fix else "")
        flow.append({"location": _location(e, text), "kinds": [e.kind.value], "executionOrder": i})
    first = next((s.main for s in p.steps if s.main.obj is not None), p.steps[0].main)
    key = "\x1f".join(p.key)
    return {
        "ruleId": RULE_ID,
        "ruleIndex": 0,
        "kind": "fail",
        "level": "error",
        "message": {"text": f"attack path (score {p.cost}): {p}"},
        "locations": [_location(first, f"the path enters at {p.key[1] if len(p.key) > 1 else p.source}")],
        "codeFlows": [{"message": {"text": str(p)}, "threadFlows": [{"locations": flow}]}],
        "partialFingerprints": {"kubewardAttackPath/v1": hashlib.sha256(key.encode()).hexdigest()[:32]},
        "properties": {"score": p.cost, "steps": len(p.steps), "from": p.source, "to": p.target},
    }


def render_sarif(paths: list[Path], target: str) -> str:
    rule = {
        "id": RULE_ID,
        "name": "AttackPath",
        "shortDescription": {"text": f"Attack path to {target}"},
        "fullDescription": {"text": "A chain of steps, each decided by a kubeward engine, from an entry point to "
                                    "the target; the code flow lists them in order."},
        "help": {"text": "Run `kubeward paths --fixes` for the fewest changes that cut every path."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"security-severity": "9.5", "tags": ["security", "attack-path"]},
    }
    doc = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "kubeward", "version": __version__, "semanticVersion": __version__,
                                "rules": [rule]}},
            "invocations": [{"executionSuccessful": True}],
            "columnKind": "unicodeCodePoints",
            "results": [_result(p) for p in paths],
        }],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
