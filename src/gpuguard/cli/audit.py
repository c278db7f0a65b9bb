"""``gpuguard audit``: find GPU exposure in manifests, GPU Operator settings and toolkit configs.

The report goes to stdout (or ``--output``); progress, input errors and the
summary line go to stderr.  Exit status: 0 nothing at or above ``--fail-on``;
1 findings at or above it; 2 a usage error or an input that could not be read
(the readable rest is still reported; 2 wins over 1).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from gpuguard.cli.options import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    UsageFailure,
    check_cluster_options,
    check_image_options,
    cluster_options,
    image_options,
    input_and_node_options,
    load_audit_settings,
)
from gpuguard.formats.base import DEFAULT_FORMAT, FORMATS, location_text, summary_line
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Severity


@click.command("audit")
@click.argument("paths", nargs=-1, metavar="[PATHS...|-]")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default=DEFAULT_FORMAT, show_default=True,
              help="Report format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE, not stdout.")
@click.option("--fail-on", type=click.Choice([s.label for s in Severity]), default="medium", show_default=True,
              help="Exit 1 when a finding is at or above this severity.")
@input_and_node_options
@image_options
@cluster_options
@click.option("--ignore-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Suppressions: rules, paths, resource, reason, expires.")
@click.option("--baseline", type=click.Path(dir_okay=False), metavar="FILE",
              help="A previous JSON report: report only findings not in it.")
@click.option("--no-color", is_flag=True, help="No colour in the table (also: NO_COLOR).")
def audit_command(
    *,
    paths: tuple[str, ...],
    fmt: str,
    output: str | None,
    fail_on: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    operator_version: str | None,
    toolkit_version: str | None,
    profile: str | None,
    config: str | None,
    ignore_file: str | None,
    baseline: str | None,
    no_color: bool,
    cluster: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    **images: Any,
) -> None:
    """Audit manifests, GPU Operator settings and toolkit configs for GPU exposure.

    PATHS are files and directories (read recursively), or - for standard
    input (kubectl get -o yaml, helm template, kustomize build).  Exit status:
    0 clean, 1 findings at or above --fail-on, 2 usage error or unreadable input.
    With --cluster, the live cluster is read instead (each pod judged on its node).
    """
    from gpuguard.audit.images import ImageOptions  # noqa: PLC0415 - lazy: other commands start fast
    from gpuguard.audit.run import AuditOptions, audit  # noqa: PLC0415

    check_image_options(images)
    check_cluster_options(
        {"cluster": cluster, "kubeconfig": kubeconfig, "context": context, "namespace": namespace},
        {"PATHS": paths, "--include": include, "--exclude": exclude, "--operator-version": operator_version,
         "--toolkit-version": toolkit_version, "--profile": profile, "--resolve-images": images["resolve_images"]},
    )
    if cluster:
        report = _cluster_report(config, ignore_file, baseline, kubeconfig, context, namespace)
        _finish(report, fmt, output, fail_on, no_color)
        return
    if not paths:
        if sys.stdin.isatty():
            raise UsageFailure("give files, directories, or - to read standard input")
        paths = ("-",)
    progress = _progress() if sys.stderr.isatty() else None
    try:
        settings = load_audit_settings(config)
        report = audit(
            paths,
            settings,  # type: ignore[arg-type]
            AuditOptions(
                include=include, exclude=exclude, operator_version=operator_version,
                toolkit_version=toolkit_version, profile=profile, ignore_file=ignore_file, baseline=baseline,
                progress=progress,
                images=ImageOptions(
                    resolve=images["resolve_images"], platform=images["platform"],
                    all_platforms=images["all_platforms"], auth_files=images["registry_auth"],
                    insecure_registries=images["insecure_registry"], ca_file=images["ca_file"],
                    cache_dir=images["cache_dir"], offline=images["offline"], sources=images["image_source"],
                ),
            ),
        )  # fmt: skip
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    if progress is not None:
        click.echo("\r\033[K", nl=False, err=True)
    _finish(report, fmt, output, fail_on, no_color)


def _cluster_report(  # noqa: PLR0917 - the --cluster options, passed through
    config: str | None, ignore_file: str | None, baseline: str | None,
    kubeconfig: str | None, context: str | None, namespace: str | None,
) -> Any:
    from gpuguard.audit.cluster import ClusterAuditOptions, audit_cluster  # noqa: PLC0415 - lazy
    from gpuguard.sources.cluster import ConnectOptions  # noqa: PLC0415

    progress = _progress() if sys.stderr.isatty() else None
    try:
        report = audit_cluster(
            load_audit_settings(config),  # type: ignore[arg-type]
            ClusterAuditOptions(ConnectOptions(kubeconfig=kubeconfig, context=context, namespace=namespace),
                                ignore_file=ignore_file, baseline=baseline, progress=progress),
        )
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    if progress is not None:
        click.echo("\r\033[K", nl=False, err=True)
    return report


def _finish(report: Any, fmt: str, output: str | None, fail_on: str, no_color: bool) -> None:
    """Write the report, the errors and the summary line; exit with the status they call for."""
    color = fmt == "table" and not no_color and output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    data = FORMATS[fmt].render(report, color=color)
    if output is not None:
        try:
            with open(output, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise UsageFailure(f"--output {output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    for error in report.errors:
        where = location_text(error.location)
        click.echo(f"gpuguard: error: {where}: {error.message}" if where else f"gpuguard: error: {error.message}",
                   err=True)
    click.echo(f"gpuguard: {summary_line(report)}", err=True)
    if report.errors:
        sys.exit(EXIT_INPUT)
    if report.count(Severity.parse(fail_on)):
        sys.exit(EXIT_FINDINGS)


def _progress() -> Callable[[str], None]:
    def show(text: str) -> None:
        click.echo(f"\r\033[Kgpuguard: {text}", nl=False, err=True)

    return show
