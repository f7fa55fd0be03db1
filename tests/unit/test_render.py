"""Helm charts and kustomizations among the inputs (sources/render.py): the `# Source:` mapping, lines only where
they are honest, the missing-tool line, render failures, timeouts and output caps (with fake tools on PATH; the
real helm and kustomize run in tests/e2e/test_render_tools.py)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.sources.files import LoadResult
from kubeward.sources.render import (
    RenderOptions,
    add_helm_output,
    add_kustomize_output,
    first_error_line,
    helm_argv,
    missing_helm,
    origin_file,
    plan_inputs,
    source_file,
    split_helm_output,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fake tools are shell scripts")

PRIV_TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Values.name }}
spec:
  containers:
    - name: app
      image: nginx:1.25
      securityContext:
        privileged: true
"""

LITERAL = """\
{{- if .Values.debug }}
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  hostPID: true
  containers:
    - name: shell
      image: busybox:1.36
{{- end }}
"""


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def chart(root: Path, folder: str = "mychart", name: str = "mychart") -> Path:
    c = root / folder
    (c / "templates").mkdir(parents=True)
    (c / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (c / "templates" / "pod.yaml").write_text(PRIV_TEMPLATE)
    (c / "templates" / "debug.yaml").write_text(LITERAL)
    return c


def rendered(name: str = "mychart") -> str:
    """What `helm template` prints for chart() with name=web, debug=true (pkg/action/action.go's layout)."""
    pod = PRIV_TEMPLATE.replace("{{ .Values.name }}", "web")
    debug = LITERAL.split("\n", 1)[1].rsplit("{{- end }}", 1)[0].strip()
    return (f"---\n# Source: {name}/templates/debug.yaml\n{debug}\n"
            f"---\n# Source: {name}/templates/pod.yaml\n{pod.strip()}\n")


def fake_tool(bindir: Path, name: str, script: str, prints: str | None = None) -> Path:
    """A shell script standing in for `name`: `script`, then with `prints`, it records its arguments in
    bindir/NAME.args and prints that text using shell builtins only (the tests' PATH holds nothing else)."""
    bindir.mkdir(parents=True, exist_ok=True)
    tool = bindir / name
    if prints is not None:
        (bindir / f"{name}.out").write_text(prints)
        script += (f'echo "$@" > "{bindir / name}.args"\n'
                   f'while IFS= read -r line; do printf "%s\\n" "$line"; done < "{bindir / name}.out"\n')
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------------------------------ planning the inputs

def test_a_chart_folder_is_rendered_not_walked(in_tmp: Path) -> None:
    chart(in_tmp / "apps")
    (in_tmp / "apps" / "plain.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    k = in_tmp / "apps" / "overlay"
    k.mkdir()
    (k / "Kustomization").write_text("resources: [x.yaml]\n")
    (k / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    files, renders = plan_inputs(["apps"])
    assert [f for f, _ in files] == ["apps/plain.yaml"]  # no templates/*.yaml, no kustomization resources
    assert [(r.kind, r.shown) for r in renders] == [("helm", "apps/mychart"), ("kustomize", "apps/overlay")]
    _, direct = plan_inputs(["apps/mychart"])
    assert [r.shown for r in direct] == ["apps/mychart"]


def test_chart_wins_over_a_kustomization_in_the_same_folder(in_tmp: Path) -> None:
    c = chart(in_tmp)
    (c / "kustomization.yaml").write_text("resources: []\n")
    assert [r.kind for r in plan_inputs(["mychart"])[1]] == ["helm"]


# ------------------------------------------------------------------------------------------ the # Source: mapping

def test_split_helm_output_keeps_every_block_and_its_source() -> None:
    text = "---\n# Source: a/templates/x.yaml\nkind: A\n---\n# Source: a/crds/c.yaml\nkind: C\n---\nkind: D\n"
    assert split_helm_output(text) == [("a/templates/x.yaml", "kind: A\n"), ("a/crds/c.yaml", "kind: C\n---\nkind: D\n")]
    assert split_helm_output("kind: X\n") == [("", "kind: X\n")]


def test_source_file_uses_chart_names_aliases_and_archives(tmp_path: Path) -> None:
    top = tmp_path / "folder"
    (top / "charts" / "db-dir").mkdir(parents=True)
    (top / "charts" / "db-dir" / "Chart.yaml").write_text("apiVersion: v2\nname: db\nversion: 1.0.0\n")
    (top / "charts" / "plain").mkdir()
    (top / "charts" / "plain" / "Chart.yaml").write_text("apiVersion: v2\nname: plain\nversion: 1.0.0\n")
    for archive in ("redis-17.0.0.tgz", "cache-1.0.0.tgz", "cache-extra-2.0.0.tgz"):
        (top / "charts" / archive).write_bytes(b"\x1f\x8b")
    (top / "Chart.yaml").write_text(
        "apiVersion: v2\nname: top\nversion: 1.0.0\ndependencies:\n"
        "- {name: db, version: 1.0.0, alias: primary}\n- {name: redis, version: 17.0.0}\n"
        "- {name: cache, version: 1.0.0, alias: store}\n")
    d = str(top)
    # the top chart's name (not its folder) starts the path
    assert source_file(d, "top/templates/x.yaml") == (os.path.join(d, "templates", "x.yaml"), True)
    # a subchart is found by the name in its Chart.yaml, and through the alias its parent gives it
    sub = os.path.join(d, "charts", "db-dir", "templates", "x.yaml")
    assert source_file(d, "top/charts/db/templates/x.yaml") == (sub, True)
    assert source_file(d, "top/charts/primary/templates/x.yaml") == (sub, True)
    assert source_file(d, "top/charts/plain/crds/c.yaml") == (os.path.join(d, "charts", "plain", "crds", "c.yaml"), True)
    # a packaged subchart: only its archive can be named
    assert source_file(d, "top/charts/redis/templates/x.yaml") == (os.path.join(d, "charts", "redis-17.0.0.tgz"), False)
    # an aliased packaged subchart: the archive of the chart the alias names, at the dependency's version
    assert source_file(d, "top/charts/store/templates/x.yaml") == (os.path.join(d, "charts", "cache-1.0.0.tgz"), False)
    assert source_file(d, "top/charts/gone/templates/x.yaml") == (os.path.join(d, "charts"), False)


def test_lines_only_where_the_rendered_text_is_in_the_template(in_tmp: Path) -> None:
    c = chart(in_tmp, folder="folder", name="mychart")
    result = LoadResult()
    add_helm_output(rendered().encode(), "folder", result, 1 << 20)
    assert not result.errors
    by_name = {r.name: r for r in result.resources}
    # the literal document inside `{{ if }}`: the template file's own lines (its `apiVersion` is line 2)
    debug = by_name["debug"]
    assert (debug.file, debug.line) == ("folder/templates/debug.yaml", 2)
    assert debug.location("/spec/hostPID").line == 7 == LITERAL.splitlines().index("  hostPID: true") + 1
    # a templated document: the template file, no line (rendered lines are helm's, not the template's)
    pod = by_name["web"]
    assert (pod.file, pod.line) == ("folder/templates/pod.yaml", None)
    assert pod.location("/spec/containers/0/securityContext/privileged").line is None
    assert result.files_read == 2
    assert c.is_dir()


def test_a_document_found_twice_in_its_template_gets_no_line(in_tmp: Path) -> None:
    c = chart(in_tmp)
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n"
    (c / "templates" / "twice.yaml").write_text(f"{doc}---\n{doc}")
    out = f"---\n# Source: mychart/templates/twice.yaml\n{doc}\n---\n# Source: mychart/templates/twice.yaml\n{doc}\n"
    result = LoadResult()
    add_helm_output(out.encode(), "mychart", result, 1 << 20)
    assert [(r.file, r.line) for r in result.resources] == [("mychart/templates/twice.yaml", None)] * 2


def test_an_indented_document_keeps_its_indentation(in_tmp: Path) -> None:
    c = chart(in_tmp)
    doc = "  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: indented\n"
    (c / "templates" / "cm.yaml").write_text(doc)
    result = LoadResult()
    add_helm_output(f"---\n# Source: mychart/templates/cm.yaml\n{doc}\n".encode(), "mychart", result, 1 << 20)
    assert result.errors == []
    assert [(r.name, r.file, r.line) for r in result.resources] == [("indented", "mychart/templates/cm.yaml", 1)]


def test_a_forged_source_line_never_names_a_file_outside_the_chart(in_tmp: Path) -> None:
    chart(in_tmp)
    (in_tmp / "elsewhere.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    out = "---\n# Source: mychart/../../elsewhere.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
    result = LoadResult()
    add_helm_output(out.encode(), "mychart", result, 1 << 20)
    assert [(r.file, r.line) for r in result.resources] == [("mychart", None)]


def test_invalid_rendered_yaml_names_the_template_and_says_rendered(in_tmp: Path) -> None:
    chart(in_tmp)
    out = "---\n# Source: mychart/templates/pod.yaml\nkind: [unclosed\n"
    result = LoadResult()
    add_helm_output(out.encode(), "mychart", result, 1 << 20)
    [e] = result.errors
    assert e.file == "mychart/templates/pod.yaml"
    assert e.message.startswith("as rendered by helm template: invalid YAML")


def test_helm_argv_passes_values_sets_namespace_release_and_crds() -> None:
    opts = RenderOptions(values=("a.yaml", "b.yaml"), set_values=("x=1", "y.z=2"), release_name="rel", namespace="shop")
    assert helm_argv("helm", "./c", opts) == [
        "helm", "template", "rel", "./c", "--include-crds", "--namespace", "shop",
        "--values", "a.yaml", "--values", "b.yaml", "--set", "x=1", "--set", "y.z=2"]
    # no -n: `default`, never the kubeconfig context's namespace
    assert helm_argv("helm", "./c", RenderOptions())[2:] == ["./c", "--include-crds", "--namespace", "default"]


# ------------------------------------------------------------------------------------------ kustomize's origin

def test_origin_file_names_the_resource_and_is_removed(tmp_path: Path) -> None:
    k = tmp_path / "overlay"
    k.mkdir()
    (k / "kustomization.yml").write_text("resources: []\n")
    obj = {"metadata": {"name": "x", "annotations": {"config.kubernetes.io/origin": "path: ../base/deploy.yaml\n"}}}
    assert origin_file(obj, str(k), str(k)) == str(tmp_path / "base" / "deploy.yaml")
    # relative to the folder kustomize built (kubeward's wrapper), not to the kustomization
    wrapped = {"metadata": {"annotations": {"config.kubernetes.io/origin": "path: ../overlay/x.yaml\n"}}}
    assert origin_file(wrapped, str(tmp_path / "wrapper"), str(k)) == str(k / "x.yaml")
    assert obj == {"metadata": {"name": "x"}}  # the annotation judged nothing, and left no empty map
    kept = {"metadata": {"annotations": {"a": "b", "config.kubernetes.io/origin": "path: d.yaml\n"}}}
    assert origin_file(kept, str(k), str(k)) == str(k / "d.yaml")
    assert kept == {"metadata": {"annotations": {"a": "b"}}}
    generated = {"metadata": {"annotations": {"config.kubernetes.io/origin":
                                              "configuredIn: kustomization.yml\nconfiguredBy:\n  kind: x\n"}}}
    assert origin_file(generated, str(k), str(k)) == str(k / "kustomization.yml")
    remote = {"metadata": {"annotations": {"config.kubernetes.io/origin":
                                           "path: x.yaml\nrepo: https://github.com/a/b\nref: v1\n"}}}
    assert origin_file(remote, str(k), str(k)) == str(k / "kustomization.yml")
    assert origin_file({"metadata": {}}, str(k), str(k)) == str(k / "kustomization.yml")


def test_kustomize_output_has_files_without_lines(tmp_path: Path) -> None:
    out = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    config.kubernetes.io/origin: |\n"
           "      path: cm.yaml\n  name: c\n")
    result = LoadResult()
    add_kustomize_output(out.encode(), str(tmp_path), result)
    [r] = result.resources
    assert (r.file, r.line, r.annotations) == (str(tmp_path / "cm.yaml"), None, {})


# ------------------------------------------------------------------------------------------ tools: missing, failing

PLAIN = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  hostNetwork: true\n  containers:\n  - {name: a, image: nginx:1.25}\n"


def test_missing_helm_is_one_line_and_the_scan_goes_on(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart(in_tmp)
    (in_tmp / "plain.yaml").write_text(PLAIN)
    (in_tmp / "empty").mkdir()
    monkeypatch.setenv("PATH", str(in_tmp / "empty"))
    code, out, err = run("scan", "mychart", "plain.yaml", "-o", "json", "--include-controls", "KW-W004")
    assert err.splitlines() == [f"kubeward: mychart: {missing_helm('mychart')}"] == [
        "kubeward: mychart: helm is not installed; install helm (https://helm.sh) or render the chart yourself: "
        "helm template mychart | kubeward scan -"]
    doc = json.loads(out)
    assert [f["location"]["file"] for f in doc["findings"]] == ["plain.yaml"]  # the rest of the scan went on
    assert doc["errors"] == [{"file": "mychart", "message": missing_helm("mychart")}]
    # the exit code is the one of any unreadable input next to a readable one
    (in_tmp / "broken.yaml").write_text("kind: [\n")
    code_broken, _, _ = run("scan", "broken.yaml", "plain.yaml", "-o", "json", "--include-controls", "KW-W004")
    assert code == code_broken
    # nothing else readable: nothing was scanned, exit 2
    assert run("scan", "mychart")[0] == 2


def test_missing_kustomize_and_kubectl(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "k").mkdir()
    (in_tmp / "k" / "kustomization.yaml").write_text("resources: []\n")
    (in_tmp / "empty").mkdir()
    monkeypatch.setenv("PATH", str(in_tmp / "empty"))
    code, _, err = run("scan", "k")
    assert err.splitlines() == ["kubeward: k: kustomize is not installed (nor kubectl); install kustomize "
                                "(https://kustomize.io) or render it yourself: kustomize build k | kubeward scan -"]
    assert code == 2


def test_kubectl_kustomize_when_kustomize_is_absent(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "k").mkdir()
    (in_tmp / "k" / "kustomization.yaml").write_text("resources: [p.yaml]\n")
    fake_tool(in_tmp / "bin", "kubectl", "", prints=PLAIN)
    monkeypatch.setenv("PATH", str(in_tmp / "bin"))
    code, out, err = run("scan", "k", "-o", "json", "--include-controls", "KW-W004")
    assert (code, err) == (1, "")
    assert (in_tmp / "bin" / "kubectl.args").read_text().startswith("kustomize ")
    [f] = json.loads(out)["findings"]
    assert f["location"] == {"file": "k/kustomization.yaml"}  # no origin annotation in this output: the file


def test_a_kustomize_that_refuses_the_wrapper_builds_the_folder_itself(in_tmp: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "k").mkdir()
    (in_tmp / "k" / "kustomization.yaml").write_text("resources: [p.yaml]\n")
    fake_tool(in_tmp / "bin", "kustomize",
              'case "$2" in *kubeward-kustomize-*) echo "Error: json: unknown field \\"buildMetadata\\"" >&2; exit 1;; esac\n',
              prints=PLAIN)
    monkeypatch.setenv("PATH", str(in_tmp / "bin"))
    code, out, err = run("scan", "k", "-o", "json", "--include-controls", "KW-W004")
    assert (code, err) == (1, "")
    assert (in_tmp / "bin" / "kustomize.args").read_text().split() == ["build", "k"]
    [f] = json.loads(out)["findings"]
    assert f["location"] == {"file": "k/kustomization.yaml"}


def test_render_failure_is_helms_first_error_line(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart(in_tmp)
    (in_tmp / "plain.yaml").write_text(PLAIN)
    fake_tool(in_tmp / "bin", "helm",
              'echo "walk.go:75: found symbolic link in path" >&2\n'
              'echo "Error: template: mychart/templates/pod.yaml:4:20: executing ... nil pointer" >&2\n'
              'echo "Use --debug flag to render out invalid YAML" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(in_tmp / "bin"))
    code, out, err = run("scan", "mychart", "plain.yaml", "-o", "json", "--include-controls", "KW-W004")
    assert code == 2  # a chart that cannot be rendered is an unreadable input: it fails the gate
    assert err.splitlines() == [
        "kubeward: mychart: helm template failed: template: mychart/templates/pod.yaml:4:20: executing ... nil pointer"]
    assert len(json.loads(out)["findings"]) == 1


def test_helm_gets_the_scan_flags_and_findings_point_to_templates(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart(in_tmp, folder="charts-here", name="mychart")
    fake_tool(in_tmp / "bin", "helm", "", prints=rendered())
    monkeypatch.setenv("PATH", str(in_tmp / "bin"))
    code, out, err = run("scan", "charts-here", "--values", "v1.yaml", "--values", "v2.yaml", "--set", "debug=true",
                         "--release-name", "rel", "-n", "shop", "-o", "json",
                         "--include-controls", "KW-W001,KW-W002")
    assert (code, err) == (1, "")
    assert (in_tmp / "bin" / "helm.args").read_text().split() == ["template", "rel", "./charts-here", "--include-crds", "--namespace", "shop",
                                        "--values", "v1.yaml", "--values", "v2.yaml", "--set", "debug=true"]
    doc = json.loads(out)
    got = sorted((f["control"]["id"], f["object"]["namespace"], f["location"].get("file"), f["location"].get("line"))
                 for f in doc["findings"])
    assert got == [("KW-W001", "shop", "charts-here/templates/pod.yaml", None),
                   ("KW-W002", "shop", "charts-here/templates/debug.yaml", 7)]
    # SARIF: a region only where the line is known
    _, sarif, _ = run("scan", "charts-here", "-o", "sarif", "--include-controls", "KW-W001,KW-W002")
    places = sorted((r["ruleId"], json.dumps(r["locations"][0]["physicalLocation"], sort_keys=True))
                    for r in json.loads(sarif)["runs"][0]["results"])
    assert places == [
        ("KW-W001", json.dumps({"artifactLocation": {"uri": "charts-here/templates/pod.yaml", "uriBaseId": "%SRCROOT%"}}, sort_keys=True)),
        ("KW-W002", json.dumps({"artifactLocation": {"uri": "charts-here/templates/debug.yaml", "uriBaseId": "%SRCROOT%"},
                                "region": {"startLine": 7}}, sort_keys=True))]


def test_helm_flags_without_a_chart_are_a_usage_error(in_tmp: Path) -> None:
    (in_tmp / "plain.yaml").write_text(PLAIN)
    code, _, err = run("scan", "plain.yaml", "--values", "values.yaml")
    assert code == 2
    assert "no folder with a Chart.yaml" in err


def test_helm_flags_with_cluster_are_a_usage_error() -> None:
    code, _, err = run("scan", "--cluster", "--set", "a=b")
    assert (code, err.strip()) == (2, "kubeward: --values, --set and --release-name render Helm charts: not with --cluster")


def test_a_render_that_hangs_is_stopped(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart(in_tmp)
    fake_tool(in_tmp / "bin", "helm", "exec sleep 30\n")
    monkeypatch.setenv("PATH", str(in_tmp / "bin") + os.pathsep + os.environ.get("PATH", ""))
    code, _, err = run("scan", "mychart", "--render-timeout", "0.5")
    assert err.splitlines() == ["kubeward: mychart: helm template did not finish within 0.5 s and was stopped"]
    assert code == 2


def test_render_output_is_capped_by_max_file_size(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart(in_tmp)
    fake_tool(in_tmp / "bin", "helm", "exec yes 'a: b'\n")  # endless output
    monkeypatch.setenv("PATH", str(in_tmp / "bin") + os.pathsep + os.environ.get("PATH", ""))
    code, _, err = run("scan", "mychart", "--max-file-size", "1M")
    assert err.splitlines() == [
        "kubeward: mychart: helm template printed over 1 MiB, the input limit (raise it with --max-file-size)"]
    assert code == 2


def test_first_error_line() -> None:
    assert first_error_line(b"warn\nError: boom\nError: second\n") == "boom"
    assert first_error_line(b"\n  plain failure \nmore\n") == "plain failure"
    assert first_error_line(b"") == ""
    helm_v4 = (b'Error: bad/templates/cm.yaml:4:18\n  executing "bad/templates/cm.yaml" at <.Values.a.b>:\n'
               b"    nil pointer evaluating interface {}.b\n\nUse --debug flag to render out invalid YAML\n")
    assert first_error_line(helm_v4) == ('bad/templates/cm.yaml:4:18: executing "bad/templates/cm.yaml" at '
                                         '<.Values.a.b>: nil pointer evaluating interface {}.b')
    # helm v4 on a chart whose values.schema.json refuses the values (its testdata chart-with-schema-negative): the
    # chart and the violations follow unindented, and are the part that says what to fix
    schema = (b"Error: values don't meet the specifications of the schema(s) in the following chart(s):\nempty:\n"
              b"- at '': missing property 'employmentInfo'\n- at '/age': minimum: got -5, want 0\n")
    assert first_error_line(schema) == ("values don't meet the specifications of the schema(s) in the following "
                                        "chart(s): empty: at '': missing property 'employmentInfo'; at '/age': "
                                        "minimum: got -5, want 0")
    many = b"Error: values don't meet:\nc:\n" + b"".join(b"- at '/x%d': wrong\n" % i for i in range(100))
    assert len(first_error_line(many)) == 400 and first_error_line(many).endswith("…")


# ------------------------------------------------------------------------------------------ property: honest lines

_KEY = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
_PREFIX_LINE = st.sampled_from(["{{- if .Values.on }}", "# a comment", "{{/* note */}}", "", "{{- with .Values.x }}"])


@settings(max_examples=60, deadline=None)
@given(extra=st.dictionaries(_KEY, st.integers(0, 99), max_size=5), prefix=st.lists(_PREFIX_LINE, max_size=4),
       copies=st.integers(1, 2))
def test_a_line_is_given_only_when_it_is_the_templates_line(tmp_path_factory: pytest.TempPathFactory,
                                                             extra: dict[str, int], prefix: list[str],
                                                             copies: int) -> None:
    root = tmp_path_factory.mktemp("prop")
    (root / "templates").mkdir()
    data = "".join(f"  {k}: {v}\n" for k, v in extra.items())
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  fixed: 1\n{data}".rstrip("\n")
    template = "".join(f"{p}\n" for p in prefix) + "\n---\n".join([body] * copies) + "\n"
    (root / "templates" / "t.yaml").write_text(template)
    out = f"---\n# Source: c/templates/t.yaml\n{body}\n"
    result = LoadResult()
    add_helm_output(out.encode(), str(root), result, 1 << 20)
    [r] = result.resources
    lines = template.splitlines()
    if copies == 1:
        # every key's line is the line where that key is written in the template file
        assert r.line == lines.index("apiVersion: v1") + 1
        for k in ("fixed", *extra):
            assert lines[r.location(f"/data/{k}").line - 1].startswith(f"  {k}: ")  # type: ignore[operator]
    else:
        assert (r.line, r.location("/data/fixed").line) == (None, None)  # two places: neither is claimed
