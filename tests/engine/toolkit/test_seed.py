"""The seed scenario: an unprivileged pod sets NVIDIA_VISIBLE_DEVICES=all.

Expected values come from toolkit_semantics.md §2, §3.4, §6.1 and §6.5.
"""

from __future__ import annotations

import pytest

from gpuguard.model.decision import Exposure

from ._util import devmount, rules, run

SHIPPED = {
    "disable-require": False,
    "supported-driver-capabilities": "compat32,compute,display,graphics,ngx,utility,video",
    "nvidia-container-cli": {"environment": [], "ldconfig": "@/sbin/ldconfig", "load-kmods": True},
    "nvidia-container-runtime": {"log-level": "info", "mode": "auto", "runtimes": ["runc", "crun"]},
    "nvidia-ctk": {"path": "nvidia-ctk"},
}
ALL = ("NVIDIA_VISIBLE_DEVICES=all",)


def with_top(**keys: object) -> dict[str, object]:
    return {**{k.replace("_", "-"): val for k, val in keys.items()}, **SHIPPED}


def appended_to_nvidia_ctk(key: str, value: object) -> dict[str, object]:
    doc = dict(SHIPPED)
    doc["nvidia-ctk"] = {"path": "nvidia-ctk", key: value}
    return doc


ACCEPT_ENV = "accept-nvidia-visible-devices-envvar-when-unprivileged"
ACCEPT_MOUNTS = "accept-nvidia-visible-devices-as-volume-mounts"


@pytest.mark.parametrize(
    ("version", "mode", "cdi"),
    [("1.17.8", "legacy", None), ("1.20.0", "jit-cdi", ("runtime.nvidia.com/gpu=all",))],
)
def test_unprivileged_all_with_shipped_defaults_gets_all(version: str, mode: str, cdi: object) -> None:
    d = run(version, ALL, doc=SHIPPED)
    assert d.devices == ("all",)
    assert d.mode == mode
    assert d.cdi_devices == cdi
    assert d.error is None
    assert d.exposure is Exposure.ALL
    assert "toolkit.gate" in rules(d)


@pytest.mark.parametrize("version", ["1.17.8", "1.20.0"])
def test_top_level_accept_false_gives_nothing(version: str) -> None:
    d = run(version, ALL, doc={ACCEPT_ENV: False, **SHIPPED})
    assert d.devices is None
    assert d.cdi_devices is None
    assert d.error is None
    assert d.exposure is Exposure.NONE
    gate = [s for s in d.trail if s.rule == "toolkit.gate"]
    assert gate and gate[0].read == f"config {ACCEPT_ENV}=false"


@pytest.mark.parametrize("version", ["1.17.8", "1.20.0"])
def test_accept_false_under_nvidia_ctk_is_ignored(version: str) -> None:
    d = run(version, ALL, doc=appended_to_nvidia_ctk(ACCEPT_ENV, False))
    assert d.devices == ("all",)
    assert d.exposure is Exposure.ALL
    ignored = [s for s in d.trail if s.rule == "config.ignored-key"]
    assert len(ignored) == 1
    assert ignored[0].read == f"config nvidia-ctk.{ACCEPT_ENV}=false (ignored)"
    assert "no GPUs" in ignored[0].says


@pytest.mark.parametrize(
    ("version", "cdi"),
    [("1.17.8", None), ("1.20.0", ("runtime.nvidia.com/gpu=GPU-1",))],
)
@pytest.mark.parametrize("accept_env", [True, False])
def test_volume_mounts_give_exactly_the_allocated_gpu(version: str, cdi: object, accept_env: bool) -> None:
    doc = {ACCEPT_ENV: accept_env, ACCEPT_MOUNTS: True, **SHIPPED}
    d = run(
        version,
        ("NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices",),
        mounts=(devmount("GPU-1"),),
        doc=doc,
    )
    assert d.devices == ("GPU-1",)
    assert d.cdi_devices == cdi
    assert d.error is None
    assert d.exposure is Exposure.DEVICES
    assert "toolkit.source.mounts" in rules(d)
    assert "toolkit.source.env" not in rules(d)


def test_volume_mounts_without_accept_flag_read_the_placeholder() -> None:
    # §6.1: without the accept flag the placeholder env var is read; privileged → bogus device.
    env = ("NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices",)
    priv = run("1.17.8", env, mounts=(devmount("GPU-1"),), privileged=True, doc={ACCEPT_ENV: False, **SHIPPED})
    assert priv.devices == ("/var/run/nvidia-container-devices",)
    unpriv = run("1.17.8", env, mounts=(devmount("GPU-1"),), doc={ACCEPT_ENV: False, **SHIPPED})
    assert unpriv.devices is None
