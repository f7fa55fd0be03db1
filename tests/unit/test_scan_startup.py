"""What a scan's start-up leaves out, and that the collector pause of the CLI's imports does not leak.

The one-file scan is start-up bound (docs/benchmarks.md, "Real repositories"): modules only some inputs or other
commands need load on first use. Each is checked in a fresh interpreter, as the console runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeward.engines.pss import registry
from kubeward.engines.pss.versions import MAX_MINOR, Level, Version

SRC = str(Path(__file__).resolve().parents[2] / "src")
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""


def _python(code: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _modules_after_scan(tmp_path: Path, target: str) -> set[str]:
    (tmp_path / "none.yaml").write_text("")
    out = _python(
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
        "from kubeward.cli.main import main\n"
        f"main(['scan', {target!r}, '-o', 'json', '--exceptions', 'none.yaml', '--output', 'report.json', '--fail-on', 'none'])\n",
        tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["objects"] >= 1
    return set(json.loads(out.strip().splitlines()[-1]))


def test_one_file_scan_leaves_the_first_use_modules_unloaded(tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(DEPLOYMENT)
    loaded = _modules_after_scan(tmp_path, "deploy.yaml")
    assert "kubeward.controls.workload" in loaded  # the scan ran its controls
    at_start = set(json.loads(_python("import json, sys; print(json.dumps(sorted(sys.modules)))", tmp_path)))
    for lazy in ("kubeward.paths", "decimal", "shlex", "kubeward.sources.bounded_run", "dataclasses"):
        assert lazy not in loaded or lazy in at_start, lazy  # an environment's `site` may load one itself


def test_one_file_scan_compiles_no_pattern_its_input_does_not_need(tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(DEPLOYMENT)
    (tmp_path / "none.yaml").write_text("")
    out = _python(
        "import atexit\n"
        "def compiled():\n"
        "    from kubeward.controls import secrets\n"
        "    from kubeward.sources import crd_schema\n"
        "    print(sorted(vars(secrets._CREDENTIAL_VALUE)), sorted(vars(crd_schema._SCHEMA_KEY)))\n"
        "atexit.register(compiled)\n"
        "from kubeward.cli.main import main\n"
        "main(['scan', 'deploy.yaml', '-o', 'json', '--exceptions', 'none.yaml', '--output', 'report.json', "
        "'--fail-on', 'none'])\n",
        tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["objects"] == 1
    assert out.strip().splitlines()[-1] == "['_args'] ['_args']"  # no Secret, no CRD: neither pattern compiled


def test_a_scan_with_attack_paths_loads_no_min_cut(tmp_path: Path) -> None:
    loaded = _modules_after_scan(tmp_path, str(Path(SRC) / "kubeward" / "demo"))
    assert "kubeward.paths.rank" in loaded  # KW-P101 fires on the demo: the graph was built and ranked
    assert "kubeward.paths.cut" not in loaded


def test_paths_analysis_still_cuts() -> None:
    from kubeward.controls.registry import all_controls
    from kubeward.paths import Cut, analyze
    from kubeward.scan import load

    all_controls()
    snapshot = load([str(Path(SRC) / "kubeward" / "demo")])
    analysis = analyze(snapshot, "internet", "cluster-admin")
    assert analysis.paths
    cut = analysis.cut()
    assert isinstance(cut, Cut) and cut.fixes


@pytest.mark.parametrize("enabled", [True, False])
def test_importing_the_cli_restores_the_collector(tmp_path: Path, enabled: bool) -> None:
    out = _python(f"import gc\n{'gc.enable()' if enabled else 'gc.disable()'}\n"
                  "import kubeward.cli.main\nprint(gc.isenabled())\n", tmp_path)
    assert out.strip() == str(enabled)


def test_lazy_pss_plans_equal_the_plans_computed_up_front() -> None:
    for level in Level:
        for minor in (0, 8, 19, 25, MAX_MINOR):
            assert registry.Evaluator(level, Version(minor)).plan == registry._plan(level, minor)
        assert registry.Evaluator(level).plan == registry._plan(level, MAX_MINOR)
