"""IMEX channel requests (``NVIDIA_IMEX_CHANNELS`` and ``imex/<id>`` mounts).

Only asked once the container is a GPU container (the hook reads them inside
``getNvidiaConfig``; jit-cdi only adds ``mode=imex,id=<id>`` next to
``runtime.nvidia.com/gpu`` devices).
"""

from __future__ import annotations

from gpuguard.engine.toolkit import envvars
from gpuguard.engine.toolkit.envvars import IMEX
from gpuguard.engine.toolkit.request import Ctx, env_read, image_mounts


def imex_channels(ctx: Ctx) -> tuple[str, ...] | None:
    """The channels this release requests for the container, or None."""
    b, cfg, env = ctx.b, ctx.cfg, ctx.env
    if not b.imex:
        return None
    read = env_read(env, IMEX)
    if b.imex == "verbatim":
        # v1.15.0:cmd/nvidia-container-runtime-hook/container_config.go getImexChannels: the raw value,
        # no privilege gate, passed as --imex-channel=<value> when non-empty (v1.15.0-rc.4..v1.16.x).
        value = env.get(IMEX)
        ctx.mark_unknown((IMEX,), imex=True)
        if not value:
            return None
        ctx.step("toolkit.imex", read, f"--imex-channel={value} (no privilege gate before v1.17.0)")
        return (value,)
    if b.imex_ignore_key and cfg.ignore_imex_channel_requests:
        # v1.17.5:internal/config/features.go ignore-imex-channel-requests
        ctx.step("toolkit.imex", ctx.conf("features.ignore-imex-channel-requests", True), "IMEX requests ignored")
        return None
    if cfg.accept_volume_mounts:
        # v1.17.0:internal/config/image/cuda_image.go ImexChannelsFromMounts
        chans = [r[5:] for r in image_mounts(ctx.spec.mounts) if r.startswith("imex/")]
        if chans:
            ctx.step("toolkit.imex", "mounts /var/run/nvidia-container-devices/imex/*", f"channels {chans}")
            return tuple(chans)
    legacy = ctx.legacy
    value = env.get(IMEX)
    result = envvars.tokens((value,) if value is not None else (), value is not None, legacy)
    if result == ("all",) and b.imex_drop_bare_all:
        # v1.17.2:internal/config/image/cuda_image.go ImexChannelsFromEnvVar drops exactly ["all"]
        # (this also neutralises the legacy-image implicit "all").
        ctx.step("toolkit.imex", read, 'a bare "all" is dropped (v1.17.2+)')
        result = None
    gate_open = ctx.privileged or cfg.accept_envvar_unprivileged
    if gate_open:
        ctx.mark_unknown((IMEX,), imex=True)
        if value is None and not b.imex_drop_bare_all:
            ctx.mark_unknown(("CUDA_VERSION", "NVIDIA_REQUIRE_CUDA"), imex=True)  # the legacy-image "all" counts
    if result is None:
        return None
    if not gate_open:
        ctx.step("toolkit.imex", read, "unprivileged: IMEX request ignored")
        return None
    ctx.step("toolkit.imex", read, f"channels {list(result)}")
    return result
