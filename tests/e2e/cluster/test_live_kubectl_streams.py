"""Files kubectl reads as JSON streams (`{...}{...}`, apimachinery util/yaml YAMLOrJSONDecoder) are read by
kubeward as by the real kubectl: seeded files of one to four JSON objects with every separator Go's json.Decoder
takes, leading whitespace, and the tails that decide the decoder's switch to YAML (a YAML document after one
object is read; after two or more, anything but JSON is an error and the objects before it stay). kubectl
(built from the official v1.37 modules) runs `create --dry-run=client -o name -f FILE` against the harness; the
objects it names, in order, and whether it reports an error must be kubeward's (an error or a document skipped as
no Kubernetes object)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from kubeward.sources.files import load_paths

SEEDS = range(12)
FILES_PER_SEED = 25
SEPARATORS = ["", "\n", " ", "\n\n", "\t\n", "\r\n", "  \n  "]
TAILS = ["", "\n", "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tail-yaml\n",
         "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: tail-flow}\n",
         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tail-bare\n", "}\n", "xyz\n", "[1, 2]\n",
         "# a comment\n"]


def _cm(name: str, rng: random.Random) -> str:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": str(rng.random())}}
    return json.dumps(obj, indent=rng.choice([None, 2]))


def _file(rng: random.Random, n: int) -> str:
    text = rng.choice(["", "\n", "  ", "\n \n"])
    for i in range(rng.randint(1, 4)):
        text += (rng.choice(SEPARATORS) if i else "") + _cm(f"cm-{n}-{i}", rng)
    return text + rng.choice(SEPARATORS) + rng.choice(TAILS)


def _kubeward(path: Path) -> tuple[list[str], bool]:
    result = load_paths([str(path)])
    # kubectl refuses a document that is no object; kubeward reads folders of other YAML too and names such a
    # document as skipped (`-v`): either is "not read", kubectl's error
    return [f"configmap/{r.name}" for r in result.resources], bool(result.errors or result.skipped)


def test_json_streams_read_as_kubectl_reads_them(live: Any, kubectl: Path, tmp_path: Path) -> None:
    disagree, total = [], 0
    for seed in SEEDS:
        rng = random.Random(seed)
        for n in range(FILES_PER_SEED):
            text = _file(rng, n)
            path = tmp_path / f"s{seed}-{n}.json"
            path.write_text(text)
            r = subprocess.run([str(kubectl), "--kubeconfig", str(live.kubeconfig), "create", "--dry-run=client",
                                "-o", "name", "-n", "default", "-f", str(path)],
                               capture_output=True, text=True, timeout=60, check=False)
            theirs = (r.stdout.split(), r.returncode != 0)
            ours = _kubeward(path)
            total += 1
            if ours != theirs:
                disagree.append((path.name, text, theirs, ours, r.stderr[-300:]))
    assert total == len(SEEDS) * FILES_PER_SEED
    assert not disagree, disagree[:3]
