"""Image vulnerability reports users already produce (Trivy JSON, Grype JSON), mapped to the workloads that run
each image, by digest or by the normalised reference (github.com/distribution/reference: docker.io/library for
one-element names, `latest` when neither tag nor digest is written), init and ephemeral containers included.

Trivy: `trivy image -f json` (SchemaVersion 2): ArtifactName, Metadata.RepoTags/RepoDigests, Results[].Vulnerabilities
[] (VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity, Title). Grype: `grype -o json`: source.target
(userInput, tags, repoDigests, manifestDigest), matches[] (vulnerability.id/severity/fix.versions, artifact.name/
version). Severities map to kubeward's; UNKNOWN/Negligible are medium/low (neither hidden nor inflated).
CycloneDX JSON (SBOMs with vulnerabilities, VEX documents) is read by vulns/cyclonedx.py; its VEX statements
suppress a vulnerability for the image in every report about that image.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..controls.imageref import parse_image, split_registry
from ..findings import ControlMeta, Finding, Severity
from ..resource import Resource
from .risk import RiskContext

_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW,
             "negligible": Severity.LOW, "unknown": Severity.MEDIUM}


class ReportError(ValueError):
    """A report that is neither Trivy's nor Grype's JSON, or has fields of the wrong type (names the field)."""


@dataclass(frozen=True, slots=True)
class ImageVuln:
    id: str
    severity: Severity
    package: str
    installed: str
    fixed: str
    title: str


@dataclass(frozen=True, slots=True)
class ImageReport:
    source: str  # the report file
    name: str  # the image as the report names it
    refs: frozenset[str]  # normalised repository:tag references
    digests: frozenset[str]  # sha256:… manifest digests
    vulns: tuple[ImageVuln, ...]
    vex: Mapping[str, Any] = field(default_factory=dict)  # vulnerability id -> cyclonedx.Statement


def normalise(image: str) -> tuple[str | None, str | None]:
    """(`registry/path:tag` or None, digest or None) as the runtime resolves the reference."""
    repo, tag, digest = parse_image(image.strip())
    split = split_registry(repo)
    if split is None:
        return None, digest
    full = "/".join(split)
    if tag is None and digest is None:
        tag = "latest"
    return (f"{full}:{tag}" if tag else None), digest


def _digest_of(repo_digest: str) -> str | None:
    return repo_digest.rpartition("@")[2] or None if "@" in repo_digest else None


def _strs(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ReportError(f"{where}: must be a list of strings")
    return v


def _sev(v: Any) -> Severity:
    return _SEVERITY.get(str(v or "unknown").lower(), Severity.MEDIUM)


def parse_report(doc: Any, source: str) -> ImageReport:
    if not isinstance(doc, Mapping):
        raise ReportError("not a JSON object")
    if "Results" in doc or "SchemaVersion" in doc:
        return _trivy(doc, source)
    if "matches" in doc and "source" in doc:
        return _grype(doc, source)
    if doc.get("bomFormat") == "CycloneDX":
        from .cyclonedx import parse_cyclonedx

        return parse_cyclonedx(doc, source)
    raise ReportError("neither a Trivy (Results), a Grype (matches, source) nor a CycloneDX (bomFormat) JSON report")


def image_refs(names: Iterable[str], repo_digests: Iterable[str], digests: Iterable[str]) -> tuple[frozenset[str],
                                                                                                   frozenset[str]]:
    refs, found = set(), set(digests)
    for n in names:
        ref, d = normalise(n)
        if ref:
            refs.add(ref)
        if d:
            found.add(d)
    for rd in repo_digests:
        d = _digest_of(rd)
        if d:
            found.add(d)
    return frozenset(refs), frozenset(found)


def _trivy(doc: Mapping[str, Any], source: str) -> ImageReport:
    name = doc.get("ArtifactName")
    if not isinstance(name, str):
        raise ReportError("ArtifactName: not a string")
    meta = doc.get("Metadata") or {}
    if not isinstance(meta, Mapping):
        raise ReportError("Metadata: not an object")
    refs, digests = image_refs([name, *_strs(meta.get("RepoTags"), "Metadata.RepoTags")],
                                _strs(meta.get("RepoDigests"), "Metadata.RepoDigests"), ())
    vulns: list[ImageVuln] = []
    results = doc.get("Results") or []
    if not isinstance(results, list):
        raise ReportError("Results: not a list")
    for i, r in enumerate(results):
        vs = r.get("Vulnerabilities") if isinstance(r, Mapping) else None
        if vs is None:
            continue
        if not isinstance(vs, list):
            raise ReportError(f"Results[{i}].Vulnerabilities: not a list")
        for j, v in enumerate(vs):
            if not isinstance(v, Mapping) or not isinstance(v.get("VulnerabilityID"), str):
                raise ReportError(f"Results[{i}].Vulnerabilities[{j}]: no VulnerabilityID")
            vulns.append(ImageVuln(v["VulnerabilityID"], _sev(v.get("Severity")), str(v.get("PkgName", "")),
                                   str(v.get("InstalledVersion", "")), str(v.get("FixedVersion") or ""),
                                   str(v.get("Title") or v["VulnerabilityID"])))
    return ImageReport(source, name, refs, digests, tuple(vulns))


def _grype(doc: Mapping[str, Any], source: str) -> ImageReport:
    src = doc.get("source")
    target = src.get("target") if isinstance(src, Mapping) else None
    if not isinstance(target, Mapping) or not isinstance(target.get("userInput"), str):
        raise ReportError("source.target.userInput: not a string (not an image scan?)")
    name = target["userInput"]
    manifest = target.get("manifestDigest")
    refs, digests = image_refs([name, *_strs(target.get("tags"), "source.target.tags")],
                                _strs(target.get("repoDigests"), "source.target.repoDigests"),
                                [manifest] if isinstance(manifest, str) and manifest else [])
    matches = doc.get("matches")
    if not isinstance(matches, list):
        raise ReportError("matches: not a list")
    vulns: list[ImageVuln] = []
    for i, m in enumerate(matches):
        v = m.get("vulnerability") if isinstance(m, Mapping) else None
        a = m.get("artifact") if isinstance(m, Mapping) else None
        if not isinstance(v, Mapping) or not isinstance(v.get("id"), str) or not isinstance(a, Mapping):
            raise ReportError(f"matches[{i}]: no vulnerability.id or artifact")
        raw_fix = v.get("fix")
        fix: Mapping[str, Any] = raw_fix if isinstance(raw_fix, Mapping) else {}
        fixed = ", ".join(_strs(fix.get("versions"), f"matches[{i}].vulnerability.fix.versions"))
        vulns.append(ImageVuln(v["id"], _sev(v.get("severity")), str(a.get("name", "")), str(a.get("version", "")),
                               fixed, str(v.get("description") or v["id"])[:200]))
    return ImageReport(source, name, refs, digests, tuple(vulns))


def _match_key(image: str) -> tuple[bool, str] | None:
    """What a container's image is matched by: (True, its manifest digest) when the reference has one (the
    runtime pulls by digest, whatever the tag says), else (False, the normalised tag); None: neither."""
    ref, digest = normalise(image)
    if digest is not None:
        return True, digest
    return (False, ref) if ref is not None else None


def runs(image: str, report: ImageReport) -> bool:
    """The container's image is the report's: the same manifest digest, else the same normalised tag."""
    key = _match_key(image)
    return key is not None and key[1] in (report.digests if key[0] else report.refs)


class ReportIndex:
    """The reports by digest and by tag, so each container's reports are one lookup (`runs` for all of them),
    in the order given."""

    def __init__(self, reports: Iterable[ImageReport]) -> None:
        self._by: dict[tuple[bool, str], list[ImageReport]] = {}
        for rep in reports:
            for d in rep.digests:
                self._by.setdefault((True, d), []).append(rep)
            for r in rep.refs:
                self._by.setdefault((False, r), []).append(rep)
        self._seen: dict[str, list[ImageReport]] = {}

    def of(self, image: str) -> list[ImageReport]:
        got = self._seen.get(image)
        if got is None:
            key = _match_key(image)
            got = self._seen[image] = list(self._by.get(key, ())) if key is not None else []
        return got


def container_images(resources: Iterable[Resource]) -> set[str]:
    """Every image a container (init, regular, ephemeral) of the input runs."""
    out = set()
    for res in resources:
        pod = res.pod()
        if pod is None:
            continue
        for c, _ptr, _fld in pod.containers():
            if isinstance(c.get("image"), str):
                out.add(c["image"])
    return out


def image_findings(resources: Iterable[Resource], reports: list[ImageReport],
                   rank: RiskContext | None = None) -> Iterator[Finding]:
    """One finding per vulnerability and container running the report's image; ranked when `rank` is given."""
    metas: dict[tuple[str, Severity], ControlMeta] = {}
    index = ReportIndex(reports)
    for res in resources:
        pod = res.pod()
        if pod is None:
            continue
        for c, ptr, fld in pod.containers():
            image = c.get("image")
            if not isinstance(image, str):
                continue
            mine = index.of(image)
            if not mine:
                continue
            location = res.location(f"{ptr}/image")
            kind = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}.get(
                fld, "container")
            vex = {k: st for rep in mine for k, st in rep.vex.items()}
            seen: set[tuple[str, str, str]] = set()
            in_package = {v.id for rep in mine for v in rep.vulns if v.package}
            for rep in mine:
                for v in rep.vulns:
                    if (v.id, v.package, v.installed) in seen or (not v.package and v.id in in_package):
                        continue  # the same vulnerability in two reports about this image: one finding
                    seen.add((v.id, v.package, v.installed))
                    meta = metas.get((v.id, v.severity))
                    if meta is None:
                        meta = metas[(v.id, v.severity)] = ControlMeta(
                            v.id, v.title, v.severity, "image-vulns", (),
                            remediation="Rebuild or upgrade the image with the fixed package version.")
                    fixed = f"fixed in {v.fixed}" if v.fixed else "no fix published"
                    finding = Finding(meta, res.ref(), location, f"{ptr}/image",
                                      f"{kind} {c.get('name', '?')} runs {image}: "
                                      f"{f'{v.package} {v.installed}'.strip() or 'the image'} ({fixed}); "
                                      f"from {rep.source}")
                    if rank is not None:
                        finding.risk = rank.risk(v.severity, bool(v.fixed), res, fix_from="image report")
                    statement = vex.get(v.id)
                    if statement is not None:
                        if statement.suppresses:
                            finding.suppressed_by = statement.reason()
                        else:
                            finding.message += f"; {statement.reason()}"
                    yield finding
