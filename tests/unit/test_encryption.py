"""EncryptionConfiguration validation, write-provider resolution, value prefixes, CLI."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.engines.encryption import classify_value, generate, parse, parse_group_resource, weaknesses

K32 = base64.b64encode(b"k" * 32).decode()
K16 = base64.b64encode(b"k" * 16).decode()
run = CliRunner().invoke


def cfg(*entries: dict) -> dict:
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": list(entries)}


def msgs(doc: dict) -> list[str]:
    return [p.message for p in parse(doc).errors]


def test_generated_is_valid_and_encrypts() -> None:
    for provider in ("aesgcm", "aescbc", "secretbox"):
        c = parse(yaml.safe_load(generate(provider, ("secrets", "configmaps"))))
        assert c.errors == []
        w = c.writer_for("secrets")
        assert w is not None and w.type == provider and w.write_prefix() == f"k8s:enc:{provider}:v1:key1:"
        assert c.entries[0].providers[-1].type == "identity"


@pytest.mark.parametrize(("provider", "secret", "ok"), [
    ("aesgcm", K16, True), ("aesgcm", K32, True), ("aescbc", base64.b64encode(b"k" * 24).decode(), True),
    ("aescbc", base64.b64encode(b"k" * 20).decode(), False), ("secretbox", K16, False), ("secretbox", K32, True),
    ("aesgcm", "not base64!!", False),
])
def test_key_sizes(provider: str, secret: str, ok: bool) -> None:
    errors = msgs(cfg({"resources": ["secrets"], "providers": [{provider: {"keys": [{"name": "k", "secret": secret}]}}]}))
    assert (errors == []) is ok
    assert all("not base64" not in e for e in errors)  # the secret value is never echoed


def test_provider_shape_errors() -> None:
    both = cfg({"resources": ["secrets"], "providers": [{"identity": {}, "aesgcm": {"keys": []}}]})
    assert any("more than one provider" in m for m in msgs(both))
    none = cfg({"resources": ["secrets"], "providers": [{"foo": {}}]})
    assert any("does not contain any of the expected providers" in m for m in msgs(none))
    nokeys = cfg({"resources": ["secrets"], "providers": [{"aescbc": {"keys": []}}]})
    assert "at least one keys is required" in msgs(nokeys)
    noname = cfg({"resources": ["secrets"], "providers": [{"aescbc": {"keys": [{"secret": K32}]}}]})
    assert "name is a mandatory field for a key" in msgs(noname)


@pytest.mark.parametrize(("resources", "fragment"), [
    (["Secrets"], "capital letters"),
    (["*"], "use '*.'"),
    (["serviceipallocations"], "do not have REST"),
    (["*.events.k8s.io"], "'events' API group"),
    (["deployments.extensions"], "'extensions' group"),
    (["secrets.*"], "across groups"),
    (["secrets", "secrets"], "multiple times"),
    (["secrets", "*."], "overlapping"),
    (["*.*", "configmaps"], "overlapping"),
])
def test_resource_rules(resources: list[str], fragment: str) -> None:
    doc = cfg({"resources": resources, "providers": [{"identity": {}}]})
    assert any(fragment in m for m in msgs(doc)), msgs(doc)


def test_duplicate_star_star_is_duplicate_and_overlap() -> None:
    # validateResourceOverlap only skips the overlap test for the first duplicate pair
    m = msgs(cfg({"resources": ["*.*", "*.*"], "providers": [{"identity": {}}]}))
    assert any("multiple times" in x for x in m) and any("overlapping" in x for x in m)
    m = msgs(cfg({"resources": ["secrets", "secrets"], "providers": [{"identity": {}}]}))
    assert not any("overlapping" in x for x in m)


def test_kms_rules() -> None:
    good = cfg({"resources": ["secrets"], "providers": [{"kms": {"apiVersion": "v2", "name": "vault",
                                                                 "endpoint": "unix:///run/kms.sock"}}]})
    c = parse(good)
    assert c.errors == [] and c.writer_for("secrets").write_prefix() == "k8s:enc:kms:v2:vault:"  # type: ignore[union-attr]
    bad = cfg({"resources": ["secrets"], "providers": [
        {"kms": {"apiVersion": "v2", "name": "a:b", "endpoint": "tcp://x", "cachesize": 10}}]})
    m = msgs(bad)
    assert any("must not contain ':'" in x for x in m) and any("only unix" in x for x in m)
    assert any("cachesize is not supported in v2" in x for x in m)
    for timeout, ok in (("3s", True), ("1m30s", True), ("0s", False), ("-1s", False), ("soon", False)):
        doc = cfg({"resources": ["secrets"], "providers": [{"kms": {"apiVersion": "v2", "name": "k", "timeout": timeout,
                                                                    "endpoint": "unix:///s"}}]})
        assert ("timeout should be a positive value" not in msgs(doc)) is ok, timeout
    v1 = parse(cfg({"resources": ["secrets"], "providers": [{"kms": {"name": "old", "endpoint": "unix:///s"}}]}))
    assert v1.writer_for("secrets").kms_api_version == "v1"  # type: ignore[union-attr]
    assert any("KMS v1" in p.message for p in weaknesses(v1))


def test_resolution_order() -> None:
    c = parse(cfg(
        {"resources": ["*.*"], "providers": [{"secretbox": {"keys": [{"name": "all", "secret": K32}]}}]},
        {"resources": ["*."], "providers": [{"aesgcm": {"keys": [{"name": "core", "secret": K32}]}}]},
        {"resources": ["secrets"], "providers": [{"identity": {}}]},
    ))
    assert c.errors == []
    assert c.writer_for("secrets").type == "identity"  # type: ignore[union-attr]  exact beats wildcards
    assert c.writer_for("configmaps").type == "aesgcm"  # type: ignore[union-attr]  `*.` beats `*.*`
    assert c.writer_for("deployments.apps").type == "secretbox"  # type: ignore[union-attr]
    assert any("identity" in p.message for p in weaknesses(c))


def test_secrets_not_listed() -> None:
    c = parse(cfg({"resources": ["configmaps"], "providers": [{"aesgcm": {"keys": [{"name": "k", "secret": K32}]}}]}))
    assert c.writer_for("secrets") is None
    assert any("not listed" in p.message for p in weaknesses(c))


def test_parse_group_resource() -> None:
    assert parse_group_resource("secrets") == ("secrets", "")
    assert parse_group_resource("*.") == ("*", "")
    assert parse_group_resource("ingresses.networking.k8s.io") == ("ingresses", "networking.k8s.io")


@given(st.sampled_from(["aescbc", "aesgcm", "secretbox"]), st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
       st.binary(max_size=64))
def test_classify_prefixed(provider: str, key: str, payload: bytes) -> None:
    v = classify_value(f"k8s:enc:{provider}:v1:{key}:".encode() + payload)
    assert v.encrypted and v.provider == provider and v.key_name == key


@given(st.binary(max_size=64))
def test_classify_plain(payload: bytes) -> None:
    assert not classify_value(b"k8s\x00" + payload).encrypted
    assert classify_value(b"k8s\x00" + payload).format == "protobuf"


def test_classify_json_and_kms() -> None:
    assert classify_value(b'{"kind":"Secret"}').format == "json"
    v = classify_value(b"k8s:enc:kms:v2:vault:\x00\x01")
    assert v.encrypted and v.provider == "kms"


def test_cli_generate_and_check(tmp_path: Path) -> None:
    res = run(cli, ["encryption", "generate", "--provider", "secretbox", "--resources", "secrets,configmaps",
                    "--output", str(tmp_path / "enc.yaml")])
    assert res.exit_code == 0
    assert stat.S_IMODE((tmp_path / "enc.yaml").stat().st_mode) == 0o600
    res = run(cli, ["encryption", "generate", "--output", str(tmp_path / "enc.yaml")])
    assert res.exit_code == 2 and "already exists" in res.output
    res = run(cli, ["encryption", "check", str(tmp_path / "enc.yaml"), "-o", "json"])
    assert res.exit_code == 0 and orjson.loads(res.output)["findings"] == []


def test_cli_check_identity_first(tmp_path: Path) -> None:
    doc = cfg({"resources": ["secrets"], "providers": [{"identity": {}},
                                                       {"aescbc": {"keys": [{"name": "k", "secret": K32}]}}]})
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(doc))
    res = run(cli, ["encryption", "check", str(tmp_path / "e.yaml"), "-o", "json"])
    assert res.exit_code == 1
    f = orjson.loads(res.output)["findings"]
    assert [x["control"]["id"] for x in f] == ["KW-ENC-002"]
    assert f[0]["path"] == "/resources/0/providers/0/identity" and f[0]["location"]["line"] > 1
    assert K32 not in res.output


def test_cli_check_bad_key_redacted(tmp_path: Path) -> None:
    secret = base64.b64encode(b"short-key").decode()
    doc = cfg({"resources": ["secrets"], "providers": [{"aesgcm": {"keys": [{"name": "k", "secret": secret}]}}]})
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(doc))
    res = run(cli, ["encryption", "check", str(tmp_path / "e.yaml"), "-o", "json"])
    assert res.exit_code == 1 and secret not in res.output
    assert "got 9, expected one of [16, 24, 32]" in res.output


@pytest.mark.parametrize("content", ["::: not yaml", "", "kind: Pod\napiVersion: v1\n"])
def test_cli_check_bad_input(tmp_path: Path, content: str) -> None:
    (tmp_path / "e.yaml").write_text(content)
    res = run(cli, ["encryption", "check", str(tmp_path / "e.yaml")])
    assert res.exit_code in (1, 2) and "Traceback" not in res.output
    if content.startswith("kind"):  # another kind is a usage error in one line (issue 15)
        assert res.exit_code == 2 and res.output.count("\n") == 1
        assert "not an EncryptionConfiguration (kind 'Pod'" in res.output


def test_cli_check_missing_file(tmp_path: Path) -> None:
    res = run(cli, ["encryption", "check", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "no such file" in res.output


@pytest.mark.parametrize(("given", "written"), [
    ("configmap", ["configmaps"]), ("cm,deploy", ["configmaps", "deployments.apps"]),
    ("Secret,secrets.v1.", None), ("*.,*.apps", ["*.", "*.apps"]), ("widgets.example.com", ["widgets.example.com"]),
    ("ing", ["ingresses.networking.k8s.io"]),
])
def test_generate_resolves_resource_names_as_kubectl(given: str, written: list[str] | None) -> None:
    res = run(cli, ["encryption", "generate", "--resources", given])
    if written is None:  # secrets twice once resolved: the apiserver's duplicate rule applies to the real names
        assert res.exit_code == 2 and "the same resource cannot be specified multiple times" in res.stderr
        return
    assert res.exit_code == 0, res.stderr
    assert yaml.safe_load(res.stdout)["resources"][0]["resources"] == written


@pytest.mark.parametrize("given", ["configmapz", "secrets,configmapz", "pods/exec", "foo.apps"])
def test_generate_refuses_unknown_resources(given: str) -> None:
    res = run(cli, ["encryption", "generate", "--resources", given])
    assert res.exit_code == 2 and res.stdout == ""
    assert "the server doesn't have a resource type" in res.stderr
