"""GG109: the image a Dockerfile builds sets (or inherits) a GPU-exposing ``NVIDIA_VISIBLE_DEVICES``.

Why a rule of its own: a pod spec can be clean while the image it runs
carries ``NVIDIA_VISIBLE_DEVICES=all`` from a CUDA base, so the place to fix
it is the Dockerfile.  The audit evaluates the final stage's env (sources)
and hands it here as a :class:`FinalImage`; this module only judges it, with
the toolkit's own reading of the value (``engine.toolkit.envvars``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpuguard.engine.toolkit.envvars import NVD, tokens
from gpuguard.model.decision import Step
from gpuguard.model.finding import Finding, Location
from gpuguard.rules.registry import rule

RULE_ID = "GG109"
_FIX = (
    "Add `ENV NVIDIA_VISIBLE_DEVICES=void` after the last FROM (line {line}); GPU pods still get the devices "
    "the device plugin allocates them. Or run the image only in pods that request GPUs (nvidia.com/gpu)."
)


@dataclass(frozen=True, slots=True)
class FinalImage:
    """What the final stage of one Dockerfile sets, as the audit evaluated it."""

    path: str
    line: int  # the last FROM, 1-based
    bases: tuple[str, ...]  # the final stage's base, then what that builds on ("stage 'gpu' (line 3)", images)
    env: Mapping[str, str | None]  # variables the image sets; None: the value is unknown
    origin: Mapping[str, str]  # variable -> "line 7" or "base image X"
    unknown: str | None = None  # why variables not in ``env`` may be set (a base not inspected); None: complete
    gpu_family: str | None = None  # the GPU image family pattern the unknown base matches, for the message
    resolved: bool = False  # base images were looked up (--resolve-images): do not suggest it


def _value(image: FinalImage, name: str) -> tuple[bool, str | None]:
    """(known, value): value None means unset."""
    if name in image.env:
        value = image.env[name]
        return value is not None, value
    return image.unknown is None, None


def _exposing(value: str) -> bool:
    devices = tokens((value,), True, False)
    return devices is not None and devices != ("",)  # void/empty: no GPU; none: libraries only


def _where(image: FinalImage, name: str) -> str:
    origin = image.origin.get(name, "")
    return f"ENV at {origin}" if origin.startswith("line ") else (origin or "its base")


def check_dockerfile(image: FinalImage) -> list[Finding]:
    """GG109 for one Dockerfile: definite when the env is known, "cannot be decided" when a GPU base was not read."""
    known, nvd = _value(image, NVD)
    steps = [Step("dockerfile.from", f"final stage (line {image.line}) builds on {' -> '.join(image.bases)}",
                  "its env: the base image's, then its own ENV")]  # fmt: skip
    if known and nvd is not None:
        if not _exposing(nvd):
            return []
        what = f"sets {NVD}={nvd} ({_where(image, NVD)})"
        steps.append(Step("dockerfile.env", f"{NVD}={nvd} from {_where(image, NVD)}", "a GPU-exposing value"))
        return [_finding(image, f"the image it builds {what}: any container that runs it without a GPU request "
                                "gets those GPUs on nodes that honour the variable", steps)]  # fmt: skip
    if known:  # unset: a legacy CUDA image (CUDA_VERSION, no NVIDIA_REQUIRE_CUDA) reads as all
        cuda_known, cuda = _value(image, "CUDA_VERSION")
        req_known, req = _value(image, "NVIDIA_REQUIRE_CUDA")
        if cuda_known and not cuda:
            return []
        if cuda_known and req_known and req:
            return []
        if cuda_known and req_known:
            steps.append(Step("dockerfile.env", f"CUDA_VERSION={cuda} from {_where(image, 'CUDA_VERSION')}; "
                              f"NVIDIA_REQUIRE_CUDA unset; {NVD} unset", "legacy CUDA image: the toolkit reads all"))
            return [_finding(image, f"the image it builds is a legacy CUDA image (CUDA_VERSION={cuda} from "
                             f"{_where(image, 'CUDA_VERSION')}, no NVIDIA_REQUIRE_CUDA) without {NVD}: the toolkit "
                             "reads that as all, so any container that runs it without a GPU request gets every GPU",
                             steps)]  # fmt: skip
    why = image.unknown or f"{NVD} depends on a value that is not known"
    family = f" and matches the GPU image family {image.gpu_family!r}, whose images usually set {NVD}=all" \
        if image.gpu_family else ""  # fmt: skip
    steps.append(Step("dockerfile.env", "unknown input", why))
    hint = "; audit with --resolve-images to read it" if image.gpu_family and not image.resolved else ""
    return [_finding(image, f"GPU exposure of the image it builds cannot be decided: {why}{family}{hint}", steps)]


def _finding(image: FinalImage, text: str, steps: list[Step]) -> Finding:
    info = rule(RULE_ID)
    return Finding(
        rule_id=RULE_ID,
        severity=info.severity,
        message=f"Dockerfile {image.path}: {text}.",
        remediation=_FIX.format(line=image.line),
        location=Location(image.path, image.line),
        trail=tuple(steps),
    )
