"""The chart's values contract without helm: values.yaml and the CI values meet values.schema.json, the schema
refuses misspelt keys and impossible values at every level (helm then fails the render), and every value has a
row in the chart README's table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema")

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "kubeward"
# maps whose keys are the user's (resources, labels...): documented as one row
MAP_LEAVES = {"resources", "hard", "default", "defaultRequest", "labels", "podAnnotations", "nodeSelector",
              "affinity", "commonLabels", "admissionTlsConfig"}


def values() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return doc


def validator() -> Any:
    schema = json.loads((CHART / "values.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors(doc: dict[str, Any]) -> list[str]:
    return sorted(e.message for e in validator().iter_errors(doc))


def leaves(v: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, x in v.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(x, dict) and x and k not in MAP_LEAVES:
            out += leaves(x, path)
        else:
            out.append(path)
    return out


def test_shipped_values_meet_the_schema() -> None:
    assert errors(values()) == []
    merged = values()
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        overrides = yaml.safe_load(path.read_text())
        assert errors(overrides) == [], path  # a values file alone is also checked by helm after merging
        for part, settings in overrides.items():
            merged[part] = {**merged.get(part, {}), **settings}
    assert errors(merged) == []


@pytest.mark.parametrize("path", [p for p in leaves(values()) if "." in p])
def test_a_misspelt_key_is_refused_at_every_level(path: str) -> None:
    doc = values()
    *parents, key = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    node[key + "x"] = node.pop(key)
    assert any(re.search(rf"'{re.escape(key)}x' was unexpected", m) for m in errors(doc)), path


@pytest.mark.parametrize(("path", "value"), [
    ("admission.failurePolicy", "fail"), ("admission.timeoutSeconds", 31), ("agent.exec.mode", "block"),
    ("image.digest", "sha256:abc"), ("monitor.metricsPort", 0), ("scan.reports.accessModes", ["RWO"]),
    ("image.pullPolicy", "always"), ("monitor.readSecrets", "yes"), ("securityContext.runAsUser", 0),
])
def test_impossible_values_are_refused(path: str, value: Any) -> None:
    doc = values()
    *parents, key = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    node[key] = value
    assert errors(doc), path


def test_every_value_has_a_documented_readme_row_with_its_default() -> None:
    readme = (CHART / "README.md").read_text()
    rows = {k: (d, text) for k, d, text in re.findall(r"^\| `([\w.-]+)` \| (.*?) \| (.*) \|$", readme, re.M)}
    doc = values()
    for path in leaves(doc):
        default, text = rows.get(path, ("", ""))
        assert text.strip(), f"{path}: no README row, or one without a description"
        node: Any = doc
        for key in path.split("."):
            node = node[key]
        if default.startswith("`"):  # the allowlist's row points at values.yaml instead
            assert json.loads(default.strip("`").replace("\\|", "|")) == node, path


def test_the_monitor_metrics_port_is_the_one_in_its_args() -> None:
    m = values()["monitor"]
    args = m["args"]
    assert args[args.index("--metrics-port") + 1] == str(m["metricsPort"])
