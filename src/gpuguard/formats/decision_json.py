"""The ``gpuguard simulate`` JSON contract.

``{"devices": null | "all" | "none" | [ids], "mode": ..., "cdi_devices": ...,
"error": ..., "imex_channels": ..., "trail": [...]}`` plus ``unknown`` and
``exposure``, which only add to the contract. Keys keep this order.
"""

from __future__ import annotations

from typing import Any

import orjson

from gpuguard.model.decision import ContainerDecision, Decision


def decision_dict(decision: Decision) -> dict[str, Any]:
    """One toolkit decision as the stable JSON object."""
    return {
        "devices": decision.devices_json,
        "mode": decision.mode,
        "cdi_devices": None if decision.cdi_devices is None else list(decision.cdi_devices),
        "error": decision.error,
        "imex_channels": None if decision.imex_channels is None else list(decision.imex_channels),
        "unknown": _unknown(decision),
        "exposure": decision.exposure.value,
        "trail": [step.as_dict() for step in decision.trail],
    }


def _unknown(decision: Decision) -> list[str] | None:
    """Every unknown input: those that could change the GPUs, then those that could change only IMEX."""
    reasons = [*(decision.unknown or ()), *(decision.imex_unknown or ())]
    return reasons or None


def container_decision_dict(decision: ContainerDecision) -> dict[str, Any]:
    """One container of a pod on a node, end to end."""
    return {
        "pod": decision.pod,
        "namespace": decision.namespace,
        "container": decision.container,
        "kind": decision.kind,
        "requested": decision.requested,
        "allocated": list(decision.allocated),
        "handler": decision.handler,
        "sees": _sees(decision.sees),
        "exposure": decision.exposure.value,
        "overreach": decision.overreach,
        "host_devices": decision.host_devices,
        "injected": list(decision.injected),
        "error": decision.error,
        "unknown": None if not decision.unknown else list(decision.unknown),
        "toolkit": None if decision.toolkit is None else decision_dict(decision.toolkit),
        "trail": [step.as_dict() for step in decision.trail],
    }


def _sees(sees: tuple[str, ...] | None) -> str | list[str] | None:
    if sees is None:
        return None
    if sees == ("all",):
        return "all"
    return list(sees)


def dumps(obj: object, *, pretty: bool = False) -> bytes:
    """Serialise with orjson; pretty output for people, compact lines for batches."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 if pretty else 0)
