"""``export(engine, config)``: the admission rules as native policy objects, as multi-document YAML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpuguard.model.admission import AdmissionConfig
from gpuguard.policy import gatekeeper, kyverno, vap
from gpuguard.policy import map as mutating
from gpuguard.policy.common import dump

ENGINES: dict[str, Callable[[AdmissionConfig], list[dict[str, Any]]]] = {
    "kyverno": kyverno.objects,
    "gatekeeper": gatekeeper.objects,
    "vap": vap.objects,
    "map": mutating.objects,
}


def objects(engine: str, config: AdmissionConfig) -> list[dict[str, Any]]:
    """The exported objects for ``engine`` (one of ``ENGINES``)."""
    try:
        build = ENGINES[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}") from None
    return build(config)


def export(engine: str, config: AdmissionConfig | None = None) -> str:
    """The exported objects for ``engine`` as multi-document YAML."""
    return dump(objects(engine, config or AdmissionConfig()))
