"""Every judging or answering command, every -o value: valid output in that format, or one clean usage line.

`-o json|yaml|table|sarif|junit|html` mean the same in every command: JSON parses, YAML parses to the same
document, SARIF validates against the 2.1.0 schema, JUnit parses as XML, HTML is a document; where an answer
has no form in a format (rbac who-can in JUnit), exit 2 with one line naming the formats it has.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.engines.encryption import generate
from kubeward.formats import FORMATS
from kubeward.pki.layout import InitOptions, init
from kubeward.sources.etcd import ProbeResult

SCHEMA = json.loads(Path("tests/data/formats/sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
AUDIT_LOG = "tests/data/upstream/audit/audit2rbac-demo.log"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("every")
    pki = root / "pki"
    init(pki, InitOptions(node_name="cp1", key_type="ecdsa"))
    node = root / "node"
    man = node / "etc/kubernetes/manifests"
    man.mkdir(parents=True)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.0",
                                    "command": ["kube-apiserver", "--authorization-mode=AlwaysAllow"]}]}}
    (man / "kube-apiserver.yaml").write_text(yaml.safe_dump(pod))
    enc = root / "encryption.yaml"
    enc.write_text(generate("aescbc", ("secrets",)))
    policy = root / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    return {"pki": str(pki), "node": str(node), "encryption": str(enc), "policy": str(policy),
            "cacert": str(pki / "etcd/ca.crt")}


# Commands that report findings: every format has a form.
JUDGING = {
    "scan": ["scan", "--demo"],
    "netpol lint": ["netpol", "lint", "--demo"],
    "node check": ["node", "check", "--root", "{node}"],
    "pki check": ["pki", "check", "{pki}"],
    "encryption check": ["encryption", "check", "{encryption}"],
    "etcd probe": ["etcd", "probe", "--endpoint", "https://127.0.0.1:2379", "--cacert", "{cacert}"],
    "audit policy check": ["audit", "policy", "check", "{policy}"],
    "admission test": ["admission", "test", "--demo"],
}
# Commands that answer a question: their own document (json, yaml) and view (table); the rest refused.
ANSWERING = {
    "rbac who-can": ["rbac", "who-can", "get", "secrets", "--demo"],
    "rbac matrix": ["rbac", "matrix", "--demo", "--sa", "default/default"],
    "rbac risks": ["rbac", "risks", "--demo"],
    "rbac paths": ["rbac", "paths", "--demo"],
    "netpol reach": ["netpol", "reach", "--demo"],
    "netpol explain": ["netpol", "explain", "shop-frontend/storefront", "shop-frontend/storefront", "--port", "80",
                       "--demo"],
    "pss check": ["pss", "check", "--level", "restricted", "--demo"],
    "pss namespaces": ["pss", "namespaces", "--demo"],
    "audit analyze": ["audit", "analyze", AUDIT_LOG],
}
# Refused before anything is read or written (they need a live etcd, or would rotate certificates).
REFUSED_ONLY = {
    "etcd secrets-at-rest": ["etcd", "secrets-at-rest", "--endpoint", "https://127.0.0.1:2379", "--cacert", "ca",
                             "--cert", "c", "--key", "k"],
    "pki rotate": ["pki", "rotate", "."],
}


@pytest.fixture()
def fake_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """etcd probe without an etcd: a result with a failing check and some checks not tested."""
    import kubeward.sources.etcd as etcd

    def probe(endpoint: str, **_: object) -> ProbeResult:
        return ProbeResult(endpoint, True, tls_version="TLSv1.3", anonymous_refused=False, legacy_tls_refused=True,
                           weak_ciphers=[])

    monkeypatch.setattr(etcd, "probe", probe)


def run(argv: list[str], inputs: dict[str, str], fmt: str) -> tuple[int, str, str]:
    args = [a.format(**inputs) for a in argv] + ["-o", fmt]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    return result.exit_code, result.stdout, result.stderr


def assert_valid(fmt: str, text: str) -> None:
    if fmt == "json":
        assert isinstance(orjson.loads(text), dict)
    elif fmt == "yaml":
        assert yaml.safe_load(text) is not None
    elif fmt == "sarif":
        jsonschema.Draft4Validator(SCHEMA).validate(json.loads(text))
    elif fmt == "junit":
        assert ET.fromstring(text).tag in ("testsuites", "testsuite")
    elif fmt == "html":
        assert text.lstrip().lower().startswith("<!doctype html")
    else:
        assert text.strip()


def assert_refused(fmt: str, code: int, stdout: str, stderr: str, supported: tuple[str, ...]) -> None:
    assert code == 2 and not stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kubeward: -o {fmt}:"), stderr
    assert "use one of: " + ", ".join(supported) in lines[0]
    assert "Traceback" not in stderr


@pytest.mark.usefixtures("fake_probe")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(JUDGING))
def test_judging_command_renders_every_format(name: str, fmt: str, inputs: dict[str, str]) -> None:
    code, out, err = run(JUDGING[name], inputs, fmt)
    assert code in (0, 1), err
    assert_valid(fmt, out)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(ANSWERING))
def test_answering_command_renders_or_refuses(name: str, fmt: str, inputs: dict[str, str]) -> None:
    code, out, err = run(ANSWERING[name], inputs, fmt)
    if fmt in ("table", "json", "yaml"):
        assert code in (0, 1), err
        assert_valid(fmt, out)
    else:
        view = "text" if name in ("rbac paths", "netpol explain") else "table"
        assert_refused(fmt, code, out, err, (view, "json", "yaml"))


@pytest.mark.parametrize("fmt", ["sarif", "junit", "html"])
@pytest.mark.parametrize("name", sorted(REFUSED_ONLY))
def test_refused_before_anything_is_done(name: str, fmt: str, inputs: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run(REFUSED_ONLY[name], inputs, fmt)
    assert_refused(fmt, code, out, err, ("table", "json", "yaml"))


def test_yaml_is_the_json_document(inputs: dict[str, str], fake_probe: None) -> None:
    """-o yaml is -o json's document, also where a command adds what it observed (the probe's results)."""
    for argv in (JUDGING["etcd probe"], JUDGING["pki check"], ANSWERING["rbac risks"]):
        _, as_json, _ = run(argv, inputs, "json")
        _, as_yaml, _ = run(argv, inputs, "yaml")
        j, y = orjson.loads(as_json), yaml.safe_load(as_yaml)
        if "tool" in j:
            assert j["schemaVersion"] == "1"
        assert j == y


def test_report_facts_follow_the_contract(inputs: dict[str, str], fake_probe: None) -> None:
    """The probe's results and the folder's certificates are further keys after the finding contract's."""
    _, text, _ = run(JUDGING["etcd probe"], inputs, "json")
    doc = orjson.loads(text)
    assert list(doc)[:3] == ["schemaVersion", "tool", "summary"] and doc["probe"]["tls"] is True
    assert {f["control"]["id"] for f in doc["findings"]} == {"KW-ETCD-002"}
    # Not tested is not passed: no cluster certificate or CA was given.
    assert {n["what"] for n in doc["notAssessed"]} == {"KW-ETCD-003", "KW-ETCD-004"}
    _, text, _ = run(JUDGING["pki check"], inputs, "json")
    assert {c["name"] for c in orjson.loads(text)["certificates"]} >= {"ca", "etcd-ca", "apiserver"}


def test_table_is_the_text_view_where_the_view_is_text(inputs: dict[str, str]) -> None:
    assert run(ANSWERING["rbac paths"], inputs, "table")[1] == run(ANSWERING["rbac paths"], inputs, "text")[1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_attack_paths_render_their_forms_and_refuse_junit_in_one_line(fmt: str, inputs: dict[str, str]) -> None:
    """`paths` has a SARIF (code flows) and an HTML form besides its document and table; `-o junit` was a click
    usage error of three lines where every other command names the forms it has."""
    code, out, err = run(["paths", "--demo"], inputs, fmt)
    if fmt == "junit":
        assert_refused(fmt, code, out, err, ("table", "sarif", "html", "json", "yaml"))
    else:
        assert code in (0, 1), err
        assert_valid(fmt, out)
