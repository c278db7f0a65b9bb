"""Decisions memoised by container shape equal fresh decisions (names aside)."""

from __future__ import annotations

import dataclasses
import itertools

from gpuguard.audit.decisions import Decisions, _shape
from gpuguard.audit.profile import NODE_GPUS
from gpuguard.engine.operator.profile import most_exposed_profile
from gpuguard.engine.pod import decide_pod
from gpuguard.model.pod import Container, EnvVar, Pod, SecurityContext, ValueRef
from gpuguard.rules.images import AssumedImageEnv as ImageEnv
from gpuguard.rules.settings import AuditSettings

IMAGES = ("busybox", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04", "ghcr.io/acme/api:1")
ENVS = (
    (),
    (EnvVar("LOG_LEVEL", "info"),),
    (EnvVar("NVIDIA_VISIBLE_DEVICES", "all"), EnvVar("OTHER", "x")),
    (EnvVar("GPUS", "all"), EnvVar("NVIDIA_VISIBLE_DEVICES", "$(GPUS)")),
    (EnvVar("NVIDIA_VISIBLE_DEVICES", "void"),),
    (EnvVar("POD", value_from=ValueRef("fieldRef", "metadata.name")),),
)
RESOURCES = ({}, {"nvidia.com/gpu": 1}, {"nvidia.com/gpu": 2})
SECURITY = (SecurityContext(), SecurityContext(privileged=True))


def test_memoised_decisions_equal_fresh_ones() -> None:
    node = dataclasses.replace(most_exposed_profile(), gpus=NODE_GPUS)
    settings = AuditSettings()
    memo = Decisions(node, ImageEnv(settings))
    fresh_images = ImageEnv(settings)
    for n, (image, env, res, sec) in enumerate(itertools.product(IMAGES, ENVS, RESOURCES, SECURITY)):
        for name in ("first", "second"):  # the second is served from the memo when it can be
            pod = Pod(name=f"{name}-{n}", namespace="ns", containers=(
                Container("main", image, env=env, resources=res, security=sec),))
            assert memo.decide(pod, {}) == decide_pod(pod, node, image_env=fresh_images, objects={})
    assert memo.memo


def test_shape_ignores_names_and_env_the_engine_does_not_read() -> None:
    images = ImageEnv(AuditSettings())
    a = Pod("a", containers=(Container("main", "busybox", env=(EnvVar("A", "1"),)),))
    b = Pod("b", containers=(Container("main", "busybox", env=(EnvVar("B", "2"),)),))
    c = Pod("c", containers=(Container("main", "busybox", env=(EnvVar("NVIDIA_VISIBLE_DEVICES", "all"),)),))
    assert _shape(a, images, frozenset()) == _shape(b, images, frozenset()) != _shape(c, images, frozenset())
    d = Pod("d", containers=(Container("main", "busybox", env=(EnvVar("X", value_from=ValueRef("fieldRef", "x")),)),))
    assert _shape(d, images, frozenset()) is None
