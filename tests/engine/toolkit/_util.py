"""Shared builders for the toolkit tests: one call per scenario row."""

from __future__ import annotations

from collections.abc import Mapping

from gpuguard.engine.toolkit.config import config_from_toml, default_config
from gpuguard.engine.toolkit.decide import decide
from gpuguard.model.container import ContainerSpec, Mount
from gpuguard.model.decision import Decision
from gpuguard.model.toolkit import Driver, Platform, Toolkit
from gpuguard.model.version import v

PRIV = frozenset({"CAP_SYS_ADMIN", "CAP_CHOWN"})
UNPRIV = frozenset({"CAP_CHOWN", "CAP_NET_BIND_SERVICE"})
ROOT = "/var/run/nvidia-container-devices"


def devmount(rest: str) -> Mount:
    """The device plugin's volume-mounts request: /dev/null at <root>/<rest>."""
    return Mount("/dev/null", f"{ROOT}/{rest}")


def toolkit(
    version: str,
    doc: Mapping[str, object] | None = None,
    *,
    platform: Platform | None = None,
    driver: Driver | None = None,
) -> Toolkit:
    ver = v(version)
    cfg = default_config(ver) if doc is None else config_from_toml(doc, ver)
    plat = platform or Platform()
    if driver is not None:
        plat = Platform(plat.nvml, plat.tegra, plat.wsl, plat.integrated_gpu, driver)
    return Toolkit(ver, cfg, plat)


def run(
    version: str,
    env: tuple[str, ...] = (),
    *,
    privileged: bool = False,
    mounts: tuple[Mount, ...] = (),
    annotations: Mapping[str, str] | None = None,
    doc: Mapping[str, object] | None = None,
    platform: Platform | None = None,
    driver: Driver | None = None,
    component: str = "runtime",
    forced: str | None = None,
    unknown_env: Mapping[str, str] | None = None,
    image_env_unknown: str | None = None,
) -> Decision:
    spec = ContainerSpec(
        env=env,
        bounding=PRIV if privileged else UNPRIV,
        mounts=mounts,
        annotations=dict(annotations or {}),
        unknown_env=dict(unknown_env or {}),
        image_env_unknown=image_env_unknown,
    )
    tk = toolkit(version, doc, platform=platform, driver=driver)
    return decide(spec, tk, component=component, forced_mode=forced)


def rules(d: Decision) -> list[str]:
    return [s.rule for s in d.trail]
