"""The one error type PKI code raises for user-facing problems (rendered as one line by the CLI)."""

from __future__ import annotations


class PkiError(Exception):
    """`<file>: <reason>`, ready for `kubeward: …`."""
