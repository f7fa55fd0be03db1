"""Image references as the container runtimes read them (github.com/distribution/reference).

One parser for every image check: the tag/digest split, the registry host with Docker Hub's defaults, and the
grammar of hosts and path components.
"""

from __future__ import annotations

from ..lazyre import lazy


def parse_image(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) per the distribution reference grammar: a ':' after the last '/' is a tag."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


# distribution/reference (normalize.go splitDockerDomain, regexp.go): the first path element is the registry host
# when it is "localhost" or contains "." or ":" or an upper-case letter; otherwise the image is on Docker Hub,
# whose one-element names live under library/. Path components are lower-case alphanumerics joined by
# ".", "_", "__" or dashes. containerd and CRI-O normalize references with this same grammar.
DOCKER_HUB = "docker.io"
_LEGACY_HUB = "index.docker.io"
_PATH_COMPONENT = lazy(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = lazy(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")


def split_registry(repository: str) -> tuple[str, str] | None:
    """(registry host, path) of an image repository (no tag or digest) as the runtime resolves it; None when
    the reference is invalid (the kubelet reports InvalidImageName)."""
    first, sep, rest = repository.partition("/")
    if not sep:
        domain, path = DOCKER_HUB, f"library/{repository}"
    elif first == "localhost" or any(ch in first for ch in ".:") or first.lower() != first:
        domain, path = (DOCKER_HUB if first == _LEGACY_HUB else first), rest
    else:
        domain, path = DOCKER_HUB, repository
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not valid_host(domain) or not valid_path(path):
        return None
    return domain, path


def valid_host(host: str) -> bool:
    """A registry host[:port] of the reference grammar (regexp.go domainAndPort)."""
    return _DOMAIN.fullmatch(host) is not None


def valid_path(path: str) -> bool:
    """A repository path: lower-case components joined by '/' (regexp.go pathComponent)."""
    return all(_PATH_COMPONENT.fullmatch(p) for p in path.split("/"))
