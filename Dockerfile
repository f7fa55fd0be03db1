# kubeward's image, built from this source tree:  docker build -t ghcr.io/kubeward/kubeward:0.1.0 .
# Two stages: the wheel and its dependencies are installed into a virtual environment in the first; the second
# copies only that environment onto a clean python:3.11-slim, without pip, setuptools or any compiler.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# docs/ is shipped in the package (src/kubeward/guides links to it); README.md is the package's readme.
COPY pyproject.toml README.md ./
COPY src ./src
COPY docs ./docs
RUN python -m venv /opt/kubeward \
 && /opt/kubeward/bin/pip install . \
 && /opt/kubeward/bin/pip uninstall --yes pip setuptools wheel \
 && find /opt/kubeward -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
# The base image's own pip and setuptools go too: nothing in the image installs anything.
RUN python -m pip uninstall --yes pip setuptools wheel \
 && rm -rf /root/.cache
COPY --from=build /opt/kubeward /opt/kubeward
ENV PATH=/opt/kubeward/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The chart's securityContext runs as this uid/gid (>= 10000, no home, no shell login); the node agent alone
# runs as uid 0 with three capabilities (deploy/helm/kubeward/README.md).
USER 65532:65532
ENTRYPOINT ["kubeward"]
CMD ["--help"]
