"""``gpuguard history``: what changed between two recorded audit runs, or the list of runs.

The diff (or the list) goes to stdout, the one-line summary to stderr; bad
options, an unknown run or an unusable database give one line and exit 2.
"""

from __future__ import annotations

import click

from gpuguard.cli.options import UsageFailure
from gpuguard.history import ENV_URL, HistoryStore, diff_runs, open_store
from gpuguard.history.views import diff_dict, diff_summary, diff_table, run_dict, runs_table, to_json
from gpuguard.model.errors import InputError
from gpuguard.model.history import RunSummary

DB_HELP = (f"History database: postgresql://USER:PASSWORD@HOST/DB, sqlite:///PATH or a file path "
           f"(default: ${ENV_URL}, else $XDG_STATE_HOME/gpuguard/history.db).")


@click.command("history")
@click.option("--db", "db", envvar=ENV_URL, metavar="URL", help=DB_HELP)
@click.option("--cluster", metavar="NAME", help="Cluster whose runs to compare or list (default: the latest run's).")
@click.option("--from", "from_run", type=int, metavar="RUN", help="Older run id (default: the run before --to).")
@click.option("--to", "to_run", type=int, metavar="RUN", help="Newer run id (default: the latest run).")
@click.option("--list", "list_runs", is_flag=True, help="List the recorded runs instead of a diff.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="--list: the last N runs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def history_command(*, db: str | None, cluster: str | None, from_run: int | None, to_run: int | None,
                    list_runs: bool, limit: int, fmt: str) -> None:
    """Show what is new, fixed and still open between two audit runs (default: the last two)."""
    try:
        with open_store(db, create=False) as store:
            if list_runs:
                if from_run is not None or to_run is not None:
                    raise UsageFailure("--list takes no --from/--to")
                runs = store.runs(cluster, last=limit)
                click.echo(to_json([run_dict(r) for r in runs]) if fmt == "json" else runs_table(runs), nl=False)
                click.echo(f"{len(runs)} runs in {store.label}", err=True)
                return
            head = _head(store, cluster, to_run)
            diff = diff_runs(store, from_run, head.id)
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    if diff.base is not None and diff.base.id >= diff.head.id:
        raise UsageFailure(f"--from {diff.base.id} is not older than --to {diff.head.id}")
    click.echo(to_json(diff_dict(diff)) if fmt == "json" else diff_table(diff), nl=False)
    click.echo(diff_summary(diff), err=True)


def _head(store: HistoryStore, cluster: str | None, to_run: int | None) -> RunSummary:
    """The newer run: --to, else the latest run of --cluster (or of any cluster)."""
    if to_run is not None:
        head = store.run(to_run)
        if cluster is not None and head.cluster != cluster:
            raise InputError(f"--to {to_run}", f"is a run of cluster {head.cluster!r}, not {cluster!r}")
        return head
    latest = store.runs(cluster, last=1)
    if not latest:
        where = f"for cluster {cluster!r} " if cluster is not None else ""
        raise InputError(store.label, f"no runs recorded {where}yet")
    return latest[0]
