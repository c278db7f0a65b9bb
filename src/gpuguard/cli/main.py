"""The ``gpuguard`` command line."""

from __future__ import annotations

import click

from gpuguard import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gpuguard")
def cli() -> None:
    """Keep Kubernetes GPU nodes honest."""


def main() -> None:
    cli()
