"""`kubeward pss check` and `kubeward pss namespaces`: what pod-security-admission would do, offline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..engines.pss import Evaluator, Level, PolicyError, Result, parse_level, parse_version
from ..engines.pss.config import AdmissionConfig, ConfigError, load_config
from ..engines.pss.namespaces import MODES, NamespacePlan, WorkloadVerdict, plan_namespaces
from ..formats import DOCUMENTS, document
from ..formats.paths import Paths
from ..sources.cluster import NAMESPACE_TYPES, WORKLOAD_TYPES
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    all_namespaces_option,
    answer_output_options,
    emit,
    fail,
    input_namespace,
    input_options,
    load_snapshot,
)
from .live import live_options, live_request, load_cluster_cli


@click.group("pss")
def group() -> None:
    """Pod Security Standards: judge pods and plan namespace levels exactly as pod-security-admission does."""


def _location(res: Any) -> dict[str, Any]:
    if res.file is not None:
        return {"location": {"file": res.file, "line": res.line}}
    return {"source": {"cluster": res.cluster}} if res.cluster else {}


def _result_json(result: Result) -> dict[str, Any]:
    return {"allowed": result.allowed, "violations": [v.to_json() for v in result.violations]}


def _load(paths: tuple[str, ...], max_file_size: str) -> Any:
    live = live_request()
    if live is not None:
        if paths:
            fail("--cluster reads a live cluster: give no paths with it")
        snap = load_cluster_cli(*live, (*NAMESPACE_TYPES, *WORKLOAD_TYPES))
        if snap.not_assessed:
            fail(f"cluster {snap.context}: cannot read every namespace and workload type; a plan would be a guess")
        return snap
    if not paths:
        fail("nothing to check: give files, folders or '-' for stdin (or --demo)")
    ns, enforce = input_namespace("only")  # -n filters here; given once it also places namespace-less inputs
    snapshot = load_snapshot(paths, max_file_size, namespace=ns, enforce_namespace=enforce)
    for e in snapshot.errors:
        click.echo(str(e), err=True)
    return snapshot


def _version_option(f: Any) -> Any:
    return click.option("--version", "version", default="latest", show_default=True, metavar="v1.N|latest",
                        help="Policy version (as in pod-security.kubernetes.io/enforce-version).")(f)


@group.command("check")
@input_options
@click.option("--level", required=True, type=click.Choice([lv.value for lv in Level]),
              help="Pod Security Standard level to judge against.")
@_version_option
@click.option("--namespace", "-n", "only", multiple=True, help="Only objects in these namespaces (repeatable).")
@all_namespaces_option("only")
@answer_output_options(("table", *DOCUMENTS), "pss check")
def check(paths: tuple[str, ...], max_file_size: str, level: str, version: str, only: tuple[str, ...], fmt: str,
          output_file: str | None) -> None:
    """Judge every Pod and workload pod template (Deployment, Job, CronJob, …) at one level and version.

    \b
    Exit codes: 0 all allowed; 1 any denied; 2 usage or input errors.
    """
    try:
        lv, ver = parse_level(level), parse_version(version)
    except PolicyError as exc:
        fail(f"--version: {exc}")
    snapshot = _load(paths, max_file_size)
    evaluator = Evaluator(lv, ver)
    judged = []
    for res in sorted(snapshot.workloads(), key=lambda r: (r.file or "", r.line or 0, r.kind, r.name)):
        view = res.pod()
        if view is not None and (not only or res.namespace in only):
            judged.append((res, evaluator.evaluate(view)))
    if not judged and not snapshot.errors:
        fail("no Pods or workload pod templates found in the input")
    if fmt in DOCUMENTS:
        doc = {"level": lv.value, "version": str(ver), "results": [
            {"object": res.ref().to_json(), **_location(res), **_result_json(result)} for res, result in judged
        ]}
        emit(document(doc, fmt), output_file)
    else:
        emit(_check_table(judged, lv, str(ver)), output_file)
    if snapshot.errors:
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if any(not r.allowed for _, r in judged) else EXIT_OK)


def _check_table(judged: list[tuple[Any, Result]], level: Level, version: str) -> str:
    lines = []
    paths = Paths()  # relative to the working directory when under it, as the scan table shows them
    for res, result in judged:
        where = f"  {paths.where(res.location())}" if res.file or res.cluster else ""
        lines.append(f"{'ALLOWED' if result.allowed else 'DENIED '}  {res.ref()}{where}")
        lines += [f"    {v.check}: {v.message}" for v in result.violations]
    denied = sum(1 for _, r in judged if not r.allowed)
    lines.append(f"{len(judged)} checked at {level.value}:{version}: {len(judged) - denied} allowed, {denied} denied")
    return "\n".join(lines) + "\n"


@group.command("namespaces")
@input_options
@live_options
@click.option("--namespace", "-n", "only", multiple=True, help="Only these namespaces (repeatable).")
@all_namespaces_option("only")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=str),
              help="PSA configuration (PodSecurityConfiguration or AdmissionConfiguration): defaults, exemptions.")
@click.option("--exempt-namespace", multiple=True,
              help="Namespaces exempted in the AdmissionConfiguration (repeatable).")
@click.option("--exempt-runtime-class", multiple=True,
              help="RuntimeClass names exempted in the AdmissionConfiguration (repeatable).")
@answer_output_options(("table", *DOCUMENTS), "pss namespaces")
def namespaces(paths: tuple[str, ...], max_file_size: str, only: tuple[str, ...], config_file: str | None,
               exempt_namespace: tuple[str, ...], exempt_runtime_class: tuple[str, ...], fmt: str,
               output_file: str | None) -> None:
    """Per namespace: enforce/audit/warn from its pod-security.kubernetes.io labels (defaults: privileged, latest,
    or those of --config),
    which Pods and workloads would be rejected, warned or audited — and what the next stricter level would reject.

    \b
    Pods are enforced; workload templates only get warnings and audit annotations at admission, but the pods
    they create are enforced, so a denied template is listed as rejected too.
    Exit codes: 0 nothing rejected at any namespace's enforce level; 1 something would be; 2 usage or input errors.
    """
    config = AdmissionConfig()
    if config_file is not None:
        try:
            config = load_config(Path(config_file))
        except ConfigError as exc:
            fail(str(exc))
    snapshot = _load(paths, max_file_size)
    plans = plan_namespaces(snapshot, defaults=config.defaults,
                            exempt_namespaces=config.exempt_namespaces | set(exempt_namespace),
                            exempt_runtime_classes=config.exempt_runtime_classes | set(exempt_runtime_class),
                            namespaces=only or None)
    if not plans and not snapshot.errors:
        fail("no namespaces found in the input" if not only else f"namespace(s) not found: {', '.join(only)}")
    for p in plans:
        for err in p.errors:
            click.echo(f"kubeward: Namespace/{p.name}: {err}", err=True)
    if fmt in DOCUMENTS:
        emit(document({"namespaces": [_plan_json(p) for p in plans]}, fmt), output_file)
    else:
        emit(_plans_table(plans), output_file)
    if snapshot.errors:
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if any(p.count("enforce") for p in plans) else EXIT_OK)


def _workload_json(w: WorkloadVerdict) -> dict[str, Any]:
    d: dict[str, Any] = {"object": w.resource.ref().to_json(), **_location(w.resource)}
    if w.exempt is not None:
        d["exempt"] = w.exempt
    for mode, result in w.results.items():
        d[mode] = _result_json(result)
    return d


def _plan_json(p: NamespacePlan) -> dict[str, Any]:
    summary = {"workloads": len(p.workloads), "rejected": p.count("enforce"), "audited": p.count("audit"),
               "warned": p.count("warn")}
    if p.next_level is not None:
        summary["rejectedAtNext"] = p.count("next")
    return {
        "name": p.name,
        "labelled": p.labelled,
        "declared": p.declared,
        "exempt": p.exempt,
        **{m: p.policy.mode(m).to_json() for m in MODES},
        "next": p.next_level.to_json() if p.next_level is not None else None,
        "errors": p.errors,
        "summary": summary,
        "workloads": [_workload_json(w) for w in p.workloads],
    }


def _plans_table(plans: list[NamespacePlan]) -> str:
    lines: list[str] = []
    paths = Paths()
    for p in plans:
        pol = p.policy
        head = f"{p.name}: enforce={pol.enforce} audit={pol.audit} warn={pol.warn}"
        if not p.declared:
            head += " (no Namespace object in the input: defaults assumed)"
        elif not p.labelled:
            head += " (no pod-security labels: defaults)"
        if p.exempt:
            head += " (exempt)"
        lines.append(head)
        counts = f"  {len(p.workloads)} workload{'' if len(p.workloads) == 1 else 's'}: {p.count('enforce')} rejected, {p.count('warn')} warned, " \
                 f"{p.count('audit')} audited"
        if p.next_level is not None:
            counts += f"; at {p.next_level}: {p.count('next')} rejected"
        lines.append(counts)
        for w in p.workloads:
            if w.exempt is not None:
                continue
            for mode, label in (("enforce", "rejected"), ("warn", "warned"), ("audit", "audited"),
                                ("next", f"rejected at {p.next_level}")):
                result = w.results.get(mode)
                if result is not None and not result.allowed:
                    where = f" {paths.where(w.resource.location())}" if w.resource.file else ""
                    lines.append(f"    {label}: {w.resource.ref()}{where}: {result.message}")
    return "\n".join(lines) + "\n"
