"""``gpuguard webhook``: the admission webhook server (HTTPS; see README)."""

from __future__ import annotations

import sys

import click

from gpuguard.model.errors import InputError
from gpuguard.webhook.server import Options, run_forever

BAD_INPUT = 2


@click.command("webhook")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate chain (reloaded on change).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key (reloaded on change).")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Admission config YAML (reloaded on change).")
@click.option("--reload-interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="Seconds between checks of the TLS and config files for changes.")
@click.option("--insecure-http", is_flag=True, help="Plain HTTP, for local testing only (never in a cluster).")
def webhook_command(  # noqa: PLR0917 (click passes options positionally by name)
    tls_cert: str | None,
    tls_key: str | None,
    host: str,
    port: int,
    config: str | None,
    reload_interval: float,
    insecure_http: bool,
) -> None:
    """Serve admission reviews: /mutate sets NVIDIA_VISIBLE_DEVICES=void, /validate denies what it cannot fix."""
    if not insecure_http and not (tls_cert and tls_key):
        click.echo("gpuguard webhook: --tls-cert and --tls-key are required (or --insecure-http for local tests)",
                   err=True)  # fmt: skip
        sys.exit(BAD_INPUT)
    options = Options(tls_cert, tls_key, host, port, config, insecure_http, reload_interval)
    try:
        run_forever(options)
    except InputError as exc:
        click.echo(f"gpuguard webhook: {exc}", err=True)
        sys.exit(BAD_INPUT)
