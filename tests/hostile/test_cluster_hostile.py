"""`--cluster` against something that is not an apiserver (a login page, a JSON API of another kind) must not be
counted as a cluster read and found clean (issue 16); credentials in a kubeconfig are never printed."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.sources.cluster import SCAN_TYPES, ResourceType, api_list, load_cluster

pytest.importorskip("kubernetes")
run = CliRunner().invoke

Answer = Callable[[str], tuple[int, str, bytes]]


def _html(path: str) -> tuple[int, str, bytes]:
    return 200, "text/html; charset=utf-8", b"<html><body><form action=/login>Sign in</form></body></html>"


def _status_json(path: str) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Success"}).encode()


def _wrong_list(path: str) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"kind": "EventList", "apiVersion": "v1", "items": []}).encode()


@pytest.fixture()
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    answer: Answer = request.param

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, ctype, body = answer(self.path)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "portal",
        "clusters": [{"name": "portal", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "s3cr3t-token-value"}}],
        "contexts": [{"name": "portal", "context": {"cluster": "portal", "user": "u"}}],
    }))
    return kc


@pytest.mark.parametrize(("server", "reason"), [
    (_html, "not the API's JSON: content type text/html"),
    (_status_json, "not a PodList of v1: got kind 'Status'"),
    (_wrong_list, "not a PodList of v1: got kind 'EventList'"),
], indirect=["server"], ids=["login-page", "status", "wrong-kind"])
def test_a_200_that_is_not_the_api_is_not_assessed(server: str, reason: str, tmp_path: Path) -> None:
    snap = load_cluster(str(_kubeconfig(tmp_path, server)), types=SCAN_TYPES)
    wanted = len({t.path for t in SCAN_TYPES}) - sum(1 for t in SCAN_TYPES if t.optional)
    read, total = snap.coverage
    assert read == 0 and total >= wanted
    pods = next(n for n in snap.not_assessed if n.what == "pods")
    assert reason in pods.reason


@pytest.mark.parametrize("server", [_html], indirect=True)
def test_scan_against_a_login_page_fails_and_names_the_reason(server: str, tmp_path: Path) -> None:
    res = run(cli, ["scan", "--cluster", "--kubeconfig", str(_kubeconfig(tmp_path, server))])
    assert res.exit_code == 2, res.output
    assert "pods: not assessed (not the API's JSON: content type text/html)" in res.output
    assert "s3cr3t-token-value" not in res.output


def _rtype() -> ResourceType:
    return ResourceType("apps/v1", "deployments", "Deployment")


@pytest.mark.parametrize(("headers", "body", "ok"), [
    ({"Content-Type": "application/json"}, b'{"kind":"DeploymentList","apiVersion":"apps/v1","items":[]}', True),
    ({"content-type": "application/json; charset=utf-8"},
     b'{"kind":"DeploymentList","apiVersion":"apps/v1","items":null,"metadata":{}}', True),
    ({"Content-Type": "application/json"}, b'{"kind":"DeploymentList","apiVersion":"apps/v1beta1","items":[]}', False),
    ({"Content-Type": "application/json"}, b'{"kind":"DeploymentList","apiVersion":"apps/v1","items":{}}', False),
    ({"Content-Type": "application/json"}, b'[1, 2]', False),
    ({"Content-Type": "application/json"}, b'<html>', False),
    ({}, b'{"kind":"DeploymentList","apiVersion":"apps/v1","items":[]}', False),
    ({"Content-Type": "text/plain"}, b'{"kind":"DeploymentList","apiVersion":"apps/v1","items":[]}', False),
])
def test_api_list_accepts_only_the_list_asked_for(headers: dict[str, str], body: bytes, ok: bool) -> None:
    doc, why = api_list(_rtype(), body, headers)
    assert (doc is not None) == ok, why
    assert bool(why) != ok


def test_credentials_in_the_server_url_are_not_printed(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path, "https://admin:hunter2@127.0.0.1:1")
    res = run(cli, ["scan", "--cluster", "--kubeconfig", str(kc)])
    assert res.exit_code == 2
    assert "hunter2" not in res.output and "s3cr3t-token-value" not in res.output


@pytest.mark.parametrize("value", ["5", "[1, 2]", "{a: b}"])
def test_a_wrongly_typed_server_is_one_line(tmp_path: Path, value: str) -> None:
    kc = tmp_path / "kc"
    kc.write_text(f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: c, cluster: {{server: {value}}}}}]\n"
                  "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    res = run(cli, ["scan", "--cluster", "--kubeconfig", str(kc)])
    assert res.exit_code == 2 and "Traceback" not in res.output and res.output.startswith("kubeward: ")
