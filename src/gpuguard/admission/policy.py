"""The admission policy in force: settings, node profile and exemptions, prepared once per config.

A webhook answers hundreds of reviews a second under one configuration, so
everything derived from it (the rules' settings, the allow-list built from the
exemptions, the image env assumption) is built here once and swapped whole on
a config reload.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpuguard.engine.operator.profile import most_exposed_profile
from gpuguard.engine.pod import decide_pod
from gpuguard.model.admission import ENFORCE, AdmissionConfig, Exemption
from gpuguard.model.finding import Finding
from gpuguard.model.node import Gpu, NodeProfile, RuntimeHandler
from gpuguard.model.pod import Container, Pod
from gpuguard.rules.exempt import exempt_reason, operator_component
from gpuguard.rules.images import AssumedImageEnv
from gpuguard.rules.settings import Allow, AuditSettings
from gpuguard.rules.workload import IMAGE_UNKNOWN, ImageFacts, check_pod

NODE_GPUS = tuple(Gpu(uuid=f"GPU-{i}", index=str(i)) for i in range(8))  # as the audit assumes
_IMAGE_MEMO_LIMIT = 4096


def default_node() -> NodeProfile:
    """The most exposed common node (GPU Operator defaults) with 8 GPUs: what the webhook judges on."""
    return most_exposed_profile(NODE_GPUS)


def with_handlers(node: NodeProfile, handlers: tuple[str, ...]) -> NodeProfile:
    """The node with a RuntimeClass and an NVIDIA runtime handler for each configured handler name.

    ``runtimeHandlers`` names the NVIDIA handlers of the cluster; one the node profile does not know
    yet (a custom name) is added, so the engine runs it through the NVIDIA runtime and GG105 sees it.
    """
    missing = [h for h in handlers if h not in node.runtime_classes or h not in node.runtime.handlers]
    if not missing:
        return node
    classes = {**node.runtime_classes, **{h: h for h in missing if h not in node.runtime_classes}}
    known = {**node.runtime.handlers}
    for h in missing:
        known.setdefault(h, RuntimeHandler(h, nvidia=True))
    return dataclasses.replace(node, runtime_classes=classes, runtime=dataclasses.replace(node.runtime, handlers=known))


@dataclass(frozen=True, slots=True)
class ImageLookups:
    """What image inspection found for one review, as data (the webhook does the lookups, never this layer).

    ``env`` maps each inspected image to its config env, or None when it could not be read
    (``problems`` says why: GG108 names it); ``timed_out`` are the images whose lookup ran out of
    time (``failurePolicy`` decides what that means). Images not in ``env`` keep the default
    assumption (GPU-family images unknown, others assumed not to set the variable).
    """

    env: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)  # image -> "could not be inspected: <why>"
    timed_out: frozenset[str] = frozenset()
    seconds: float = 0.0  # the lookup deadline the timed-out images ran into


class _Inspected(Mapping[str, tuple[str, ...]]):
    """Image env for the engine: what inspection found, else the default assumption."""

    def __init__(self, found: Mapping[str, tuple[str, ...] | None], fallback: Mapping[str, tuple[str, ...]]) -> None:
        self.found = found
        self.fallback = fallback

    def get(self, image: str, default: Any = None) -> Any:
        if image in self.found:
            return self.found[image]
        return self.fallback.get(image)

    def __getitem__(self, image: str) -> tuple[str, ...]:
        value = self.get(image)
        if value is None:
            raise KeyError(image)
        return value  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return (image for image, env in self.found.items() if env is not None)

    def __len__(self) -> int:
        return sum(1 for env in self.found.values() if env is not None)


def allow_list(exemptions: tuple[Exemption, ...]) -> tuple[Allow, ...]:
    """Exemptions as the rules' allow-list entries (each field an OR, the fields together an AND).

    An exemption naming ``namespaceLabels`` is left out: an AdmissionRequest does
    not carry the namespace's labels, so the webhook could only guess (fail closed;
    use the webhook configuration's ``namespaceSelector`` for those namespaces).
    """
    out: list[Allow] = []
    for e in exemptions:
        if e.namespace_labels:
            continue
        accounts: list[tuple[str | None, str | None]] = [
            (ns, name) for ns, _, name in (a.partition("/") for a in e.service_accounts)
        ] or [(None, None)]
        namespaces: list[str | None] = list(e.namespaces) or [None]
        images: list[str | None] = list(e.images) or [None]
        for account_ns, account in accounts:
            for ns in namespaces:
                if account_ns is not None and ns is not None and account_ns != ns:
                    continue
                for image in images:
                    out.append(Allow(e.reason, account_ns or ns, account, dict(e.pod_labels), image))
    return tuple(out)


class Policy:
    """One configuration, ready to judge pods."""

    def __init__(self, config: AdmissionConfig, node: NodeProfile | None = None) -> None:
        self.config = config
        self.node = with_handlers(node or default_node(), config.runtime_handlers)
        self.settings = AuditSettings(
            trusted_namespaces=config.trusted_namespaces,
            allow=allow_list(config.exemptions),
            cdi_annotation_prefixes=config.cdi_annotation_prefixes,
        )
        self.images = AssumedImageEnv(self.settings, memo_limit=_IMAGE_MEMO_LIMIT)

    def judge(self, pod: Pod, images: ImageLookups | None = None) -> list[Finding]:
        """The workload findings for ``pod`` on the node (exempt containers and components left out).

        ``images``: what image inspection found (the webhook's lookups); without it, image env is assumed.
        """
        if images is None:
            decisions = decide_pod(pod, self.node, image_env=self.images)
            findings, _exempt = check_pod(pod, decisions, self.node, self.settings)
            return findings
        decisions = decide_pod(pod, self.node, image_env=_Inspected(images.env, self.images))
        findings, _exempt = check_pod(pod, decisions, self.node, self.settings, ImageFacts(images.problems))
        return findings

    def mode_of(self, finding: Finding) -> str:
        """The finding's mode; GG108 from ConfigMap/Secret values it cannot see is denied when configured."""
        if finding.rule_id == "GG108" and self.config.deny_unknown_env_refs and _env_ref_unknown(finding):
            return ENFORCE
        return self.config.mode(finding.rule_id)

    def pod_exempt(self, pod: Pod) -> str | None:
        """Why the whole pod is left alone (a GPU Operator component), else None."""
        return operator_component(pod, self.settings)

    def container_exempt(self, pod: Pod, container: Container) -> str | None:
        return exempt_reason(pod, container, self.settings)


def _env_ref_unknown(finding: Finding) -> bool:
    d = finding.decision
    return d is not None and any(IMAGE_UNKNOWN not in why for why in d.unknown or ())


def image_unknown(finding: Finding) -> bool:
    """Whether the finding's exposure is unknown because of the container's image env."""
    d = finding.decision
    return d is not None and any(IMAGE_UNKNOWN in why for why in d.unknown or ())
