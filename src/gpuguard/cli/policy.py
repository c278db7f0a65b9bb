"""``gpuguard policy export``: the admission rules as Kyverno, Gatekeeper, ValidatingAdmissionPolicy or
MutatingAdmissionPolicy objects, from the webhook's own configuration file."""

from __future__ import annotations

import click

from gpuguard.cli.options import UsageFailure

ENGINES = ("kyverno", "gatekeeper", "vap", "map")


@click.group("policy")
def policy_command() -> None:
    """Admission policy for clusters that prefer a policy engine to the webhook."""


@policy_command.command("export")
@click.option("--engine", type=click.Choice(ENGINES), required=True, help="the policy engine to export for")
@click.option("--config", "config_path", metavar="FILE", help="the webhook's configuration file (default: defaults)")
def export_command(engine: str, config_path: str | None) -> None:
    """Print the policy objects as multi-document YAML on stdout.

    Each exported policy object lists what it cannot express in its
    gpuguard.io/unexpressed-rules annotation (GG108: image env needs a registry lookup).
    """
    from gpuguard.admission.config import load_admission_config  # noqa: PLC0415 - lazy: fast startup
    from gpuguard.model.errors import InputError  # noqa: PLC0415
    from gpuguard.policy.export import export  # noqa: PLC0415
    from gpuguard.sources.documents import load_document  # noqa: PLC0415

    doc: object = None
    try:
        if config_path is not None:
            with open(config_path, "rb") as f:
                doc = load_document(f.read(), config_path)
        config = load_admission_config(doc, config_path or "")
    except OSError as exc:
        raise UsageFailure(f"--config {config_path}: cannot read: {exc.strerror or exc}") from None
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    click.echo(export(engine, config), nl=False)
