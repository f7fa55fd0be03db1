"""Text from inputs made safe to print: control characters escaped, credentials in URLs and command lines redacted.

Names, messages, user agents and command lines come from whoever wrote a manifest, an audit event or a process: a raw
ESC or CR in them would let that author drive the reader's terminal, and a `https://user:password@host` server URL or a
`?token=…` query would print a credential. Every printer of such text goes through these two functions.
"""

from __future__ import annotations

import re

from .lazyre import lazy

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = lazy(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps tab and newline
# scheme://user:password@host — RFC 3986 userinfo; the password part is what is hidden.
_URL_PASSWORD = lazy(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@")
# Query parameters and flags whose value is a credential: ?token=…, &access_token=…, --password=…, --token …
_SECRET_KEYS = r"(?:access[_-]?token|id[_-]?token|token|password|passwd|secret|client[_-]?secret|api[_-]?key|apikey|auth)"
_QUERY_SECRET = lazy(rf"(?i)([?&]{_SECRET_KEYS}=)[^&\s#]*")
_FLAG_SECRET = lazy(rf"(?i)(--{_SECRET_KEYS}(?:=|\s+))(?!-)\S+")
REDACTED = "REDACTED"


def escape_control(text: str, *, keep_layout: bool = False) -> str:
    """`\\x1b` instead of a raw ESC: the text stays readable and cannot move the cursor or rewrite the screen.
    `keep_layout` leaves tab and newline for renderers that lay out multi-line cells themselves."""
    pattern = _CONTROL_BUT_LAYOUT if keep_layout else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def redact_credentials(text: str) -> str:
    """Hide passwords in URLs' userinfo, credential query parameters and `--token`/`--password`-style flags."""
    if "@" not in text and "=" not in text and "--" not in text:
        return text  # each pattern needs one of these: most request URIs and messages skip three regex passes
    text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    return _FLAG_SECRET.sub(rf"\1{REDACTED}", text)


def printable(text: str) -> str:
    """Both: what every one-line message built from input text goes through."""
    return escape_control(redact_credentials(text))
