"""The ``gpuguard`` command line: thin faces over one engine.

Reports go to stdout; errors, progress and summaries to stderr. Exit status:
0 ran, 1 ``audit`` found something at or above ``--fail-on``, 2 bad input,
3 an internal error (a bug: one line, no traceback unless ``GPUGUARD_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys

import click

from gpuguard import __version__
from gpuguard.cli.agent import agent_command
from gpuguard.cli.audit import audit_command
from gpuguard.cli.fix import fix_command
from gpuguard.cli.history import history_command
from gpuguard.cli.policy import policy_command
from gpuguard.cli.report import report_command
from gpuguard.cli.rules import rules_command
from gpuguard.cli.simulate import simulate_command
from gpuguard.cli.verify import verify_command
from gpuguard.cli.webhook import webhook_command

INTERNAL_ERROR = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gpuguard")
def cli() -> None:
    """Keep Kubernetes GPU nodes honest: a container that did not ask for a GPU must not get one."""


cli.add_command(agent_command)
cli.add_command(audit_command)
cli.add_command(fix_command)
cli.add_command(history_command)
cli.add_command(policy_command)
cli.add_command(report_command)
cli.add_command(rules_command)
cli.add_command(simulate_command)
cli.add_command(verify_command)
cli.add_command(webhook_command)


def main() -> None:
    try:
        cli()
    except Exception as exc:
        if os.environ.get("GPUGUARD_DEBUG"):
            raise
        click.echo(
            f"gpuguard: internal error: {type(exc).__name__}: {exc} (set GPUGUARD_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(INTERNAL_ERROR)
