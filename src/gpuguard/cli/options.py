"""What the faces share: the usage-error exit, audit settings files, and the input and node options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

EXIT_FINDINGS = 1
EXIT_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])


class UsageFailure(click.ClickException):
    """Bad input or options: one line on stderr, exit status 2."""

    exit_code = EXIT_INPUT

    def show(self, file: object = None) -> None:
        click.echo(f"gpuguard: error: {self.message}", err=True)


def load_audit_settings(path: str | None) -> object:
    """The ``--config`` file (audit settings under ``rules:`` or at the top), or the defaults."""
    from gpuguard.rules.settings import AuditSettings, load_settings  # noqa: PLC0415 - lazy: fast startup
    from gpuguard.sources.documents import load_document  # noqa: PLC0415

    if path is None:
        return AuditSettings()
    try:
        with open(path, "rb") as f:
            doc = load_document(f.read(), path)
    except OSError as exc:
        raise UsageFailure(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    if isinstance(doc, dict) and "rules" in doc:
        return load_settings(doc["rules"], f"{path}: rules")
    return load_settings(doc, path)


_INPUT_AND_NODE_OPTIONS = (
    click.option("--include", multiple=True, metavar="GLOB", help="In directories, read only files matching GLOB "
                 "(repeatable; default: *.yaml *.yml *.json *.toml Dockerfile*)."),
    click.option("--exclude", multiple=True, metavar="GLOB",
                 help="In directories, skip files and folders matching GLOB."),
    click.option("--operator-version", metavar="VERSION", help="GPU Operator release of the GPU nodes (e.g. 25.3.4)."),
    click.option("--toolkit-version", metavar="VERSION", help="NVIDIA Container Toolkit release on the GPU nodes."),
    click.option("--profile", "profile", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Node description (YAML, the node: section of simulate's pod form)."),
    click.option("--config", "config", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Audit settings YAML: trustedNamespaces, exempt, gpuImages, cdiAnnotationPrefixes."),
)  # fmt: skip


def input_and_node_options(command: F) -> F:
    """``--include/--exclude`` and the node options, shared by ``audit`` and ``fix``."""
    for option in reversed(_INPUT_AND_NODE_OPTIONS):
        command = option(command)
    return command
