"""Engine decisions for the audit: image env as assumed, and a memo by container shape.

Decisions are memoised by container shape: the engine reads the pod's
namespace, runtime class, annotations, volumes and containers, never the
pod's name unless env refers to it (``fieldRef``, ``envFrom``) or a mount
uses ``subPath``; those pods are always decided afresh.  Of the env only the
names the toolkit reads matter, and of a non-GPU image nothing (its env is
assumed empty), so streams of ordinary workloads hit the memo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

from gpuguard.engine.kubelet.env import Objects
from gpuguard.engine.pod import decide_pod
from gpuguard.model.decision import ContainerDecision
from gpuguard.model.node import NodeProfile
from gpuguard.model.pod import Pod
from gpuguard.rules.images import AssumedImageEnv as ImageEnv

MEMO_LIMIT = 1024  # shapes kept; the memo is cleared when full, so memory stays flat


_READ_PREFIXES = ("NVIDIA_", "CUDA_")  # the env the toolkit and the device plugin read


def _shape(pod: Pod, images: ImageEnv, swarm: frozenset[str]) -> Hashable | None:
    """What the engine reads of a pod, less its name; None when the name (or env sources) matter.

    Env entries count only when the toolkit reads them (``NVIDIA_*``,
    ``CUDA_*``, the swarm resource names), unless a value uses ``$(VAR)``;
    an image counts only when its env is unknown (a GPU image family not
    inspected) or was inspected and is not empty; other images set nothing.
    """
    shapes = []
    for c in pod.containers:
        if c.env_from or any(m.sub_path for m in c.volume_mounts):
            return None
        env = c.env
        if env:
            if any(e.value_from is not None for e in env):
                return None
            if not any("$(" in e.value for e in env):
                env = tuple(e for e in env if e.name.startswith(_READ_PREFIXES) or e.name in swarm)
        image = c.image if images.get(c.image) != () else ""  # an env that is unknown, or inspected and not empty
        shapes.append((c.name, image, c.kind, env, tuple(c.resources.items()), c.security, c.volume_mounts))
    annotations = tuple(pod.annotations.items()) if pod.annotations else ()
    return pod.namespace, pod.runtime_class_name, annotations, pod.volumes, tuple(shapes)


class Decisions:
    """``decide_pod`` on one node, memoised by shape."""

    def __init__(self, node: NodeProfile, images: ImageEnv) -> None:
        self.node = node
        self.images = images
        self.swarm = frozenset(s.strip() for s in node.toolkit.config.swarm_resource.split(",") if s.strip())
        self.memo: dict[Hashable, tuple[ContainerDecision, ...]] = {}

    def decide(self, pod: Pod, objects: Objects) -> tuple[ContainerDecision, ...]:
        key = _shape(pod, self.images, self.swarm)
        if key is None:
            return decide_pod(pod, self.node, image_env=self.images, objects=objects)
        cached = self.memo.get(key)
        if cached is None:
            if len(self.memo) >= MEMO_LIMIT:
                self.memo.clear()
            cached = self.memo[key] = decide_pod(pod, self.node, image_env=self.images, objects=objects)
            return cached
        if cached and cached[0].pod == pod.name:
            return cached
        return tuple(dataclasses.replace(d, pod=pod.name) for d in cached)
