"""Upstream fixtures carried in the repository (tests/data/upstream), so the suite needs nothing beside the clone.

The 4,537 Pod Security fixtures travel as one .tar.xz (34 KB instead of 4,539 files) and are extracted once per
test process to a temporary directory, removed at exit. Benchmarks read the same copy.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tarfile
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "upstream"
PSS_ARCHIVE = DATA / "pod-security.tar.xz"
PSS_FIXTURE_COUNT = 4537
AUDIT_SAMPLE = DATA / "audit" / "audit2rbac-demo.log"
AUDIT_SAMPLE_POLICY = DATA / "audit" / "audit2rbac-demo-policy.yaml"


@functools.cache
def pss_fixtures() -> Path:
    """The extracted `pod-security/` folder: <level>/v1.<minor>/{pass,fail}/<check><n>.yaml."""
    root = Path(tempfile.mkdtemp(prefix="kubeward-pss-"))
    atexit.register(shutil.rmtree, root, True)
    with tarfile.open(PSS_ARCHIVE, "r:xz") as tar:
        members = tar.getmembers()
        for m in members:  # our own archive, but never let one write outside the folder
            if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in Path(m.name).parts:
                raise RuntimeError(f"{PSS_ARCHIVE}: unexpected member {m.name!r}")
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(root, members=members, **safe)  # type: ignore[arg-type]
    return root / "pod-security"


def pss_corpus() -> Path:
    """For benchmarks: the same vendored fixtures, so a clone on its own measures what the docs quote."""
    return pss_fixtures()
