"""The loader reads YAML exactly as Kubernetes does: every generated document gives the JSON value that
sigs.k8s.io/yaml YAMLToJSONStrict (the converter of kubectl and the apiserver, built from e2e/yamljson at the
versions Kubernetes v1.37 uses) gives, or both refuse it.

The corpus is seeded and combines the scalars where YAML readers disagree (YAML 1.1 booleans, `=`, `~`, octal,
hex, binary and sexagesimal numbers, floats, infinities, timestamps, huge ints, tags, multi-line strings) in
block and flow mappings and sequences, with anchors, aliases, merge keys, recursive aliases, repeated and
non-string keys, anchors defined twice. Where two keys of one mapping become the same JSON key the Go map keeps one at random
(`collision`): there is no single answer, and the loader must refuse the document.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubeward.sources.files import yaml_values

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEEDS = range(20)
DOCS_PER_SEED = 500

SCALARS = [
    "=", "~", "null", "Null", "NULL", "nULL", "y", "Y", "yes", "Yes", "YES", "yEs", "n", "N", "no", "No", "NO",
    "on", "On", "ON", "oN", "off", "Off", "OFF", "true", "True", "TRUE", "tRUE", "false", "False", "FALSE",
    "0777", "0o777", "0O17", "0x1F", "0X1f", "0xg", "0b101", "0B11", "-0b101", "-0x10", "+0x10", "+12", "-0",
    "+0", "0", "00", "08", "09.5", "1_000", "1__2", "_1", "1_", "-1_", "0x_1F", "0x", "0o", "0b", "1:20",
    "-1:20", "190:20:30", "190:20:30.15", "1e3", "1E3", "1e+3", "1e-3", "1.0e+3", "1.5", ".5", "-.5", "+.5",
    ".5e3", ".5_0", "1.", "1.e3", "1_0.5", "1.0", "-0.0", "1e21", "1e20", "1e400", "-1e400", ".1e400",
    "1e-400", "1.5e-7", "6.8523015e+5", "685.230_15e+03", "0.1", "3.14159265358979", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "+18446744073709551615", "123456789012345678901234567890", ".inf", ".Inf", ".INF",
    "+.inf", "-.inf", "-.Inf", ".iNf", ".nan", ".NaN", "nan", "inf", "Infinity", "0x1p3", "1e", "e3", "0.",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2001-12-14T21:59:43Z",
    "2001-1-2", "2002-02-30", "1.2.3", "v1", "nginx:1.25", "0.0.0.0/0", "a b", "a", "web", "é", "<<", "'<<'",
    "'quoted'", '"dq"', "'yes'", '"0x1F"', "'1e3'", '"\\u00e9\\t"', "''", '""', "!!str 5", "!!str yes",
    "!!int 7", "!!int '7'", "!!int abc", "!!int 1.5", "!!int 0x10", "!!int 18446744073709551615", "!!float 1",
    "!!float 1.5", "!!float abc", "!!float 0x10", "!!float 18446744073709551615", "!!bool yes", "!!bool 1",
    "!!bool false", "!!null ''", "!!null ~", "!!null x", "!!binary aGk=", "!!binary a!", "!!binary 4pyTIMOg",
    "!!timestamp 2001-12-14", "!!timestamp 5", "!!timestamp 2001-12-14T21:59:43Z", "!!timestamp 2001-12-14 1:2:3",
    "!foo 12", "!foo yes", "!!merge <<", "!!set x",
    "|\n  text\n  more", ">-\n  folded\n  line", "|+\n  keep\n", "'multi\n  line'", "plain\n  continued",
    "[a, 1, yes, ~]", "{k: 1, j: [2, 0x3]}", "[]", "{}", "[1:20, =]",
    "1" * 5000, "1" * 300, "0" * 300 + "7", "0x" + "f" * 300, "-" + "9" * 30,
]
# Scalars Kubernetes refuses in a value (or that do not fit their tag): a few per corpus, or few documents pass.
RISKY = [s for s in SCALARS if "inf" in s.lower() or "nan" in s.lower() or (s.startswith("!!")
         and s not in ("!!str 5", "!!str yes", "!!int 7", "!!int '7'", "!!int 0x10", "!!float 1", "!!float 1.5",
                       "!!bool yes", "!!bool false", "!!null ''", "!!null ~", "!!binary aGk=", "!!merge <<"))]
SAFE = [s for s in SCALARS if s not in RISKY]
KEYS = [
    "a", "b", "name", "kind", "1", "01", "0x1", "true", "y", "n", "on", "null", "~", "2001-12-14", "1.5",
    "1.50", "1e3", "1000", "1e6", "0.1", ".inf", "-.inf", ".nan", "=", "'1'", '"true"', "18446744073709551615",
    "-1", "a b", "!!str 1", "!!int 1", "1:20", "'<<'", "k1", "k2", "k3", "k4", "k5", "k6",
]


class _Doc:
    """One generated document: anchors defined so far (and those still open, for recursive aliases)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.anchors: list[str] = []
        self.mappings: list[str] = []  # anchors of mappings (what a merge key wants)
        self.open: list[str] = []
        self.count = 0

    def anchor(self) -> str:
        done = [a for a in self.anchors if a not in self.open]
        if done and self.rng.random() < 0.1:
            return self.rng.choice(done)  # defined again: the later definition wins for the aliases after it
        self.count += 1
        return f"a{self.count}"

    def alias(self) -> str | None:
        rng = self.rng
        if self.open and rng.random() < 0.08:
            return "*" + rng.choice(self.open)  # inside its own anchor: Kubernetes refuses
        return "*" + rng.choice(self.anchors) if self.anchors else None

    def scalar(self, pad: str) -> str:
        text = self.rng.choice(RISKY if self.rng.random() < 0.04 else SAFE)
        return text.replace("\n", "\n" + pad)

    def mapping(self, depth: int, pad: str) -> list[str]:
        rng = self.rng
        lines: list[str] = []
        for _ in range(rng.randint(1, 5)):
            key = rng.choice(KEYS) if rng.random() < 0.35 else f"k{rng.randint(1, 40)}"
            roll = rng.random()
            if roll < 0.07 and (self.mappings or (self.anchors and rng.random() < 0.1)):
                lines.append(f"{pad}<<: {self._merge_value()}")
                continue
            if roll < 0.09:
                lines.append(f"{pad}<<: {{{rng.choice(KEYS)}: {self.scalar('')}, m{depth}: 1}}")
                continue
            lines.extend(self.entry(f"{pad}{key}:", depth, pad))
        return lines

    def _merge_value(self) -> str:
        rng = self.rng
        pool = self.mappings if self.mappings and rng.random() < 0.9 else self.anchors
        if rng.random() < 0.3 and len(pool) >= 2:
            return "[" + ", ".join("*" + a for a in rng.sample(pool, 2)) + "]"
        return "*" + rng.choice(pool)

    def entry(self, head: str, depth: int, pad: str) -> list[str]:
        """`head` (a `key:` or `-`) followed by a value: scalar, alias, nested block or flow collection."""
        rng = self.rng
        roll = rng.random()
        prefix = ""
        if rng.random() < 0.15:
            name = self.anchor()
            prefix = f" &{name}"
        else:
            name = ""
        if roll < 0.1 and not prefix:
            target = self.alias()
            if target:
                return [f"{head} {target}"]
        if depth >= 3 or roll < 0.55:
            value = [f"{head}{prefix} {self.scalar(pad + '  ')}"]
            if name:
                self.anchors.append(name)
            return value
        if name:
            self.open.append(name)
        inner = pad + "  "
        body = self.mapping(depth + 1, inner) if roll < 0.8 else self.sequence(depth + 1, inner)
        if name:
            self.open.remove(name)
            self.anchors.append(name)
            if roll < 0.8:
                self.mappings.append(name)
        return [f"{head}{prefix}", *body]

    def sequence(self, depth: int, pad: str) -> list[str]:
        lines: list[str] = []
        for _ in range(self.rng.randint(1, 4)):
            lines.extend(self.entry(f"{pad}-", depth, pad))
        return lines


def corpus() -> list[str]:
    docs = []
    for seed in SEEDS:
        rng = random.Random(seed)
        for _ in range(DOCS_PER_SEED):
            gen = _Doc(rng)
            docs.append("\n".join(gen.mapping(0, "")) + "\n")
    return docs


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values, types included (1 is not 1.0 is not true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="module")
def yamljson() -> str:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: the differential checker cannot be built")
    done = subprocess.run([str(ROOT / "scripts/build-yamljson")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_every_generated_document_reads_as_kubernetes_reads_it(yamljson: str) -> None:
    docs = corpus()
    assert len(docs) >= 5000
    answers = json.loads(subprocess.run([yamljson], input=json.dumps(docs), capture_output=True, text=True,
                                        check=True).stdout)
    assert len(answers) == len(docs)
    differ, accepted, refused, collisions = [], 0, 0, 0
    for text, go in zip(docs, answers, strict=True):
        ours = yaml_values(text)
        value, problem = ours[0] if ours else (None, None)
        if "error" in go:
            refused += 1
            if problem is None:
                differ.append((text, go["error"], value))
        elif go.get("collision"):
            collisions += 1
            if problem is None:
                differ.append((text, "keys collide in Go", value))
        else:
            accepted += 1
            if problem is not None or not _same(value, json.loads(go["json"])):
                differ.append((text, go["json"], problem or value))
    shown = "\n".join(f"{t!r}\n  go:   {g}\n  ours: {o!r}" for t, g, o in differ[:5])
    assert not differ, f"{len(differ)} of {len(docs)} differ; first:\n{shown}"
    # The corpus must exercise both outcomes, or it proves little.
    assert accepted > len(docs) // 5 and refused > len(docs) // 10, (accepted, refused, collisions)
    print(f"yaml differential: {len(docs)} documents, {accepted} equal JSON, {refused} refused by both, "
          f"{collisions} with colliding keys refused")


def test_plain_equals_sign_of_kube_prometheus_crds(yamljson: str) -> None:
    text = "enum:\n- =\n- '!='\n- =~\n"
    go = json.loads(subprocess.run([yamljson], input=json.dumps([text]), capture_output=True, text=True,
                                   check=True).stdout)[0]
    assert yaml_values(text) == [(json.loads(go["json"]), None)] == [({"enum": ["=", "!=", "=~"]}, None)]
