"""CycloneDX JSON (1.4-1.6) vulnerability documents for `vulns --images`: an SBOM with `vulnerabilities`
(`trivy image -f cyclonedx`, `grype -o cyclonedx-json`) or a VEX document about an image.

The image is the BOM's `metadata.component` (type container): its name and version, its purl
(`pkg:oci/NAME@DIGEST?repository_url=…&tag=…`, https://github.com/package-url/purl-spec) and Trivy's RepoTag and
RepoDigest properties. Each `vulnerabilities[]` entry: `id`, the highest `ratings[].severity`, the affected
components (`affects[].ref`, a bom-ref, also as a BOM-Link `urn:cdx:…#ref`; no `affects` is the image itself), fixed
versions from `affects[].versions[]` with status `unaffected`.

VEX (the `analysis` object, https://cyclonedx.org/docs/1.6/json/#vulnerabilities_items_analysis): a state of
`not_affected`, `resolved`, `resolved_with_pedigree` or `false_positive` suppresses the vulnerability for the
image, in this document and in any other report about the same image, with the justification, response and
detail as the reason; `in_triage`, `exploitable` or no analysis keep it, and the state is said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..findings import Severity
from .images import ImageReport, ImageVuln, ReportError, image_refs

SUPPRESSING = frozenset({"not_affected", "resolved", "resolved_with_pedigree", "false_positive"})
KEEPING = frozenset({"in_triage", "exploitable"})
_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW,
             "info": Severity.LOW, "none": Severity.LOW, "unknown": Severity.MEDIUM}


@dataclass(frozen=True, slots=True)
class Statement:
    """One VEX statement: the analysis of a vulnerability for the document's image."""

    state: str
    justification: str
    response: tuple[str, ...]
    detail: str
    source: str

    @property
    def suppresses(self) -> bool:
        return self.state in SUPPRESSING

    def reason(self) -> str:
        parts = [f"VEX {self.state}"]
        if self.justification:
            parts.append(f"justification {self.justification}")
        if self.response:
            parts.append(f"response {', '.join(self.response)}")
        text = ", ".join(parts) + (f": {self.detail}" if self.detail else "")
        return f"{text} (from {self.source})"


def is_cyclonedx(doc: Mapping[str, Any]) -> bool:
    return doc.get("bomFormat") == "CycloneDX"


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _components(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every component by bom-ref, nested ones too (bounded by the document, which was size-checked)."""
    out: dict[str, Mapping[str, Any]] = {}
    stack = [c for c in (doc.get("components") or []) if isinstance(c, Mapping)]
    meta = doc.get("metadata")
    if isinstance(meta, Mapping) and isinstance(meta.get("component"), Mapping):
        stack.append(meta["component"])
    while stack:
        c = stack.pop()
        ref = c.get("bom-ref")
        if isinstance(ref, str):
            out.setdefault(ref, c)
        stack.extend(x for x in (c.get("components") or []) if isinstance(x, Mapping))
    return out


def _image_names(component: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(names, repo digests `name@sha256:…`, bare digests) the BOM gives for its image."""
    name, version = _str(component.get("name")), _str(component.get("version"))
    names, repo_digests, digests = [], [], []
    if name:
        if version.startswith("sha256:"):
            names.append(name)
            digests.append(version)
        elif version and ":" not in name.rpartition("/")[2]:
            names.append(f"{name}:{version}")
        else:
            names.append(name)
    purl = _str(component.get("purl"))
    if purl.startswith("pkg:oci/"):
        parts = urlsplit(purl)
        path, _, digest = unquote(parts.path[len("oci/"):]).partition("@")
        query = parse_qs(parts.query)
        repo = unquote(query.get("repository_url", [path])[0])
        tag = query.get("tag", [""])[0]
        if digest.startswith("sha256:"):
            digests.append(digest)
        if tag:
            names.append(f"{repo}:{tag}")
    for p in component.get("properties") or []:
        if not isinstance(p, Mapping):
            continue
        key, value = _str(p.get("name")), _str(p.get("value"))
        if key == "aquasecurity:trivy:RepoTag" and value:
            names.append(value)
        elif key == "aquasecurity:trivy:RepoDigest" and value:
            repo_digests.append(value)
    return names, repo_digests, digests


def _severity(ratings: Any) -> Severity:
    found = [_SEVERITY[s] for r in ratings or [] if isinstance(r, Mapping)
             and (s := _str(r.get("severity")).lower()) in _SEVERITY]
    return max(found, default=Severity.MEDIUM)  # no rating: neither hidden nor inflated


def _statement(v: Mapping[str, Any], source: str, where: str) -> Statement | None:
    a = v.get("analysis")
    if a is None:
        return None
    if not isinstance(a, Mapping):
        raise ReportError(f"{where}.analysis: not an object")
    state = _str(a.get("state"))
    if state and state not in SUPPRESSING | KEEPING:
        raise ReportError(f"{where}.analysis.state: {state!r} is not a CycloneDX impact analysis state")
    response = a.get("response") or []
    if isinstance(response, str):  # seen in the wild (and in spec examples) though the schema says a list
        response = [response]
    if not isinstance(response, list):
        raise ReportError(f"{where}.analysis.response: not a list")
    return Statement(state or "in_triage", _str(a.get("justification")), tuple(str(r) for r in response),
                     _str(a.get("detail")), source)


def _affected(v: Mapping[str, Any], components: dict[str, Mapping[str, Any]], image: Mapping[str, Any],
              where: str) -> Iterable[tuple[str, str, str]]:
    """(package, installed version, fixed versions) for each component the vulnerability affects."""
    affects = v.get("affects") or []
    if not isinstance(affects, list):
        raise ReportError(f"{where}.affects: not a list")
    if not affects:
        yield "", "", ""
        return
    for i, a in enumerate(affects):
        if not isinstance(a, Mapping) or not isinstance(a.get("ref"), str):
            raise ReportError(f"{where}.affects[{i}].ref: not a string")
        ref = a["ref"]
        c = components.get(ref) or components.get(ref.rpartition("#")[2]) or {}
        fixed = [x.get("version") or x.get("range") for x in a.get("versions") or []
                 if isinstance(x, Mapping) and x.get("status") == "unaffected"]
        # A ref to another BOM (a VEX document's BOM-Link) names no component here: the statement is about the
        # vulnerability in the image, whichever package another report finds it in.
        yield _str(c.get("name")), _str(c.get("version")), ", ".join(str(f) for f in fixed if f)


def parse_cyclonedx(doc: Mapping[str, Any], source: str) -> ImageReport:
    meta = doc.get("metadata")
    image = meta.get("component") if isinstance(meta, Mapping) else None
    if not isinstance(image, Mapping) or not _str(image.get("name")):
        raise ReportError("metadata.component: no image named (the BOM must describe the image it is about)")
    names, repo_digests, digests = _image_names(image)
    refs, found = image_refs(names, repo_digests, digests)
    vulns_raw = doc.get("vulnerabilities") or []
    if not isinstance(vulns_raw, list):
        raise ReportError("vulnerabilities: not a list")
    components = _components(doc)
    vulns: list[ImageVuln] = []
    vex: dict[str, Statement] = {}
    for i, v in enumerate(vulns_raw):
        where = f"vulnerabilities[{i}]"
        if not isinstance(v, Mapping) or not isinstance(v.get("id"), str) or not v["id"]:
            raise ReportError(f"{where}: no id")
        statement = _statement(v, source, where)
        if statement is not None:
            vex[v["id"]] = statement
        title = _str(v.get("description"))[:200] or v["id"]
        for package, installed, fixed in _affected(v, components, image, where):
            vulns.append(ImageVuln(v["id"], _severity(v.get("ratings")), package, installed, fixed, title))
    label = f"{image['name']}:{image['version']}" if _str(image.get("version")) and not _str(
        image.get("version")).startswith("sha256:") and ":" not in _str(image.get("name")) else str(image["name"])
    return ImageReport(source, label, refs, found, tuple(vulns), vex)
