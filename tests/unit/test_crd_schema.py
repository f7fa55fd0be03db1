"""CRD schemas are blanked before parsing: everything else, and every line number, stays as the YAML says."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.sources.crd_schema import blank_crd_schemas
from kubeward.sources.files import load_paths

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
  annotations:
    note: |
      schema:
        openAPIV3Schema:
          kept: because this is an annotation's text
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      # the schema follows
      openAPIV3Schema:
        type: object
        properties:
          spec:
            description: |
              A block scalar inside the schema.
              ---not a document marker
            type: object

          status: {type: object}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema:   # a comment
        type: object
    subresources: {status: {}}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: after}
spec:
  containers:
  - name: c
    image: nginx
    securityContext: {privileged: true}
"""

EMBEDDED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: crds}
data:
  crd.yaml: |
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    spec:
      versions:
      - schema:
          openAPIV3Schema:
            type: object
"""


def _without_schemas(obj: dict) -> dict:
    for v in obj["spec"]["versions"]:
        v["schema"]["openAPIV3Schema"] = {}
    return obj


def test_only_the_schemas_go_and_lines_stay() -> None:
    text = f"{CRD}---\n{POD}"
    out = blank_crd_schemas(text)
    assert out.count("\n") == text.count("\n")
    crd, pod = yaml.safe_load_all(out)
    want_crd, want_pod = yaml.safe_load_all(text)
    assert crd == _without_schemas(want_crd) and pod == want_pod
    assert "kept: because" in crd["metadata"]["annotations"]["note"]
    assert crd["spec"]["versions"][1]["subresources"] == {"status": {}}


def test_findings_keep_their_lines(tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(f"{CRD}---\n{POD}")
    result = load_paths([str(tmp_path)])
    assert not result.errors
    pod = next(r for r in result.resources if r.kind == "Pod")
    lines = f"{CRD}---\n{POD}".splitlines()
    line = pod.line_of("/spec/containers/0/securityContext/privileged")
    assert line is not None and "privileged: true" in lines[line - 1]
    crd = next(r for r in result.resources if r.kind == "CustomResourceDefinition")
    assert crd.obj["spec"]["scope"] == "Cluster" and crd.obj["spec"]["versions"][0]["schema"] == {"openAPIV3Schema": {}}
    assert "scope: Cluster" in lines[crd.line_of("/spec/scope") - 1]


def test_left_whole_where_not_certainly_a_crd_schema() -> None:
    assert blank_crd_schemas(EMBEDDED) == EMBEDDED  # a ConfigMap's text is data
    other_kind = CRD.replace("kind: CustomResourceDefinition", "kind: Widget")
    assert blank_crd_schemas(other_kind) == other_kind
    other_group = CRD.replace("apiextensions.k8s.io/v1", "example.com/v1")
    assert blank_crd_schemas(other_group) == other_group
    anchored = CRD.replace("type: object\n        properties", "type: &t object\n        properties") + "x: *t\n"
    assert blank_crd_schemas(anchored) == anchored  # an alias could point into the schema
    not_under_schema = CRD.replace("    schema:\n      # the schema follows\n", "    other:\n      # the schema follows\n")
    assert blank_crd_schemas(not_under_schema).count("type: object") == not_under_schema.count("type: object") - 1


def test_v1beta1_validation() -> None:
    text = ("apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\nmetadata: {name: a.b}\n"
            "spec:\n  validation:\n    openAPIV3Schema:\n      type: object\n  version: v1\n")
    assert yaml.safe_load(blank_crd_schemas(text)) == {
        "apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"},
        "spec": {"validation": {"openAPIV3Schema": {}}, "version": "v1"}}


keys = st.text(alphabet="abcxyz", min_size=1, max_size=4)
scalars = st.one_of(st.integers(), st.booleans(), st.text(alphabet="ab :#-\n'\"", max_size=12))
trees = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(keys, c, max_size=3)),
                     max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(schema=trees, metadata=st.dictionaries(keys, trees, max_size=3), rest=st.dictionaries(keys, trees, max_size=3),
       style=st.sampled_from([False, None]))
def test_any_crd_as_pyyaml_writes_it(schema: object, metadata: dict, rest: dict, style: bool | None) -> None:
    """Whatever the schema holds and however it is written, the result parses to the same object less its schema."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "w.example.com", **metadata},
           "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}, **rest}]}}
    text = yaml.safe_dump_all([crd, {"kind": "Pod", "data": rest}], default_flow_style=style, sort_keys=False)
    out = blank_crd_schemas(text)
    assert out.count("\n") == text.count("\n")
    got, pod = yaml.safe_load_all(out)
    want = yaml.safe_load_all(text)
    want_crd, want_pod = want
    if got["spec"]["versions"][0]["schema"]["openAPIV3Schema"] == {}:
        want_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {}
    assert got == want_crd and pod == want_pod
