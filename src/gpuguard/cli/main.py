"""The ``gpuguard`` command line: thin faces over one engine."""

from __future__ import annotations

import click

from gpuguard import __version__
from gpuguard.cli.simulate import simulate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gpuguard")
def cli() -> None:
    """Keep Kubernetes GPU nodes honest: a container that did not ask for a GPU must not get one."""


cli.add_command(simulate_command)


def main() -> None:
    cli()
