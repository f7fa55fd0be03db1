"""Text from inputs is printed with control characters escaped and credentials redacted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubeward.textsafe import escape_control, printable, redact_credentials


def test_escape_control_characters() -> None:
    assert escape_control("a\x1b[2Jb\rc\x9b") == "a\\x1b[2Jb\\x0dc\\x9b"
    assert escape_control("a\tb\nc") == "a\\x09b\\x0ac"
    assert escape_control("a\tb\nc\x1b", keep_layout=True) == "a\tb\nc\\x1b"


@given(st.text())
def test_escaped_text_has_no_control_characters(text: str) -> None:
    out = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


def test_url_password_redacted() -> None:
    assert redact_credentials("server https://admin:s3cr3t@10.0.0.1:6443/api") == (
        "server https://admin:REDACTED@10.0.0.1:6443/api"
    )
    assert "s3cr3t" not in printable("git clone https://u:s3cr3t@example.com/r.git")
    # a user without password and a plain host:port are left alone
    assert redact_credentials("https://user@host/x and 10.0.0.1:6443") == "https://user@host/x and 10.0.0.1:6443"


def test_query_and_flag_credentials_redacted() -> None:
    assert redact_credentials("/api/v1/pods?watch=1&token=abc.def") == "/api/v1/pods?watch=1&token=REDACTED"
    assert redact_credentials("curl --token abc123 -k") == "curl --token REDACTED -k"
    assert redact_credentials("mysql --password=hunter2 db") == "mysql --password=REDACTED db"
    assert redact_credentials("kubectl get pods --v=6") == "kubectl get pods --v=6"


def test_audit_alert_request_uri_redacted() -> None:
    from kubeward.alerts import Alert
    from kubeward.findings import Severity

    ev = {"auditID": "1", "verb": "get", "user": {"username": "u"}, "requestURI": "/api/v1/pods?watch=1&token=abc.def"}
    alert = Alert.of("r", Severity.HIGH, ev, "m")
    assert alert.to_json()["requestURI"] == "/api/v1/pods?watch=1&token=REDACTED"
