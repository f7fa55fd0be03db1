"""`kubeward netpol …` contract: outputs, exit codes, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli

SHOP = "tests/data/netpol/cli/shop.yaml"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["netpol", *args], input=stdin)
    return r.exit_code, r.stdout, r.stderr


def test_reach_json_contract_every_ordered_pair() -> None:
    code, out, _ = run("reach", SHOP, "--port", "5432", "-o", "json")
    assert code == 0
    doc = orjson.loads(out)
    assert doc["port"] == 5432 and doc["protocol"] == "TCP"
    assert doc["pods"] == ["db/pg-0", "shop/api-1", "shop/web-1"]
    assert len(doc["pairs"]) == 9
    allowed = {(p["from"], p["to"]) for p in doc["pairs"] if p["allowed"]}
    assert ("shop/api-1", "db/pg-0") in allowed
    assert ("shop/web-1", "db/pg-0") not in allowed
    assert {("db/pg-0", "db/pg-0"), ("shop/web-1", "shop/web-1")} <= allowed  # a pod reaches itself


def test_reach_table_and_namespace_filter() -> None:
    code, out, _ = run("reach", SHOP, "--port", "5432", "-n", "db", "--protocol", "tcp")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TCP/5432", "db/pg-0"]
    assert lines[1].split() == ["db/pg-0", "."]


def test_reach_all_ports() -> None:
    code, out, _ = run("reach", SHOP, "-o", "json")
    assert code == 0
    ports = {(p["from"], p["to"]): p["ports"] for p in orjson.loads(out)["pairs"]}
    assert ports[("shop/api-1", "db/pg-0")] == "TCP 5432"
    assert ports[("shop/web-1", "shop/api-1")] == "TCP 9000,9100-9102"
    assert ports[("db/pg-0", "shop/web-1")] == "None"
    assert ports[("shop/api-1", "shop/web-1")] == "All"
    code, out, _ = run("reach", SHOP)
    assert "shop/web-1 => shop/api-1 : TCP 9000,9100-9102" in out


def test_explain_exit_codes_and_reasons() -> None:
    code, out, _ = run("explain", "shop/api-1", "db/pg-0", SHOP, "--port", "5432")
    assert code == 0
    assert "ALLOWED" in out and "allow by db/pg-from-api ingress[0]" in out
    code, out, _ = run("explain", "shop/web-1", "db/pg-0", SHOP, "--port", "5432", "-o", "json")
    assert code == 1
    doc = orjson.loads(out)
    assert doc["allowed"] is False and doc["ingress"]["isolated"] is True
    assert {r["policy"] for r in doc["ingress"]["reasons"]} == {"db/default-deny", "db/pg-from-api"}
    code, _, err = run("explain", "shop/ghost", "db/pg-0", SHOP, "--port", "1")
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("kubeward: unknown pod 'shop/ghost'")
    # before it, one line per policy the apiserver would reject (the fixture has some on purpose)
    assert all("the apiserver would reject it" in line for line in lines[:-1])


def test_lint_reports_engine_findings() -> None:
    code, out, _ = run("lint", SHOP, "-o", "json")
    assert code == 0  # medium and low findings stay under the default --fail-on high
    assert run("lint", SHOP, "-o", "json", "--fail-on", "medium")[0] == 1
    ids = {f["control"]["id"] for f in orjson.loads(out)["findings"]}
    assert {"KW-N102", "KW-N103", "KW-N104", "KW-N112"} <= ids


def test_check_flows_alerts_and_bad_lines(tmp_path: Path) -> None:
    flows = tmp_path / "flows.jsonl"
    flows.write_text(
        '{"src":"shop/api-1","dst":"db/pg-0","port":5432,"protocol":"TCP"}\n'
        '{"src":"shop/web-1","dst":"10.1.1.5","port":5432}\n'
        "not json\n")
    code, out, err = run("check-flows", "--flows", str(flows), SHOP)
    assert code == 1
    alerts = [orjson.loads(line) for line in out.splitlines()]
    assert alerts == [{"alert": "unauthorized communication attempt", "src": "shop/web-1", "dst": "10.1.1.5",
                       "port": 5432, "protocol": "TCP", "denied": ["ingress"],
                       "policies": ["db/default-deny", "db/pg-from-api"]}]
    assert f"kubeward: {flows}: line 3: not JSON" in err
    code, out, _ = run("check-flows", "--flows", "-", SHOP,
                       stdin='{"src":"shop/api-1","dst":"db/pg-0","port":5432}\n')
    assert code == 0 and out == ""


def test_generate_round_trip(tmp_path: Path) -> None:
    flows = tmp_path / "flows.jsonl"
    flows.write_text('{"src":"shop/web-1","dst":"shop/api-1","port":9000}\n'
                     '{"src":"shop/api-1","dst":"db/pg-0","port":5432}\n')
    code, out, _ = run("generate", "--flows", str(flows), SHOP)
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert {d["metadata"]["name"] for d in docs} == {"web-least-privilege", "api-least-privilege",
                                                     "postgres-least-privilege"}
    generated = tmp_path / "generated.yaml"
    generated.write_text(out)
    # with only the generated policies (plus pods), the observed flows pass and others alert
    pods_only = tmp_path / "pods.yaml"
    pods_only.write_text(yaml.safe_dump_all([d for d in yaml.safe_load_all(Path(SHOP).read_text())
                                             if d["kind"] != "NetworkPolicy"]))
    code, out, _ = run("check-flows", "--flows", str(flows), str(pods_only), str(generated))
    assert code == 0 and out == ""
    # DNS keeps working under the egress isolation they add, and kubeward's own lint finds nothing in them
    for d in docs:
        assert {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "TCP", "port": 53}, {"protocol": "UDP", "port": 53}]} in d["spec"]["egress"]
    code, out, _ = run("lint", str(pods_only), str(generated), "-o", "json")
    assert not [f for f in orjson.loads(out)["findings"] if f["control"]["id"].startswith("KW-N1")]
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"src":"shop/web-1","dst":"db/pg-0","port":5432}\n')
    code, out, _ = run("check-flows", "--flows", str(extra), str(pods_only), str(generated))
    assert code == 1 and "unauthorized communication attempt" in out


@pytest.mark.parametrize("args", [
    ("reach",),
    ("reach", "tests/data/netpol/cli/missing.yaml"),
    ("check-flows", "--flows", "/nonexistent/flows", SHOP),
    ("generate", "--flows", "/dev/null", SHOP),
    ("reach", SHOP, "--port", "70000"),
])
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...]) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert "Traceback" not in err
    assert err.strip()


def test_ipblock_switch_changes_the_answer(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "s", "namespace": "a", "labels": {"app": "s"}},
         "spec": {"containers": [{"name": "c"}]}, "status": {"podIP": "10.0.0.2"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "a", "labels": {"app": "c"}},
         "spec": {"containers": [{"name": "c"}]}, "status": {"podIP": "10.0.0.3"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
         "spec": {"podSelector": {"matchLabels": {"app": "s"}},
                  "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.3/32"}}]}]}},
    ]))
    assert run("explain", "a/c", "a/s", str(f), "--port", "80")[0] == 0
    assert run("explain", "a/c", "a/s", str(f), "--port", "80", "--ipblock-matches-pods=false")[0] == 1


def test_scan_runs_the_engine_controls() -> None:
    r = CliRunner().invoke(cli, ["scan", SHOP, "-o", "json", "--include-controls", "KW-N103,KW-N112"])
    assert r.exit_code == 0  # medium findings stay under the default --fail-on high
    found = {(f["control"]["id"], f["object"]["name"]) for f in orjson.loads(r.stdout)["findings"]}
    assert found == {("KW-N103", "api-ingress"), ("KW-N112", "pg-0")}


def _table_cells(out: str, names: list[str]) -> dict[tuple[str, str], str]:
    """Read the reach table back by header positions: every cell must sit under its header's last character."""
    lines = out.splitlines()
    legend = lines.index(". allowed   X denied   (rows: from, columns: to)")
    blocks: list[list[str]] = [[]]
    for line in lines[:legend]:
        if line:
            blocks[-1].append(line)
        else:
            blocks.append([])
    short = all(len(n) <= 12 for n in names)
    cells: dict[tuple[str, str], str] = {}
    for block in blocks:
        head, rows = block[0], block[1:]
        assert len(rows) == len(names)
        ends = [m.end() - 1 for m in re.finditer(r"\S+", head)][1:]  # skip the title
        heads = head.split()[1:]
        for r, row in enumerate(rows):
            assert len(row) == len(head), (row, head)  # right-aligned cells end where the header ends
            for h, end in zip(heads, ends, strict=True):
                assert row[end] in ".X", (row, end)
                assert end + 1 == len(row) or row[end + 1] == " "
                cells[(names[r], h if short else names[int(h)])] = row[end]
    return cells


@pytest.mark.parametrize("width", [80, 81, 97, 100, 120, 133, 160, 199, 200])
def test_reach_table_aligns_with_headers_at_every_width(tmp_path: Path, width: int) -> None:
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                                  for n in ("a", "observability-long-namespace")]
    names = []
    for i in range(23):
        namespace = "a" if i % 3 else "observability-long-namespace"
        name = f"p{i}" + ("-prometheus-node-exporter-x7k2q" * (i % 4))
        names.append(f"{namespace}/{name}")
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "namespace": namespace, "labels": {"app": f"x{i % 5}"}},
                     "spec": {"containers": [{"name": "c"}]}})
    objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "p", "namespace": "a"},
                 "spec": {"podSelector": {"matchLabels": {"app": "x1"}},
                          "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "x2"}}}]}]}})
    f = tmp_path / "many.yaml"
    f.write_text(yaml.safe_dump_all(objs))
    r = CliRunner().invoke(cli, ["netpol", "reach", str(f), "--port", "80"], env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    legend = lines.index(". allowed   X denied   (rows: from, columns: to)")
    assert max(len(line) for line in lines[:legend + 1]) <= width
    for line in lines[legend + 1:]:  # the full names of shortened labels: only a longer name may pass the width
        k, _, full = line.partition(": ")
        assert full == sorted(names)[int(k)] and (len(line) <= width or len(full) > width - len(k) - 2)
    got = _table_cells(r.stdout, sorted(names))
    doc = orjson.loads(run("reach", str(f), "--port", "80", "-o", "json")[1])
    want = {(p["from"], p["to"]): "." if p["allowed"] else "X" for p in doc["pairs"]}
    assert got == want
    assert "X" in want.values()


@pytest.mark.parametrize("width", [80, 120, 200])
def test_reach_table_short_names_keep_name_headers(width: int) -> None:
    r = CliRunner().invoke(cli, ["netpol", "reach", SHOP, "--port", "5432"], env={"COLUMNS": str(width)})
    names = ["db/pg-0", "shop/api-1", "shop/web-1"]
    got = _table_cells(r.stdout, names)
    assert got[("shop/web-1", "db/pg-0")] == "X" and got[("shop/api-1", "db/pg-0")] == "."
