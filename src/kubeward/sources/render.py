"""Helm charts and kustomizations among the scan inputs: found while walking folders, rendered by the real tool
(`helm template`, `kustomize build` or `kubectl kustomize`), and each rendered object traced to the file a user edits.

A folder holding a chart or a kustomization is rendered, not walked: raw templates (`{{ .Values.x }}`) are not
YAML, and a kustomization's bases and patches are not objects as they stand. Every problem (tool missing, render
failed, timed out, too much output) is one `InputError` naming the folder; the rest of the scan goes on.
See docs/inputs.md for the rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import yaml

from ..findings import InputError
from ..lazyre import lazy
from ..records import record
from .files import (
    DEFAULT_MAX_FILE_BYTES,
    LoadResult,
    _InputProblem,
    _read_bounded,
    display_path,
    is_packaged_chart,
    iter_files,
    load_config,
    parse_bytes,
)

if TYPE_CHECKING:
    from .bounded_run import Ran  # subprocess and signal load only when a chart or kustomization renders

CHART_FILE = "Chart.yaml"  # helm pkg/chart/loader: a chart is a folder with Chart.yaml
# kustomize api/konfig/general.go RecognizedKustomizationFileNames, in kustomize's order of preference
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DEFAULT_RENDER_TIMEOUT = 120.0
# helm cmd/template.go: the release name `helm template CHART` uses when none is given
HELM_DEFAULT_RELEASE = "release-name"
# kustomize api/internal/utils/annotations.go OriginAnnotationKey, written with buildMetadata: [originAnnotations]
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"

Kind = Literal["helm", "kustomize"]


@record(frozen=True)
class RenderOptions:
    """What `helm template` is given for every chart of the scan (values apply to all charts alike)."""

    values: tuple[str, ...] = ()        # --values/-f FILE, in order (later files win, as in helm)
    set_values: tuple[str, ...] = ()    # --set K=V, in order
    release_name: str | None = None
    namespace: str | None = None        # the scan's -n; helm's .Release.Namespace
    timeout: float = DEFAULT_RENDER_TIMEOUT


@record(frozen=True)
class Renderable:
    kind: Kind
    path: str   # as reached on disk
    shown: str  # relative to the working directory when below it


def detect(directory: str) -> Kind | None:
    """A chart (Chart.yaml) wins over a kustomization file in the same folder: helm would install the chart."""
    if os.path.isfile(os.path.join(directory, CHART_FILE)):
        return "helm"
    if any(os.path.isfile(os.path.join(directory, n)) for n in KUSTOMIZATION_FILES):
        return "kustomize"
    return None


def plan_inputs(paths: Iterable[str]) -> tuple[list[tuple[str, str | None]], list[Renderable]]:
    """The plain files to read (iter_files' list) and the folders to render, each in walk order."""
    renders: list[Renderable] = []

    def take(directory: str) -> bool:
        kind = detect(directory)
        if kind is None:
            return False
        renders.append(Renderable(kind, directory, display_path(directory)))
        return True

    files = []
    for shown, path in iter_files(paths, take_dir=take):
        if path is not None and is_packaged_chart(path):
            # `helm template CHART.tgz` renders an archive as it does a folder (helm pkg/chart/loader.Load)
            renders.append(Renderable("helm", path, shown))
        else:
            files.append((shown, path))
    return files, renders


def render_inputs(renders: Iterable[Renderable], result: LoadResult, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES,
                  options: RenderOptions | None = None, path_env: str | None = None) -> None:
    """Render each folder and add its objects (or one error) to `result`. `path_env` replaces $PATH (tests)."""
    opts = options or RenderOptions()
    for r in renders:
        try:
            if r.kind == "helm":
                _render_chart(r, result, max_bytes, opts, path_env)
            else:
                _render_kustomization(r, result, max_bytes, opts, path_env)
        except _InputProblem as exc:
            result.errors.append(InputError(r.shown, str(exc)))


# ---------------------------------------------------------------------------------------------------------- helm

def missing_helm(shown: str) -> str:
    import shlex  # an error message's only need: not loaded for every scan

    return (f"helm is not installed; install helm (https://helm.sh) or render the chart yourself: "
            f"helm template {shlex.quote(shown)} | kubeward scan -")


def helm_argv(helm: str, chart: str, opts: RenderOptions) -> list[str]:
    """`helm template [NAME] CHART` with the CRDs of crds/ (helm install creates them; `template` leaves them out
    without --include-crds) and an explicit namespace, so the kubeconfig's context never changes the render."""
    argv = [helm, "template"]
    if opts.release_name:
        argv.append(opts.release_name)
    argv += [chart, "--include-crds", "--namespace", opts.namespace or "default"]
    for v in opts.values:
        argv += ["--values", v]
    for s in opts.set_values:
        argv += ["--set", s]
    return argv


def _render_chart(r: Renderable, result: LoadResult, max_bytes: int, opts: RenderOptions,
                  path_env: str | None) -> None:
    import shutil  # here, not at import: a scan without charts or kustomizations never needs it (~1.5 ms)

    helm = shutil.which("helm", path=path_env)
    if helm is None:
        raise _InputProblem(missing_helm(r.shown))
    # `./` keeps a chart folder named like a repository reference (`stable/x`) a local path for helm
    chart = r.path if os.path.isabs(r.path) or r.path.startswith(".") else os.path.join(".", r.path)
    ran = _run(helm_argv(helm, chart, opts), "helm template", opts.timeout, max_bytes, path_env)
    add_helm_output(ran.stdout, r.path, result, max_bytes)


_SOURCE = lazy(r"^---\n# Source: ([^\n]*)\n", re.MULTILINE)


def split_helm_output(text: str) -> list[tuple[str, str]]:
    """(Source path, text) per block of `helm template` output (pkg/action/action.go writes each manifest as
    `---\\n# Source: PATH\\nCONTENT\\n`). Text before the first header has no source and is returned with ''."""
    blocks: list[tuple[str, str]] = []
    pieces = _SOURCE.split(text)
    if pieces[0].strip():
        blocks.append(("", pieces[0]))
    for i in range(1, len(pieces) - 1, 2):
        blocks.append((pieces[i].strip(), pieces[i + 1]))
    return blocks


def source_file(chart_dir: str, source: str) -> tuple[str, bool]:
    """The file on disk that a `# Source:` path names, and whether it is that template itself (False: a packaged
    subchart, only its archive or the charts/ folder can be named).

    helm writes `CHART/templates/x.yaml` with CHART the chart's *name* (Chart.yaml), and a subchart's templates as
    `CHART/charts/SUB/templates/x.yaml` with SUB its name or its dependency alias (pkg/chart ChartFullPath,
    pkg/chart/util/dependencies.go getAliasDependency), so names are looked up, not taken as folder names.
    """
    parts = [p for p in source.split("/") if p]
    if os.path.isfile(chart_dir):  # a packaged chart: the template is named inside the archive, never read
        return os.path.join(chart_dir, *parts[1:]), False
    here = chart_dir
    i = 1  # parts[0] is the top chart's name: the folder that was rendered
    while i + 2 < len(parts) and parts[i] == "charts":
        name, version = _dependency(here, parts[i + 1])
        sub = _subchart(here, name)
        if sub is None:
            return _packaged(here, name, version), False
        here, i = sub, i + 2
    return os.path.join(here, *parts[i:]), True


def _chart_meta(directory: str) -> dict[str, Any]:
    docs, _errors = load_config(os.path.join(directory, CHART_FILE))
    return docs[0] if docs and isinstance(docs[0], dict) else {}


def _dependency(directory: str, shown_as: str) -> tuple[str, str | None]:
    """(chart name, version) of the dependency helm shows as `shown_as`: its alias, else its own name."""
    deps = [d for d in _chart_meta(directory).get("dependencies") or ()
            if isinstance(d, dict) and isinstance(d.get("name"), str)]
    for dep in [d for d in deps if d.get("alias") == shown_as] or [d for d in deps if d["name"] == shown_as
                                                                    and not d.get("alias")]:
        version = dep.get("version")
        return dep["name"], version if isinstance(version, str) else None
    return shown_as, None


def _subchart(directory: str, name: str) -> str | None:
    """The unpacked folder under charts/ whose Chart.yaml names `name` (else a folder called so)."""
    charts = os.path.join(directory, "charts")
    try:
        entries = sorted(os.listdir(charts))
    except OSError:
        return None
    fallback = None
    for entry in entries:
        sub = os.path.join(charts, entry)
        if os.path.isfile(os.path.join(sub, CHART_FILE)):
            if _chart_meta(sub).get("name") == name:
                return sub
            if entry == name:
                fallback = sub
    return fallback


def _packaged(directory: str, name: str, version: str | None) -> str:
    """`charts/NAME-VERSION.tgz` (what `helm package` and `helm dependency build` write), or the only
    `NAME-*.tgz`; else the charts/ folder."""
    charts = os.path.join(directory, "charts")
    if version and os.path.isfile(exact := os.path.join(charts, f"{name}-{version}.tgz")):
        return exact
    try:
        archives = [e for e in sorted(os.listdir(charts)) if e.startswith(f"{name}-") and e.endswith(".tgz")]
    except OSError:
        archives = []
    return os.path.join(charts, archives[0]) if len(archives) == 1 else charts


def add_helm_output(data: bytes, chart_dir: str, result: LoadResult, max_bytes: int) -> None:
    """Parse rendered manifests block by block, each named by its template file.

    Lines: a block whose text appears exactly once, character for character, in its template file (a template
    without actions, a CRD from crds/, a literal document inside `{{ if }}`) gets that file's lines. Any other block
    gets the template file without a line: the rendered line numbers belong to helm's output, not to the template
    (`include`, `toYaml`, `range` and conditionals move text), and a wrong line would send the reader astray.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _InputProblem("helm template printed output that is not UTF-8") from None
    templates: dict[str, str | None] = {}
    counted: set[str] = set()
    for source, block in split_helm_output(text):
        path, exact = source_file(chart_dir, source) if source else (chart_dir, False)
        if not _inside(path, chart_dir):
            # a template can print a `# Source:` line of its own; it never names a file outside the chart
            path, exact = chart_dir, False
        shown = display_path(path)
        body = block.lstrip("\n").rstrip()  # newlines only: a document's first line may be indented
        if not body:
            continue
        offset = None
        if exact:
            if path not in templates:
                templates[path] = _template_text(path, max_bytes)
            offset = _verbatim_line(templates[path], body)
        before_res, before_err = len(result.resources), len(result.errors)
        if offset is not None:
            _parse(("\n" * (offset - 1) + body + "\n").encode(), shown, result)
        else:
            _parse((body + "\n").encode(), shown, result)
            for res in result.resources[before_res:]:
                res.line = None
                res.key_lines = None
            result.errors[before_err:] = [InputError(e.file, f"as rendered by helm template: {e.message}")
                                          for e in result.errors[before_err:]]
        if len(result.resources) > before_res and shown not in counted:
            counted.add(shown)
            result.files_read += 1


def _inside(path: str, directory: str) -> bool:
    top = os.path.normpath(os.path.abspath(directory))
    return os.path.commonpath([top, os.path.normpath(os.path.abspath(path))]) == top


def _template_text(path: str, max_bytes: int) -> str | None:
    try:
        return _read_bounded(path, max_bytes).decode("utf-8")
    except (_InputProblem, UnicodeDecodeError):
        return None


def _verbatim_line(template: str | None, body: str) -> int | None:
    """1-based line where `body` starts in `template`, when it occurs there exactly once."""
    if template is None:
        return None
    at = template.find(body)
    if at < 0 or template.find(body, at + 1) >= 0:
        return None
    return template.count("\n", 0, at) + 1


# ----------------------------------------------------------------------------------------------------- kustomize

def missing_kustomize(shown: str) -> str:
    import shlex

    return (f"kustomize is not installed (nor kubectl); install kustomize (https://kustomize.io) or render it "
            f"yourself: kustomize build {shlex.quote(shown)} | kubeward scan -")


_WRAPPER = """\
# Written by kubeward for one render: the folder below, unchanged, with origin annotations turned on
# (kustomize api/types/kustomization.go BuildMetadata, OriginAnnotations).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- {target}
buildMetadata: [originAnnotations]
"""


def _render_kustomization(r: Renderable, result: LoadResult, max_bytes: int, opts: RenderOptions,
                          path_env: str | None) -> None:
    import shutil  # as in _render_chart
    import tempfile

    kustomize = shutil.which("kustomize", path=path_env)
    kubectl = None if kustomize else shutil.which("kubectl", path=path_env)
    if kustomize is not None:
        build, what = [kustomize, "build"], "kustomize build"
    elif kubectl is not None:
        build, what = [kubectl, "kustomize"], "kubectl kustomize"
    else:
        raise _InputProblem(missing_kustomize(r.shown))
    with tempfile.TemporaryDirectory(prefix="kubeward-kustomize-") as tmp:
        wrapper = os.path.realpath(tmp)
        # relative: kustomize refuses an absolute root ("new root … cannot be absolute", api/internal/loader)
        target = os.path.relpath(os.path.realpath(r.path), wrapper)
        with open(os.path.join(wrapper, "kustomization.yaml"), "w", encoding="utf-8") as fh:
            fh.write(_WRAPPER.format(target=_yaml_scalar(target)))
        ran = _start([*build, wrapper], what, opts.timeout, max_bytes, path_env)
    root: str | None = wrapper
    if ran.returncode != 0 and not (ran.timed_out or ran.too_big):
        # The folder itself: a kustomize older than buildMetadata (v4.5) builds it without origins, and a broken
        # folder fails in kustomize's own words for it rather than through the wrapper's layer.
        ran = _start([*build, r.path], what, opts.timeout, max_bytes, path_env)
        root = None
    _check(ran, what, opts.timeout, max_bytes)
    add_kustomize_output(ran.stdout, r.path, result, build_root=root)


def _yaml_scalar(text: str) -> str:
    return yaml.safe_dump(text, default_style='"', width=1 << 30).strip().removesuffix("...").strip()


def add_kustomize_output(data: bytes, kustomization_dir: str, result: LoadResult, *,
                         build_root: str | None = None) -> None:
    """Objects of `kustomize build` output, each named by the resource file it came from (origin annotation, then
    removed so it judges nothing), without lines: kustomize re-serializes every object, its lines are its own.
    `build_root` is the folder kustomize built (origin paths are relative to it): the kustomization by default."""
    shown_dir = display_path(kustomization_dir)
    staged = LoadResult(objects_only=result.objects_only)
    _parse(data, shown_dir, staged)
    counted: set[str] = set()
    for res in staged.resources:
        res.file = display_path(origin_file(res.obj, build_root or kustomization_dir, kustomization_dir))
        res.line = None
        res.key_lines = None
        if res.file not in counted:
            counted.add(res.file)
            result.files_read += 1
    result.resources += staged.resources
    result.errors += [InputError(e.file, f"as rendered by kustomize: {e.message}") for e in staged.errors]
    result.skipped += staged.skipped


def origin_file(obj: dict[str, Any], build_root: str, kustomization_dir: str) -> str:
    """The file the origin annotation names; the kustomization file of `kustomization_dir` for a remote resource
    (a URL is not a file to open) or an object without one. The annotation is removed.

    kustomize api/resource/origin.go: `path` is the resource file relative to the root being built (`build_root`:
    the wrapper folder), `repo`/`ref` mark a remote base, and a generated object has `configuredIn`, the
    kustomization file of its generator, instead of `path`.
    """
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    raw = annotations.pop(ORIGIN_ANNOTATION, None) if isinstance(annotations, dict) else None
    if isinstance(annotations, dict) and not annotations and isinstance(meta, dict):
        del meta["annotations"]
    fallback = _kustomization_file(kustomization_dir)
    try:
        origin = yaml.safe_load(raw) if isinstance(raw, str) else None
    except yaml.YAMLError:
        origin = None
    if not isinstance(origin, dict) or origin.get("repo"):
        return fallback
    rel = origin.get("path") or origin.get("configuredIn")
    if not isinstance(rel, str) or not rel:
        return fallback
    return os.path.normpath(rel if os.path.isabs(rel) else os.path.join(build_root, rel))


def _kustomization_file(directory: str) -> str:
    for name in KUSTOMIZATION_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return directory


# -------------------------------------------------------------------------------------------------------- shared

def _parse(data: bytes, shown: str, result: LoadResult) -> None:
    """parse_bytes, with a problem of the whole text recorded as that text's one error (as load_paths does)."""
    try:
        parse_bytes(data, shown, result)
    except _InputProblem as exc:
        result.errors.append(InputError(shown, str(exc)))


def _run(argv: list[str], what: str, timeout: float, max_bytes: int, path_env: str | None) -> Ran:
    ran = _start(argv, what, timeout, max_bytes, path_env)
    _check(ran, what, timeout, max_bytes)
    return ran


def _start(argv: list[str], what: str, timeout: float, max_bytes: int, path_env: str | None) -> Ran:
    env = None
    if path_env is not None:
        env = dict(os.environ, PATH=path_env)
    from .bounded_run import run_bounded

    try:
        return run_bounded(argv, timeout=timeout, max_bytes=max_bytes, env=env)
    except OSError as exc:
        raise _InputProblem(f"{what} could not be started: {exc.strerror or exc}") from None


def _check(ran: Ran, what: str, timeout: float, max_bytes: int) -> None:
    if ran.timed_out:
        raise _InputProblem(f"{what} did not finish within {timeout:g} s and was stopped")
    if ran.too_big:
        raise _InputProblem(f"{what} printed over {max_bytes / 2**20:.0f} MiB, the input limit "
                            f"(raise it with --max-file-size)")
    if ran.returncode != 0:
        raise _InputProblem(f"{what} failed: {first_error_line(ran.stderr) or f'exit code {ran.returncode}'}")


def first_error_line(stderr: bytes) -> str:
    """The tool's first `Error:` message (helm and kustomize print it so, after any warnings), else the first
    non-empty line; without the `Error: ` prefix. helm v4 continues a template error on indented lines
    (`Error: t.yaml:4:18` / `  executing "t.yaml" at <.Values.a.b>:` / `    nil pointer …`): those are joined
    into the one line, which would otherwise say only where; so are the lines of a values-schema error, which name
    the chart and each violation unindented (`Error: values don't meet …:` / `mychart:` / `- at '/age': minimum…`).
    The lines joined after the first stop at ERROR_CHARS in all; the first is never cut."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("Error:"):
            message = ln.removeprefix("Error:").strip()
            for more in lines[i + 1:]:
                part = more.strip()
                if not part or more.startswith(("Error:", "WARNING:", "walk.go:")):
                    break
                if not (more[:1].isspace() or part.startswith("- ") or message.endswith(":")):
                    break
                item = part.startswith("- ")
                message += (" " if message.endswith(":") else "; " if item else ": ") + part.removeprefix("- ")
            cap = max(ERROR_CHARS, len(ln.removeprefix("Error:").strip()))  # the first line is never cut
            return message if len(message) <= cap else message[:cap - 1] + "…"
    return next((ln.strip() for ln in lines if ln.strip()), "")


ERROR_CHARS = 400  # a tool's error in one line of kubeward's: long enough for a schema error's violations
