"""Unknown inputs (the third state) and the explanation trail."""

from __future__ import annotations

import pytest

from gpuguard.model.decision import Exposure

from ._util import devmount, rules, run

AE = "accept-nvidia-visible-devices-envvar-when-unprivileged"
AM = "accept-nvidia-visible-devices-as-volume-mounts"
SECRET = {"NVIDIA_VISIBLE_DEVICES": "secretKeyRef gpu/ids"}


@pytest.mark.parametrize(
    ("name", "version", "kwargs", "unknown_has"),
    [
        ("secret-nvd-privileged", "1.17.8", {"unknown_env": SECRET, "privileged": True}, "NVIDIA_VISIBLE_DEVICES"),
        ("secret-nvd-accepted", "1.17.8", {"unknown_env": SECRET}, "NVIDIA_VISIBLE_DEVICES"),
        ("secret-nvd-gated-off", "1.17.8", {"unknown_env": SECRET, "doc": {AE: False}}, None),
        (
            "image-env-nvd-set",
            "1.14.0",
            {"env": ("NVIDIA_VISIBLE_DEVICES=GPU0",), "image_env_unknown": "not pulled"},
            None,
        ),
        ("image-env-nvd-absent", "1.14.0", {"image_env_unknown": "not pulled"}, "NVIDIA_VISIBLE_DEVICES"),
        (
            "image-env-mounts-won",
            "1.14.0",
            {"mounts": (devmount("GPU0"),), "doc": {AM: True}, "image_env_unknown": "not pulled"},
            None,
        ),
        (
            "image-env-swarm",
            "1.14.0",
            {
                "env": ("NVIDIA_VISIBLE_DEVICES=GPU0",),
                "doc": {"swarm-resource": "DOCKER_RESOURCE_GPU"},
                "image_env_unknown": "x",
            },
            "DOCKER_RESOURCE_GPU",
        ),
        (
            "secret-nvd-could-switch-to-cdi",
            "1.17.8",
            {"unknown_env": SECRET, "doc": {AE: False}, "annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=0"}},
            "NVIDIA_VISIBLE_DEVICES",
        ),
        (
            "failure-only",
            "1.14.0",
            {"env": ("NVIDIA_VISIBLE_DEVICES=GPU0",), "unknown_env": {"NVIDIA_DRIVER_CAPABILITIES": "configMap"}},
            None,
        ),
        ("secret-nvd-jit", "1.20.0", {"unknown_env": SECRET}, "NVIDIA_VISIBLE_DEVICES"),
    ],
)
def test_unknown(name: str, version: str, kwargs: dict[str, object], unknown_has: str | None) -> None:
    d = run(version, **kwargs)  # type: ignore[arg-type]
    if unknown_has is None:
        assert d.unknown is None, d.unknown
    else:
        assert d.unknown is not None
        assert any(unknown_has in u for u in d.unknown)
        assert d.exposure is Exposure.UNKNOWN


def test_an_unknown_imex_variable_leaves_the_gpus_decided() -> None:
    """The image may set NVIDIA_IMEX_CHANNELS: the channels are unknown, the GPU request is not."""
    d = run("1.17.8", ("NVIDIA_VISIBLE_DEVICES=GPU0",), image_env_unknown="x")
    assert d.unknown is None
    assert d.imex_unknown is not None
    assert any("NVIDIA_IMEX_CHANNELS" in u for u in d.imex_unknown)
    assert d.exposure is Exposure.DEVICES


def test_failure_only_unknown_is_noted_in_the_trail() -> None:
    d = run("1.14.0", ("NVIDIA_VISIBLE_DEVICES=GPU0",), unknown_env={"NVIDIA_DRIVER_CAPABILITIES": "configMap"})
    step = next(s for s in d.trail if s.rule == "hook.unknown")
    assert step.read == "NVIDIA_DRIVER_CAPABILITIES"


def test_seed_trail_legacy() -> None:
    d = run("1.17.8", ("NVIDIA_VISIBLE_DEVICES=all",))
    assert rules(d) == [
        "toolkit.privileged",
        "runtime.mode",
        "runtime.mode",
        "toolkit.source.env",
        "toolkit.gate",
        "hook.capabilities",
        "hook.cli",
    ]
    env = d.trail[3]
    assert env.read == 'process.env NVIDIA_VISIBLE_DEVICES="all"'
    assert env.says == "all GPUs"
    assert d.trail[4].read == f"config {AE}=true (default)"
    assert d.trail[-1].says == "--device=all"


def test_seed_trail_jit_cdi() -> None:
    d = run("1.20.0", ("NVIDIA_VISIBLE_DEVICES=all",))
    # v1.18+: the runtime reads the request first (auto→cdi looks at it), then settles on jit-cdi.
    assert rules(d) == ["toolkit.privileged", "toolkit.source.env", "toolkit.gate", "runtime.mode", "cdi.names"]
    assert d.trail[3].says == "auto: jit-cdi"
    assert d.trail[4].says == "jit-cdi requests ['runtime.nvidia.com/gpu=all']"


def test_legacy_image_step() -> None:
    d = run("1.17.8", ("CUDA_VERSION=11.0",))
    assert "toolkit.legacy-image" in rules(d)
    assert d.trail[-1].says == "--device=all"


def test_case_insensitive_all_is_flagged_for_the_cli() -> None:
    d = run("1.17.8", ("NVIDIA_VISIBLE_DEVICES=ALL",))
    assert "case-insensitively" in d.trail[-1].says


def test_requirements_not_checked_step_when_driver_unknown() -> None:
    d = run("1.17.8", ("NVIDIA_VISIBLE_DEVICES=GPU0", "NVIDIA_REQUIRE_CUDA=cuda>=12.5"))
    step = next(s for s in d.trail if s.rule == "hook.requirements")
    assert step.says.startswith("not checked")


def test_gated_ignored_key_step_only_when_it_matters() -> None:
    doc = {"nvidia-ctk": {AE: False}}
    quiet = run("1.17.8", ("NVIDIA_VISIBLE_DEVICES=all",), privileged=True, doc=doc)
    assert "config.ignored-key" not in rules(quiet)
    loud = run("1.17.8", ("NVIDIA_VISIBLE_DEVICES=all",), doc=doc)
    assert rules(loud)[0] == "config.ignored-key"


def test_component_check() -> None:
    with pytest.raises(ValueError, match=r"toolkit\.component"):
        run("1.17.8", (), component="shim")
