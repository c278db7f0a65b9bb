"""Plain-text rendering of decisions, for a person at a terminal."""

from __future__ import annotations

from collections.abc import Iterable

from gpuguard.model.decision import ContainerDecision, Decision, Step


def _devices_text(decision: Decision) -> str:
    shown = decision.devices_json
    if shown is None:
        return "none requested (not a GPU container)"
    if shown == "all":
        return "all GPUs"
    if shown == "none":
        return "none (driver libraries only, no device nodes)"
    return ", ".join(repr(d) for d in shown)


def _trail_lines(trail: Iterable[Step], indent: str = "  ") -> list[str]:
    steps = list(trail)
    width = max((len(s.rule) for s in steps), default=0)
    return [f"{indent}{s.rule:<{width}}  {s.read}  =>  {s.says}" for s in steps]


def _story(decision: ContainerDecision) -> list[Step]:
    """The pod's steps with the toolkit's own steps told where the toolkit acts."""
    steps = list(decision.trail)
    if decision.toolkit is None:
        return steps
    at = next((i for i, s in enumerate(steps) if s.rule == "k8s.toolkit"), len(steps) - 1)
    return [*steps[:at], *decision.toolkit.trail, *steps[at:]]


def decision_text(decision: Decision) -> str:
    """A short verdict, then the explanation trail."""
    lines = [
        f"exposure:      {decision.exposure.value}",
        f"devices:       {_devices_text(decision)}",
        f"mode:          {decision.mode}",
    ]
    if decision.cdi_devices is not None:
        lines.append(f"cdi devices:   {', '.join(decision.cdi_devices) or '-'}")
    if decision.imex_channels is not None:
        lines.append(f"imex channels: {', '.join(decision.imex_channels) or '-'}")
    if decision.error is not None:
        lines.append(f"fails:         {decision.error}")
    for reason in decision.unknown or ():
        lines.append(f"unknown:       {reason}")
    for reason in decision.imex_unknown or ():
        lines.append(f"unknown (IMEX channels only): {reason}")
    lines.append("why:")
    lines.extend(_trail_lines(decision.trail))
    return "\n".join(lines) + "\n"


def container_decisions_text(decisions: Iterable[ContainerDecision]) -> str:
    """One block per container: what it asked for, what it gets, and why."""
    blocks = []
    for d in decisions:
        sees = "?" if d.sees is None else ("all GPUs" if d.sees == ("all",) else ", ".join(d.sees) or "no GPU")
        head = f"{d.namespace}/{d.pod} {d.kind} {d.container!r}"
        lines = [
            head,
            f"  requested: {d.requested} GPU(s), allocated: {', '.join(d.allocated) or '-'}",
            f"  runtime handler: {d.handler or '-'}",
            f"  sees: {sees}   exposure: {d.exposure.value}" + ("   OVERREACH" if d.overreach else ""),
        ]
        if d.error:
            lines.append(f"  fails: {d.error}")
        for reason in d.unknown or ():
            lines.append(f"  unknown: {reason}")
        lines.append("  why:")
        lines.extend(_trail_lines(_story(d), "    "))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
