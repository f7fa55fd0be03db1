"""The file source: formats, origins, and hostile input (each problem one error, the rest still read)."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from pathlib import Path

import pytest
import yaml

from kubeward.sources.files import MAX_DEPTH, load_paths

BAD = Path("tests/data/bad")

POD = """\
# a comment
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
spec:
  containers:
  - name: app
    image: nginx:1.25
    securityContext:
      privileged: true
"""


def test_line_of_first_key_and_of_a_path(tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD + "---\n\n" + POD.replace("web", "api"))
    res = load_paths([str(f)]).resources
    assert [r.name for r in res] == ["web", "api"]
    assert res[0].line == 2
    assert res[1].line == 16
    assert res[0].line_of("/spec/containers/0/securityContext/privileged") == 12
    assert res[0].line_of("/spec/containers/0") == 9  # the list item's first key
    assert res[0].line_of("/spec/containers/0/notthere") == 9
    assert res[1].location("/spec/containers/0/image").line == 24


def test_kind_list_items_keep_their_own_lines(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n"
    )
    res = load_paths([str(f)]).resources
    assert [(r.name, r.line) for r in res] == [("a", 4), ("b", 7)]


def test_lists_inside_lists_are_flattened_as_kubectl_does() -> None:
    """cli-runtime's own fixture: six Pods in three nested Lists; kubectl applies six Pods, none is a List."""
    res = load_paths(["tests/data/upstream/cli-runtime/deeply-nested.yaml"]).resources
    assert [(r.kind, r.line) for r in res] == [("Pod", n) for n in (6, 8, 13, 15, 20, 22)]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_nested_list_order_and_item_kinds(tmp_path: Path, suffix: str) -> None:
    """A list's own objects come before those of the lists it holds (FlattenListVisitor's order); a typed
    list's kind-less items take its kind at every depth; a bad nested list is one error."""
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMapList", "items": [{"metadata": {"name": "inner"}}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "outer"}},
        {"apiVersion": "v1", "kind": "List", "items": "x"}]}
    f = tmp_path / f"nested{suffix}"
    f.write_text(json.dumps(doc, indent=1) if suffix == ".json" else yaml.safe_dump(doc))
    result = load_paths([str(f)])
    assert [(r.kind, r.name) for r in result.resources] == [("ConfigMap", "outer"), ("ConfigMap", "inner")]
    assert [e.message for e in result.errors] == ["document 1 item 3: items is a string, not a list of objects"]


def test_json_object_and_json_list(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text('{\n  "apiVersion": "v1",\n  "kind": "Namespace",\n  "metadata": {"name": "x"}\n}\n')
    (tmp_path / "many.json").write_text(
        '{"apiVersion": "v1", "kind": "PodList",\n "items": [\n'
        '  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}},\n'
        '  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2"}}]}\n'
    )
    res = load_paths([str(tmp_path)]).resources
    assert sorted((r.name, r.line) for r in res) == [("p1", 3), ("p2", 4), ("x", 2)]


def _ns(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@pytest.mark.parametrize(("text", "names", "error"), [
    # values one after another, as Go's json.Decoder reads them (kubectl create -f hack/testdata/multi-resource-json.json)
    (_ns("a") + "\n" + _ns("b"), ["a", "b"], None),
    (_ns("a") + _ns("b") + " \t\r\n" + _ns("c"), ["a", "b", "c"], None),
    # one object, then YAML: kubectl's decoder switches to YAML for the rest
    (_ns("a") + "\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: why}\n", ["a", "why"], None),
    (_ns("a") + "\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: z\n", ["a", "z"], None),
    # two or more: the stream is JSON, the rest is an error, the objects before it stay
    (_ns("a") + "\n" + _ns("b") + "\n---\nkind: x\n", ["a", "b"], "document 3: invalid JSON at line 3"),
    (_ns("a") + _ns("b") + '{"n": NaN}', ["a", "b"], "document 3: invalid JSON at line 1"),
])
def test_json_stream_as_kubectl_reads_it(tmp_path: Path, text: str, names: list[str], error: str | None) -> None:
    (tmp_path / "s.json").write_text(text)
    result = load_paths([str(tmp_path / "s.json")])
    assert [r.name for r in result.resources] == names
    assert [e.message.split(":", 2)[:2] for e in result.errors] == ([error.split(":", 2)[:2]] if error else [])


def test_json_stream_lines_and_a_deep_second_object(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(_ns("a") + "\n\n" + json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                                                         "metadata": {"name": "b"}}, indent=1))
    assert [(r.name, r.line) for r in load_paths([str(tmp_path / "s.json")]).resources] == [("a", 1), ("b", 4)]
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    (tmp_path / "d.json").write_text(_ns("a") + _ns("b") + '{"x": ' + deep + "}")
    result = load_paths([str(tmp_path / "d.json")])
    assert [r.name for r in result.resources] == ["a", "b"] and len(result.errors) == 1
    assert "document 3: nested" in result.errors[0].message


def test_folders_recurse_and_filter_extensions(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.yml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: deep}\n")
    (tmp_path / "README.md").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: nope}\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: git}\n")
    assert [r.name for r in load_paths([str(tmp_path)]).resources] == ["deep"]


def test_stdin() -> None:
    result = load_paths(["-"], stdin=io.BytesIO(POD.encode()))
    assert [(r.name, r.file) for r in result.resources] == [("web", "<stdin>")]


def test_namespace_defaulting() -> None:
    result = load_paths(["-"], stdin=io.BytesIO(b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n"
                                                  b"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                                                  b"metadata: {name: r}\n"))
    assert [r.namespace for r in result.resources] == ["default", None]


EXPECTED_ERRORS = {
    "bin.yaml": "binary file",
    "bomb.yaml": "alias bomb",
    "latin1.yaml": "not valid UTF-8",
    "malformed.yaml": "invalid YAML at line 3",
    "noversion.yaml": "missing apiVersion",
    "deep.json": f"nested more than {MAX_DEPTH} levels deep",
    "truncated.json": "invalid YAML",
    "badmeta.yaml": "metadata is not a mapping",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_bad_input_is_one_clear_error(name: str) -> None:
    result = load_paths([str(BAD / name)])
    assert result.resources == []
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].file == str(BAD / name)
    assert EXPECTED_ERRORS[name] in result.errors[0].message
    assert "\n" not in result.errors[0].message


EXPECTED_SKIPS = {"list.json": "a list, not a Kubernetes object",
                  "nokind.yaml": "no apiVersion and kind, not a Kubernetes object"}


@pytest.mark.parametrize("name", sorted(EXPECTED_SKIPS))
def test_yaml_that_is_no_kubernetes_object_is_skipped_not_an_error(name: str) -> None:
    result = load_paths([str(BAD / name)])
    assert result.resources == [] and result.errors == []
    assert [(s.file, s.message) for s in result.skipped] == [(str(BAD / name), f"document 1: {EXPECTED_SKIPS[name]}")]


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n", "a Helm chart's Chart.yaml"),
     ("kustomization.yaml", "kind: Kustomization\nresources: [a.yaml]\n", "a Kustomization (kustomize)"),
     ("kustomization.yml", "apiVersion: kustomize.config.k8s.io/v1beta1\nresources: [a.yaml]\n",
      "a kustomize.config.k8s.io/v1beta1 configuration file"),
     ("kubelet.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
      "a KubeletConfiguration configuration file"),
     ("config", "apiVersion: v1\nkind: Config\nclusters: []\n", "a Config configuration file"),
     # test/e2e/testing-manifests/auth/encrypt/encryption-config.yaml: the article follows the name
     ("encryption-config.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n",
      "an EncryptionConfiguration configuration file"),
     ("compose.yaml", "services: {web: {image: nginx}}\n", "no apiVersion and kind")],
)
def test_config_files_are_skipped_where_objects_are_read(tmp_path: Path, name: str, text: str, why: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    result = load_paths([str(f)], objects_only=True)
    assert result.resources == [] and result.errors == []
    assert [s.message for s in result.skipped] == [f"document 1: {why}, not a Kubernetes object"]


def test_config_kinds_stay_objects_for_the_commands_that_read_them(tmp_path: Path) -> None:
    f = tmp_path / "kubelet.yaml"
    f.write_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    assert [r.kind for r in load_paths([str(f)]).resources] == ["KubeletConfiguration"]


def test_bad_documents_do_not_stop_good_ones() -> None:
    result = load_paths([str(BAD / "mixed.yaml")])
    assert [r.name for r in result.resources] == ["ok", "inlist"]
    assert [e.message for e in result.errors] == ["document 3 item 2: a number, not a Kubernetes object"]
    assert [e.message for e in result.skipped] == ["document 2: a list, not a Kubernetes object"]


def test_whole_corpus_reads_the_rest() -> None:
    result = load_paths([str(BAD)])
    assert {r.name for r in result.resources} == {"ok", "inlist"}
    assert len(result.errors) == len(EXPECTED_ERRORS) + 1
    assert len(result.skipped) == len(EXPECTED_SKIPS) + 1


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_typed_lists_as_the_api_serves_them(tmp_path: Path, suffix: str) -> None:
    """kubectl get pods -o yaml/json: items carry no kind or apiVersion; they are the list's kind minus List."""
    doc = {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": "7"},
           "items": [{"metadata": {"name": "a", "namespace": "x"}},
                     {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b"}},
                     {"kind": "Deployment", "metadata": {"name": "c"}}, "text"]}
    f = tmp_path / f"list{suffix}"
    f.write_text(json.dumps(doc, indent=1) if suffix == ".json" else yaml.safe_dump(doc))
    result = load_paths([str(f)])
    assert [(r.kind, r.obj["apiVersion"], r.name) for r in result.resources] == [
        ("Deployment", "apps/v1", "a"), ("Deployment", "apps/v1", "b")]
    assert [e.message for e in result.errors] == ["document 1 item 3: missing apiVersion",
                                                  "document 1 item 4: a string, not a Kubernetes object"]


def test_namespace_list_items_are_namespaces() -> None:
    text = "apiVersion: v1\nkind: NamespaceList\nitems:\n- metadata: {name: prod}\n- metadata: {name: dev}\n"
    result = load_paths(["-"], stdin=io.BytesIO(text.encode()))
    assert [(r.kind, r.name, r.line) for r in result.resources] == [("Namespace", "prod", 4), ("Namespace", "dev", 5)]


def test_items_that_is_not_a_list_is_an_error() -> None:
    result = load_paths(["-"], stdin=io.BytesIO(b"apiVersion: v1\nkind: PodList\nitems: {a: 1}\n"))
    assert result.resources == []
    assert [e.message for e in result.errors] == ["document 1: items is a mapping, not a list of objects"]


def test_huge_file_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n")
        chunk = "".join(f"  k{i}: {'x' * 100}\n" for i in range(1000))
        while fh.tell() < 50 * 2**20:
            fh.write(chunk)
    result = load_paths([str(big)])
    assert result.resources == []
    assert "over the 16 MiB limit" in result.errors[0].message


@pytest.mark.parametrize("style", ["flow", "block"])
def test_ten_thousand_levels_of_nesting(tmp_path: Path, style: str) -> None:
    f = tmp_path / "deep.yaml"
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata:"
    if style == "flow":
        f.write_text(head + " " + "[" * 10_000 + "]" * 10_000 + "\n")
    else:
        f.write_text(head + "\n" + "".join(" " * (i + 1) + "k:\n" for i in range(10_000)))
    result = load_paths([str(f)], max_file_bytes=64 * 2**20)
    assert result.resources == []
    assert f"nested more than {MAX_DEPTH} levels deep" in result.errors[0].message


def test_missing_file_and_directory_errors(tmp_path: Path) -> None:
    result = load_paths([str(tmp_path / "nope.yaml")])
    assert result.errors[0].message == "no such file or directory"


def test_anchors_within_limits_are_fine(tmp_path: Path) -> None:
    f = tmp_path / "anchors.yaml"
    f.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, labels: &l {app: web}}\n"
        "spec:\n  selector: {matchLabels: *l}\n  template:\n    metadata: {labels: *l}\n"
        "    spec: {containers: [{name: c, image: nginx}]}\n"
    )
    [res] = load_paths([str(f)]).resources
    assert res.pod() is not None and res.pod().labels == {"app": "web"}


def _big_list(n: int) -> dict:
    items = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": f"sa{i}", "namespace": f"ns{i % 50}", "labels": {"app": "x", "i": str(i)}}}
        for i in range(n)
    ]
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def test_large_json_list_is_fast_and_keeps_item_lines(tmp_path: Path) -> None:
    """`kubectl get -A -o json` of a big cluster: read as JSON, never mistaken for an alias bomb."""
    f = tmp_path / "dump.json"
    f.write_text(json.dumps(_big_list(70_000), indent=4))
    result = load_paths([str(f)], max_file_bytes=64 * 2**20)
    assert result.errors == []
    assert len(result.resources) == 70_000
    lines = f.read_text().splitlines()
    for res in [*result.resources[::6_999], result.resources[-1]]:
        # json.dumps(indent=4): the item's first key, then kind, metadata and name on the following lines
        assert lines[res.line - 1].strip() == '"apiVersion": "v1",'
        assert lines[res.line + 2].strip() == f'"name": "{res.name}",'
    assert result.resources[1].line - result.resources[0].line == 12


def test_large_yaml_list_of_distinct_nodes_is_not_an_alias_bomb(tmp_path: Path) -> None:
    f = tmp_path / "dump.yaml"
    f.write_text("# &anchor and *star characters appear in comments\n" + yaml.safe_dump(_big_list(5_000)))
    result = load_paths([str(f)], max_file_bytes=64 * 2**20)
    assert result.errors == [] and len(result.resources) == 5_000


def test_json_list_with_a_deeply_nested_item(tmp_path: Path) -> None:
    f = tmp_path / "deep.json"
    ok = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}}'
    deep = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "data": ' + "[" * 600 + "]" * 600 + "}"
    f.write_text('{"kind": "List", "apiVersion": "v1", "items": [' + ok + ", " + deep + "]}")
    result = load_paths([str(f)])
    assert result.resources == [] and "nested more than" in result.errors[0].message


def test_fifo_socket_and_device_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.yaml"))
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n")
    started = time.monotonic()
    try:
        result = load_paths([str(tmp_path), str(tmp_path / "fifo.yaml"), "/dev/zero"])
    finally:
        sock.close()
    assert time.monotonic() - started < 5
    assert [r.name for r in result.resources] == ["ok"]
    assert [(Path(e.file).name, e.message) for e in result.errors] == [
        ("fifo.yaml", "not a regular file (a FIFO with no writer)"),
        ("sock.yaml", "not a regular file (a socket)"),
        ("fifo.yaml", "not a regular file (a FIFO with no writer)"),
        ("zero", "not a regular file (a character device)"),
    ]


def test_a_pipe_with_a_writer_is_read(tmp_path: Path) -> None:
    """`kubeward scan <(helm template .)`: the shell hands a pipe whose writer is there."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"apiVersion: v1\nkind: Namespace\nmetadata: {name: piped}\n")
    os.close(write_end)
    try:
        result = load_paths([f"/proc/self/fd/{read_end}"])
    finally:
        os.close(read_end)
    assert [r.name for r in result.resources] == ["piped"] and result.errors == []


def test_config_files_go_through_the_same_guards(tmp_path: Path) -> None:
    """Exceptions, audit rules and admission configs: the loader's limits, never a silent cut or a hang."""
    from kubeward.audit.rules import RulesError, load_rules
    from kubeward.exceptions import ExceptionsError, load_exceptions
    from kubeward.sources.files import ConfigFileError, load_config_document

    big = tmp_path / "exc.yaml"
    big.write_text("exceptions:\n" + "- {controls: [KW-W001], reason: r}\n" * 40000)
    with pytest.raises(ExceptionsError, match="over the 1024 KiB limit"):
        load_exceptions(str(big))
    loop = tmp_path / "rules.yaml"
    loop.write_text("rules: &r [*r]\n")
    with pytest.raises(RulesError, match="recursive"):
        load_rules(str(loop))
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(ConfigFileError, match="FIFO"):
        load_config_document(str(tmp_path / "fifo.yaml"))
    (tmp_path / "two.yaml").write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(ConfigFileError, match="2 YAML documents"):
        load_config_document(str(tmp_path / "two.yaml"))
    (tmp_path / "ok.yaml").write_text("a: =\nb: 0o17\n")
    assert load_config_document(str(tmp_path / "ok.yaml")) == {"a": "=", "b": 15}


def test_metadata_values_kubernetes_refuses_are_errors(tmp_path) -> None:
    """`namespace: y` and `labels: {enabled: true}` are booleans in YAML 1.1 as sigs.k8s.io/yaml reads them; the
    apiserver refuses them (ObjectMeta fields are strings), so the object is an input error, not judged as "True"."""
    from kubeward.sources.files import load_paths

    f = tmp_path / "m.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: y}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, labels: {enabled: true}}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: \"y\", labels: {v: \"1\", e: null}}\n"
    )
    result = load_paths([str(f)], max_file_bytes=1 << 20)
    assert [r.name for r in result.resources] == ["c"]
    assert result.resources[0].namespace == "y"
    msgs = [e.message for e in result.errors]
    assert any("metadata.namespace is a boolean" in m for m in msgs), msgs
    assert any("metadata.labels.enabled is a boolean" in m for m in msgs), msgs


def test_a_helm_template_read_on_its_own_says_what_to_scan(tmp_path: Path) -> None:
    """A chart's template given as a file (or in a folder that lost its Chart.yaml) fails as YAML on its template
    actions; the error says it is a template and what to scan instead, rather than only the YAML problem."""
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  {{ range .Values.keys }}\n  a: b\n  {{ end }}\n"
    for chart in ("with-chart", "without-chart"):
        (tmp_path / chart / "templates").mkdir(parents=True)
        (tmp_path / chart / "templates" / "cm.yaml").write_text(body)
    (tmp_path / "with-chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (tmp_path / "plain.yaml").write_text(body)
    msgs = {Path(e.file).parts[-3] if "templates" in e.file else "plain": e.message
            for p in ("with-chart", "without-chart", "plain.yaml")
            for e in load_paths([str(tmp_path / p / "templates" / "cm.yaml") if p != "plain.yaml"
                                 else str(tmp_path / p)]).errors}
    assert "a template of the Helm chart" in msgs["with-chart"] and "scan that folder" in msgs["with-chart"]
    assert "a Helm template in a folder without Chart.yaml" in msgs["without-chart"]
    assert "Helm" not in msgs["plain"]


def test_a_packaged_chart_says_how_to_render_it(tmp_path: Path) -> None:
    """`helm package` writes CHART/Chart.yaml first in a gzip'd tar (helm's own testcharts/*.tgz): given to scan,
    the error said only `binary file`; another gzip file keeps that plain error."""
    import tarfile

    chart = tmp_path / "src" / "mychart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: mychart\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    packaged, other = tmp_path / "mychart-0.1.0.tgz", tmp_path / "other.tgz"
    with tarfile.open(packaged, "w:gz") as tar:
        tar.add(chart / "Chart.yaml", "mychart/Chart.yaml")
        tar.add(chart / "templates" / "cm.yaml", "mychart/templates/cm.yaml")
    with tarfile.open(other, "w:gz") as tar:
        tar.add(chart / "templates" / "cm.yaml", "mychart/templates/cm.yaml")
    [err] = load_paths([str(packaged)]).errors
    assert err.message.startswith("binary file, not YAML or JSON (a packaged Helm chart: kubeward scan ")
    assert "mychart-0.1.0.tgz renders it; to read it here, helm template " in err.message
    assert [e.message for e in load_paths([str(other)]).errors] == ["binary file, not YAML or JSON"]


def test_a_yaml_error_on_a_template_line_says_it_is_template_syntax(tmp_path: Path) -> None:
    """Salt/Jinja manifests (kubernetes' own cluster/addons hold some) fail as YAML on `{{ x }}`: the error names
    the template syntax when its line holds it, and only then."""
    tpl = tmp_path / "ds.yaml"
    tpl.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  cpu: {{ cpu_request }}\n")
    [err] = load_paths([str(tpl)]).errors
    assert err.message.endswith("(the line holds template syntax {{ ... }}: render the template first and scan "
                                "its output)"), err.message
    other = tmp_path / "broken.yaml"
    other.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations: {a: '{{'}\n: bad\n")
    [err] = load_paths([str(other)]).errors
    assert "template syntax" not in err.message, err.message


class _CountingBytes(bytes):
    """bytes counting the scans asked of it: the hint walk must cost one pass over the text, not one per error."""

    calls = 0

    def find(self, *a: object) -> int:  # type: ignore[override]
        _CountingBytes.calls += 1
        return super().find(*a)  # type: ignore[arg-type]

    def count(self, *a: object) -> int:  # type: ignore[override]
        _CountingBytes.calls += 1
        return super().count(*a)  # type: ignore[arg-type]

    def split(self, *a: object) -> list[bytes]:  # type: ignore[override]
        _CountingBytes.calls += 10**6  # a split per error copies the text each time
        return super().split(*a)  # type: ignore[arg-type]


def test_template_hints_walk_the_text_once_for_all_errors() -> None:
    """A hostile file of many failing templated documents hung the reader: each error's line was found by
    splitting the whole text again (hours for 200,000 documents). Now the lines are found in one walk."""
    from kubeward.findings import InputError
    from kubeward.sources.files import _template_hints

    doc = b"kind: ConfigMap\n{{ x }}: 1\n" + b"\n" * 300 + b"---\n"
    data = _CountingBytes(doc * 3000)
    errors = [InputError("f.yaml", f"document {i + 1}: line {i * 303 + 2}: a mapping or sequence as a mapping key")
              for i in range(3000)]
    _CountingBytes.calls = 0
    out = _template_hints(errors, data)
    assert sum("template syntax" in e.message for e in out) == 1000  # the first 1,000 looked at
    assert all("template syntax" in e.message for e in out[:1000])
    assert _CountingBytes.calls < 150 * 1000 + len(data) // 1024, _CountingBytes.calls
