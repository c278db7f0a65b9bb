"""``gpuguard verify``: prove GPU isolation on each GPU node with a probe pod and a control pod.

Exit status: 0 every node PASS, 1 any node FAIL, 2 an error (no cluster, API failure).
"""

from __future__ import annotations

import json
import sys

import click

from gpuguard.cli.options import EXIT_FINDINGS, EXIT_INPUT
from gpuguard.model.errors import InputError
from gpuguard.verify.probe import DEFAULT_IMAGE, NodeVerdict, ProbeOptions


def _toleration(text: str) -> dict[str, str]:
    """``KEY[=VALUE]:EFFECT`` as a toleration."""
    head, sep, effect = text.rpartition(":")
    if not sep or not head or effect not in {"NoSchedule", "PreferNoSchedule", "NoExecute"}:
        raise click.BadParameter(f"{text!r}: expected KEY[=VALUE]:EFFECT (NoSchedule, PreferNoSchedule, NoExecute)")
    key, eq, value = head.partition("=")
    if eq:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def _selector(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise click.BadParameter(f"{text!r}: expected KEY=VALUE")
    return key, value


@click.command("verify")
@click.option("--node", "nodes", multiple=True, metavar="NAME",
              help="Verify this node (repeatable); default: all GPU nodes.")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="CUDA-style probe image (a mirror works).")
@click.option("--namespace", default="gpuguard-verify", show_default=True, help="Namespace created and deleted.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the pods to complete.")
@click.option("--toleration", "tolerations", multiple=True, metavar="KEY[=VALUE]:EFFECT", help="Add a toleration.")
@click.option("--node-selector", "selectors", multiple=True, metavar="K=V", help="Add a node selector entry.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False),
              help="Kubeconfig file (default: KUBECONFIG, ~/.kube/config).")
@click.option("--context", help="Kubeconfig context.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(  # noqa: PLR0917 - one option each
    nodes: tuple[str, ...], image: str, namespace: str, timeout: float, tolerations: tuple[str, ...],
    selectors: tuple[str, ...], kubeconfig: str | None, context: str | None, fmt: str,
) -> None:
    """Prove isolation: per node, a probe with no GPU request (NVIDIA_VISIBLE_DEVICES=all) must see no GPU
    and a control requesting one GPU must see exactly one."""
    from gpuguard.sources.cluster.probes import gpu_nodes, run_probes  # noqa: PLC0415 - lazy
    from gpuguard.sources.cluster.reader import ConnectOptions, connect  # noqa: PLC0415

    try:
        options = ProbeOptions(image=image, namespace=namespace,
                               tolerations=[_toleration(t) for t in tolerations],
                               node_selector=dict(_selector(s) for s in selectors))
    except click.BadParameter as exc:
        click.echo(f"gpuguard verify: {exc.message}", err=True)
        sys.exit(EXIT_INPUT)
    try:
        api, _ = connect(ConnectOptions(kubeconfig=kubeconfig, context=context))
        targets = list(nodes) or gpu_nodes(api)
        if not targets:
            click.echo("gpuguard verify: no GPU nodes found", err=True)
            sys.exit(EXIT_INPUT)
        verdicts = run_probes(api, targets, options, timeout=timeout)
    except InputError as exc:
        click.echo(f"gpuguard verify: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    except KeyboardInterrupt:
        click.echo("gpuguard verify: interrupted (namespace deleted)", err=True)
        sys.exit(EXIT_INPUT)
    except Exception as exc:
        click.echo(f"gpuguard verify: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                   err=True)
        sys.exit(EXIT_INPUT)
    click.echo(_render(verdicts, fmt))
    if any(v.error for v in verdicts):
        sys.exit(EXIT_INPUT if all(v.error for v in verdicts) else EXIT_FINDINGS)
    sys.exit(0 if all(v.passed for v in verdicts) else EXIT_FINDINGS)


def _render(verdicts: list[NodeVerdict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"nodes": [v.to_dict() for v in verdicts]}, indent=2)
    out: list[str] = []
    for v in verdicts:
        out.append(f"{v.node}: {'PASS' if v.passed else 'FAIL'}")
        out.extend(f"  - {r}" for r in v.reasons)
        for role, ev in (("probe", v.probe), ("control", v.control)):
            if ev is not None:
                out.extend(f"  {role}: {line}" for line in ev.lines())
    return "\n".join(out)
