"""``gpuguard report --html``: one self-contained HTML page, from the history or from a JSON report file.

From the history the page has the run's findings, the exposure matrix, the
trend of the last runs and what is new and fixed since the run before; from a
report file (``--input``) it has the findings and the matrix only.
"""

from __future__ import annotations

import sys

import click

from gpuguard.cli.history import DB_HELP
from gpuguard.cli.options import UsageFailure
from gpuguard.formats.html import render_page
from gpuguard.history import ENV_URL, diff_runs, open_store
from gpuguard.history.report_file import load_report_findings
from gpuguard.model.errors import InputError


@click.command("report")
@click.option("--html", "html", is_flag=True, help="Render the HTML page (the one format for now).")
@click.option("--output", "-o", default="-", metavar="FILE", help="Write the page to FILE (default: stdout).")
@click.option("--db", "db", envvar=ENV_URL, metavar="URL", help=DB_HELP)
@click.option("--cluster", metavar="NAME", help="Cluster of the run (default: the latest run's).")
@click.option("--run", "run_id", type=int, metavar="ID", help="Run to show (default: the latest of the cluster).")
@click.option("--trend", type=click.IntRange(min=1), default=20, show_default=True, help="Runs in the trend chart.")
@click.option("--input", "input_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A gpuguard JSON report (audit --format json) instead of the history: no trend, no diff.")
@click.option("--title", metavar="TEXT", help="Page title.")
def report_command(*, html: bool, output: str, db: str | None, cluster: str | None, run_id: int | None, trend: int,
                   input_file: str | None, title: str | None) -> None:
    """Render an audit run as a self-contained HTML page (matrix of GPU nodes × namespaces, trend, changes)."""
    if not html:
        raise UsageFailure("choose the output: --html")
    if input_file is not None and (run_id is not None or cluster is not None):
        raise UsageFailure("--input renders one report file: it takes no --run or --cluster")
    try:
        page, summary = _from_file(input_file, title) if input_file else _from_history(db, cluster, run_id, trend,
                                                                                       title)
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    data = page.encode()
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            with open(output, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise UsageFailure(f"--output {output}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"{summary}; wrote {'stdout' if output == '-' else output}", err=True)


def _from_file(path: str, title: str | None) -> tuple[str, str]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    source, findings = load_report_findings(data, path)
    page = render_page(title=title or f"gpuguard report: {path}", run=None, findings=findings)
    return page, f"{len(findings)} findings from {path} (judged against {source or 'unknown'})"


def _from_history(db: str | None, cluster: str | None, run_id: int | None, trend: int,
                  title: str | None) -> tuple[str, str]:
    with open_store(db, create=False) as store:
        if run_id is not None:
            run = store.run(run_id)
            if cluster is not None and run.cluster != cluster:
                raise InputError(f"--run {run_id}", f"is a run of cluster {run.cluster!r}, not {cluster!r}")
        else:
            latest = store.runs(cluster, last=1)
            if not latest:
                raise InputError(store.label, "no runs recorded" + (f" for cluster {cluster!r}" if cluster else ""))
            run = latest[0]
        runs = [r for r in store.runs(run.cluster) if r.id <= run.id][-trend:]
        diff = diff_runs(store, None, run.id)
        findings = store.findings(run.id)
    page = render_page(title=title or f"gpuguard: cluster {run.cluster}, run {run.id}", run=run, findings=findings,
                       trend=runs, diff=diff)
    return page, f"run {run.id} of cluster {run.cluster}: {len(findings)} findings, {len(diff.new)} new, " \
                 f"{len(diff.fixed)} fixed"
