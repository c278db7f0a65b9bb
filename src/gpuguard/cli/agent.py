"""``gpuguard agent``: ground truth on one GPU node, once or continuously.

``--once`` scans, writes the report to stdout (``--format``, JSON by default)
and exits: 0 nothing at or above ``--fail-on``; 1 findings at or above it;
2 a usage error, or a source that could not be read (the report is still
written, naming it; 2 wins over 1).  Without ``--once`` it scans every
``--interval`` seconds until SIGTERM or SIGINT, serves Prometheus metrics on
``--metrics-port`` and, when asked, publishes Events and PolicyReports; it
exits 0 when stopped, whatever the node did meanwhile.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any

import click

from gpuguard.cli.options import EXIT_FINDINGS, EXIT_INPUT, UsageFailure, load_audit_settings
from gpuguard.formats.base import FORMATS, location_text, summary_line
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Severity

DEFAULT_METRICS_PORT = 9403


@click.command("agent")
@click.option("--once", is_flag=True, help="Scan once, write the report to stdout and exit.")
@click.option("--interval", type=click.FloatRange(min=1.0), default=60.0, show_default=True, metavar="SECONDS",
              help="Continuous mode: seconds between the end of one scan and the start of the next.")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="json", show_default=True,
              help="Report format of --once.")
@click.option("--fail-on", type=click.Choice([s.label for s in Severity]), default="medium", show_default=True,
              help="--once: exit 1 when a finding is at or above this severity.")
@click.option("--node", envvar="NODE_NAME", default=None, metavar="NAME",
              help="This node's Kubernetes name (env NODE_NAME; default: the host name).")
@click.option("--containerd-socket", default="/run/containerd/containerd.sock", show_default=True, metavar="PATH")
@click.option("--containerd-namespace", default="k8s.io", show_default=True, metavar="NAME")
@click.option("--pod-resources-socket", default="/var/lib/kubelet/pod-resources/kubelet.sock", show_default=True,
              metavar="PATH")
@click.option("--proc-root", default="/proc", show_default=True, metavar="PATH",
              help="The host's /proc (the agent runs in the host PID namespace).")
@click.option("--driver-root", default="/proc/driver/nvidia", show_default=True, metavar="PATH",
              help="The driver's proc tree: gpus/<bus id>/information maps device minors to UUIDs.")
@click.option("--toolkit-config", type=click.Path(dir_okay=False), metavar="FILE",
              help="The toolkit's config.toml (default: the GPU Operator's, else /etc/nvidia-container-runtime/).")
@click.option("--toolkit-log", "toolkit_logs", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="A toolkit log file to correlate with containers (repeatable).")
@click.option("--toolkit-version", metavar="VERSION", help="The node's NVIDIA Container Toolkit release.")
@click.option("--config", type=click.Path(dir_okay=False), metavar="FILE",
              help="Audit settings: trusted namespaces and allow-list (exemptions), as for gpuguard audit.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True, metavar="SECONDS",
              help="Per call to containerd and the kubelet.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=DEFAULT_METRICS_PORT, show_default=True,
              help="Continuous mode: Prometheus /metrics port (0: no metrics).")
@click.option("--metrics-address", default="0.0.0.0", show_default=True, metavar="ADDRESS")
@click.option("--events", is_flag=True, help="Continuous mode: a Kubernetes Event on the pod for each finding.")
@click.option("--policy-reports", is_flag=True, help="Continuous mode: PolicyReport objects for the findings.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), metavar="FILE",
              help="For --events/--policy-reports (default: the in-cluster service account).")
def agent_command(**opts: Any) -> None:
    """Compare what each container on this node holds with what it was allocated.

    Reads containerd (every container, its OCI spec and task), the kubelet's
    pod-resources API (allocations), /proc/<pid>/root/dev (the NVIDIA device
    nodes each running container really holds), the driver's GPU list and the
    toolkit's config.toml (the engine's prediction).  Findings: GG401 holds
    GPUs it was not allocated, GG402 holds more than allocated, GG403
    prediction and reality disagree.  Read-only: it writes nothing on the host.
    Exit status of --once: 0 clean, 1 findings at or above --fail-on, 2 usage
    error or a source that could not be read (the report still names it).
    """
    from gpuguard.agent.scan import ScanOptions  # noqa: PLC0415 - lazy: other commands start fast
    from gpuguard.agent.toolkit import ToolkitReader  # noqa: PLC0415

    if opts["toolkit_version"]:
        try:
            ToolkitReader.check_version(opts["toolkit_version"])
        except InputError as exc:
            raise UsageFailure(str(exc)) from None
    if opts["once"] and (opts["events"] or opts["policy_reports"]):
        raise UsageFailure("--events and --policy-reports publish in continuous mode; drop --once")
    options = ScanOptions(
        node=opts["node"] or socket.gethostname(),
        containerd_socket=opts["containerd_socket"], containerd_namespace=opts["containerd_namespace"],
        pod_resources_socket=opts["pod_resources_socket"], proc_root=opts["proc_root"],
        driver_root=opts["driver_root"], toolkit_config=opts["toolkit_config"],
        toolkit_logs=tuple(opts["toolkit_logs"]), toolkit_version=opts["toolkit_version"], timeout=opts["timeout"],
    )  # fmt: skip
    settings = load_audit_settings(opts["config"])
    if opts["once"]:
        _once(options, settings, opts["fmt"], opts["fail_on"])
    else:
        _continuous(options, settings, opts)


def _once(options: Any, settings: Any, fmt: str, fail_on: str) -> None:
    from gpuguard.agent.scan import scan_once  # noqa: PLC0415

    report = scan_once(options, settings).report
    color = fmt == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.buffer.write(FORMATS[fmt].render(report, color=color))
    sys.stdout.flush()
    for error in report.errors:
        click.echo(f"gpuguard: error: {location_text(error.location)}: {error.message}", err=True)
    click.echo(f"gpuguard: {summary_line(report)}", err=True)
    if report.errors:
        sys.exit(EXIT_INPUT)
    if report.count(Severity.parse(fail_on)):
        sys.exit(EXIT_FINDINGS)


def _continuous(options: Any, settings: Any, opts: dict[str, Any]) -> None:
    from prometheus_client import disable_created_metrics, start_http_server  # noqa: PLC0415

    from gpuguard.agent.loop import Loop  # noqa: PLC0415
    from gpuguard.agent.metrics import AgentMetrics  # noqa: PLC0415
    from gpuguard.agent.scan import Scanner  # noqa: PLC0415

    def log(text: str) -> None:
        click.echo(f"gpuguard agent: {text}", err=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double /metrics
    metrics = AgentMetrics()
    server = None
    if opts["metrics_port"]:
        try:
            server, _ = start_http_server(opts["metrics_port"], opts["metrics_address"], registry=metrics.registry)
        except OSError as exc:
            raise UsageFailure(f"--metrics-port {opts['metrics_port']}: {exc.strerror or exc}") from None
        log(f"metrics on http://{opts['metrics_address']}:{server.server_port}/metrics")
    loop = Loop(Scanner(options, settings), opts["interval"], stop, log, metrics=metrics)
    if opts["events"] or opts["policy_reports"]:
        _publishers(loop, options.node, opts)
    log(f"node {options.node}: scanning every {opts['interval']:g} s")
    try:
        loop.run()
    finally:
        loop.scanner.close()
        if server is not None:
            server.shutdown()
            server.server_close()
    log(f"stopped after {loop.scans} scans")


def _publishers(loop: Any, node: str, opts: dict[str, Any]) -> None:
    from gpuguard.sources.cluster import ConnectOptions, connect  # noqa: PLC0415

    try:
        api, _ = connect(ConnectOptions(kubeconfig=opts["kubeconfig"]))
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    if opts["events"]:
        from gpuguard.publish.events import EventPublisher  # noqa: PLC0415

        loop.events = EventPublisher(api, node)
    if opts["policy_reports"]:
        from gpuguard.agent.policyreports import NodePolicyReports  # noqa: PLC0415

        loop.policy_reports = NodePolicyReports(api, node)
