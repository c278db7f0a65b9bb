"""``gpuguard audit``: find GPU exposure in manifests, GPU Operator settings and toolkit configs.

The report goes to stdout (or ``--output``); progress, input errors and the
summary line go to stderr.  Exit status: 0 nothing at or above ``--fail-on``;
1 findings at or above it; 2 a usage error or an input that could not be read
(the readable rest is still reported; 2 wins over 1).

After the report is written it can also go elsewhere (``--policy-reports``, ``--metrics-file``,
``--pushgateway``, ``--history``): a sink that fails is one error line and exit status 2, and the report
already written is never lost.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
@click.option("--policy-reports", is_flag=True,
              help="With --cluster: write the report as PolicyReport objects into the cluster (and delete "
                   "gpuguard's reports of namespaces that are clean now).")
@click.option("--metrics-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a Prometheus metrics snapshot of the run to FILE (node-exporter textfile collector).")
@click.option("--pushgateway", metavar="URL", help="Push a Prometheus metrics snapshot of the run to this Pushgateway.")
@click.option("--history", "history_url", metavar="URL", envvar="GPUGUARD_HISTORY_URL", show_envvar=True,
              help="Record the run in the history database (sqlite:///PATH or postgresql://...); prefer the "
                   "environment variable, so a password never sits on the command line.")
@click.option("--cluster-name", metavar="NAME", envvar="GPUGUARD_CLUSTER_NAME", show_envvar=True,
              help="The cluster's name in metrics and history (default: the kubeconfig context, or local).")
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
    policy_reports: bool,
    metrics_file: str | None,
    pushgateway: str | None,
    history_url: str | None,
    cluster_name: str | None,
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

    sinks = _Sinks(time.time(), datetime.datetime.now(datetime.UTC), cluster_name, policy_reports, metrics_file,
                   pushgateway, history_url)
    if policy_reports and not cluster:
        raise UsageFailure("--policy-reports needs --cluster")
    read_pull_secrets = images.pop("read_pull_secrets")
    check_image_options(images)
    check_cluster_options(
        {"cluster": cluster, "kubeconfig": kubeconfig, "context": context, "namespace": namespace,
         "read_pull_secrets": read_pull_secrets},
        {"PATHS": paths, "--include": include, "--exclude": exclude, "--operator-version": operator_version,
         "--toolkit-version": toolkit_version, "--profile": profile},
    )
    if read_pull_secrets and not images["resolve_images"]:
        raise UsageFailure("--read-pull-secrets needs --resolve-images")
    image_options = ImageOptions(
        resolve=images["resolve_images"], platform=images["platform"],
        all_platforms=images["all_platforms"], auth_files=images["registry_auth"],
        insecure_registries=images["insecure_registry"], ca_file=images["ca_file"],
        cache_dir=images["cache_dir"], offline=images["offline"], sources=images["image_source"],
    )  # fmt: skip
    if cluster:
        report = _cluster_report(config, ignore_file, baseline, _connect_options(kubeconfig, context, namespace),
                                 image_options, read_pull_secrets)
        sinks.connect = _connect_options(kubeconfig, context, namespace)
        _finish(report, fmt, output, fail_on, no_color, sinks)
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
                progress=progress, images=image_options,
            ),
        )  # fmt: skip
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    if progress is not None:
        click.echo("\r\033[K", nl=False, err=True)
    _finish(report, fmt, output, fail_on, no_color, sinks)


def _connect_options(kubeconfig: str | None, context: str | None, namespace: str | None) -> Any:
    from gpuguard.sources.cluster import ConnectOptions  # noqa: PLC0415 - lazy

    return ConnectOptions(kubeconfig=kubeconfig, context=context, namespace=namespace)


def _cluster_report(  # noqa: PLR0917 - the --cluster options, passed through
    config: str | None, ignore_file: str | None, baseline: str | None, connect: Any, images: Any,
    pull_secrets: bool,
) -> Any:
    from gpuguard.audit.cluster import ClusterAuditOptions, audit_cluster  # noqa: PLC0415 - lazy

    progress = _progress() if sys.stderr.isatty() else None
    try:
        report = audit_cluster(
            load_audit_settings(config),  # type: ignore[arg-type]
            ClusterAuditOptions(connect, ignore_file=ignore_file, baseline=baseline, progress=progress,
                                images=images, pull_secrets=pull_secrets),
        )
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    if progress is not None:
        click.echo("\r\033[K", nl=False, err=True)
    return report


def _finish(  # noqa: PLR0917 - the report and how to write it
    report: Any, fmt: str, output: str | None, fail_on: str, no_color: bool, sinks: _Sinks | None = None,
) -> None:
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
    failed = sinks.publish(report) if sinks is not None else 0
    click.echo(f"gpuguard: {summary_line(report)}", err=True)
    if report.errors or failed:
        sys.exit(EXIT_INPUT)
    if report.count(Severity.parse(fail_on)):
        sys.exit(EXIT_FINDINGS)


def _progress() -> Callable[[str], None]:
    def show(text: str) -> None:
        click.echo(f"\r\033[Kgpuguard: {text}", nl=False, err=True)

    return show


@dataclass
class _Sinks:
    """Where the report goes after stdout; each failure is one line on stderr and counts towards exit 2."""

    started: float
    started_at: datetime.datetime
    cluster_name: str | None
    policy_reports: bool
    metrics_file: str | None
    pushgateway: str | None
    history_url: str | None
    connect: Any = None  # ConnectOptions with --cluster

    def publish(self, report: Any) -> int:
        failures = 0
        if not (self.policy_reports or self.metrics_file or self.pushgateway or self.history_url):
            return 0
        cluster = self.cluster_name or self._context() or "local"
        if self.policy_reports:
            failures += self._policy_reports(report)
        if self.history_url:
            failures += self._history(report, cluster)
        if self.metrics_file or self.pushgateway:
            failures += self._metrics(report, cluster, success=not report.errors and not failures)
        return failures

    def _context(self) -> str | None:
        if self.connect is None:
            return None
        from gpuguard.sources.cluster import connect  # noqa: PLC0415 - lazy

        try:
            api, context = connect(self.connect)
        except InputError:
            return None
        api.close()
        return str(context)

    def _policy_reports(self, report: Any) -> int:
        from gpuguard.publish.policyreports import PolicyReportWriter  # noqa: PLC0415 - lazy
        from gpuguard.sources.cluster import connect  # noqa: PLC0415

        try:
            api, _ = connect(self.connect)
        except InputError as exc:
            return _error(f"--policy-reports: {exc}")
        try:
            published = PolicyReportWriter(api, namespace=self.connect.namespace).publish(report)
        finally:
            api.close()
        for line in published.errors:
            _error(f"--policy-reports: {line}")
        click.echo(f"gpuguard: {published.summary()}", err=True)
        return len(published.errors)

    def _history(self, report: Any, cluster: str) -> int:
        from gpuguard.history import record_run  # noqa: PLC0415 - lazy: the database drivers load only when asked

        url = self.history_url or ""
        try:
            run = record_run(report, url=url, cluster=cluster, started=self.started_at)
        except Exception as exc:  # any failure of the database is one line: the report stands
            text = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            return _error(f"--history {_redacted(url)}: {_scrubbed(text, url)}")
        click.echo(f"gpuguard: history: run {run} recorded ({_redacted(url)})", err=True)
        return 0

    def _metrics(self, report: Any, cluster: str, *, success: bool) -> int:
        from gpuguard.publish.metrics import RunFacts, push, snapshot, write_textfile  # noqa: PLC0415 - lazy

        finished = time.time()
        registry = snapshot(report, RunFacts(finished=finished, duration=max(0.0, finished - self.started),
                                             success=success))
        failures = 0
        if self.metrics_file:
            try:
                write_textfile(registry, self.metrics_file)
                click.echo(f"gpuguard: metrics written to {self.metrics_file}", err=True)
            except OSError as exc:
                failures += _error(f"--metrics-file {self.metrics_file}: {exc.strerror or exc}")
        if self.pushgateway:
            where = _redacted(self.pushgateway)
            try:
                push(registry, self.pushgateway, cluster)
                click.echo(f"gpuguard: metrics pushed to {where} (cluster={cluster})", err=True)
            except (OSError, ValueError) as exc:
                failures += _error(f"--pushgateway {where}: {_scrubbed(str(exc), self.pushgateway)}")
        return failures


def _error(line: str) -> int:
    click.echo(f"gpuguard: error: {line}", err=True)
    return 1


def _redacted(url: str) -> str:
    """``scheme://host[:port]/path``: never the user name, password or query of a URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    if not parts.scheme:
        return "(URL without a scheme)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _scrubbed(text: str, url: str) -> str:
    """``text`` without the URL's password (a driver's message may quote its connection string)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(url, _redacted(url)).replace(password, "***") if password else text.replace(url, _redacted(url))
