"""What ``nvidia-container-runtime`` does in its non-legacy modes (csv, cdi, jit-cdi).

Each release family reads the request differently: v1.11–1.12 join env and
annotations, v1.13–1.17 prefer annotations, then ``cdi/`` mounts, then the
gated env var, and v1.18+ use the shared ``VisibleDevices()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuguard.engine.toolkit import envvars
from gpuguard.engine.toolkit.envvars import NVD
from gpuguard.engine.toolkit.imex import imex_channels
from gpuguard.engine.toolkit.modes import JIT_KIND, JIT_PREFIX, cdi_names, is_qualified, jit_automatic
from gpuguard.engine.toolkit.request import (
    Ctx,
    cdi_mount_name,
    env_read,
    gate,
    image_mounts,
    swarm_names,
    visible_devices,
)

_MIX = "requesting a CDI device with vendor 'runtime.nvidia.com' is not supported when requesting other CDI devices"
_GATED = (
    ("NVIDIA_GDS", "gds"),
    ("NVIDIA_MOFED", "mofed"),
    ("NVIDIA_GDRCOPY", "gdrcopy"),
    ("NVIDIA_NVSWITCH", "nvswitch"),
)


@dataclass(slots=True)
class Outcome:
    """The runtime's answer for one container in a non-legacy mode."""

    devices: tuple[str, ...] | None = None
    cdi_devices: tuple[str, ...] | None = None
    imex: tuple[str, ...] | None = None
    error: str | None = None


def runtime_swarm(ctx: Ctx) -> list[str]:
    """swarm-resource as the runtime sees it: ignored before v1.19.0."""
    if ctx.b.runtime_swarm:
        return swarm_names(ctx.b, ctx.cfg)  # v1.19.0:internal/runtime/runtime_factory.go
    return []  # v1.18.x: the runtime builds its image without WithPreferredVisibleDevicesEnvVars


def nvd_only(ctx: Ctx, mark: bool = True) -> tuple[str, ...] | None:
    """``DevicesFromEnvvars("NVIDIA_VISIBLE_DEVICES")`` of v1.11–1.17 (no swarm, no gate)."""
    env, b = ctx.env, ctx.b
    value = env.get(NVD)
    legacy = ctx.legacy
    if mark:
        ctx.mark_unknown((NVD,))
        if value is None:
            ctx.mark_unknown(("CUDA_VERSION", "NVIDIA_REQUIRE_CUDA"))
    if b.token_parsing:
        return envvars.tokens((value,) if value is not None else (), value is not None, legacy)
    return envvars.whole_string(value, legacy)


def csv_mode(ctx: Ctx, read: tuple[str, ...] | bool | None = False) -> Outcome:
    """csv (Tegra): every request means the platform's integrated GPU."""
    b = ctx.b
    if b.unified_visible_devices:
        devices = visible_devices(ctx, (), runtime_swarm(ctx)) if isinstance(read, bool) else read
        if devices:
            reqs = list(dict.fromkeys(f"mode=csv,id={d}" for d in devices))  # v1.18.0:internal/modifier/csv.go
            ctx.step("cdi.names", "csv mode", f"jit requests {reqs}")
        return Outcome(devices=devices)
    if not b.cdi_mode:
        # v1.10.0:internal/modifier/csv.go: NVIDIA_VISIBLE_DEVICES unset, "" or "void" → no change.
        value = ctx.env.get(NVD)
        ctx.mark_unknown((NVD,))
        devices = None if value is None or value in ("", "void") else tuple(value.split(","))
    else:
        devices = nvd_only(ctx)
    ctx.step("toolkit.source.env", env_read(ctx.env, NVD), f"csv mode request {devices} (no privilege gate)")
    if devices:
        ctx.step("hook.requirements", "csv mode", "requirements are checked by the runtime; not modelled here")
    return Outcome(devices=devices)


def _unresolvable(names: tuple[str, ...]) -> str | None:
    bad = [n for n in names if n.endswith("=")]
    if bad:
        return f"failed to inject CDI devices: unresolvable CDI devices {', '.join(bad)}"
    return None


def cdi_mode_v111(ctx: Ctx) -> Outcome:
    """v1.11.0–v1.12.x: env ∪ ``cdi.k8s.io/`` annotations, no gate, kind nvidia.com/gpu."""
    b, spec = ctx.b, ctx.spec
    env_list = nvd_only(ctx) or ()
    if env_list:
        ctx.step("toolkit.source.env", env_read(ctx.env, NVD), f"requests {list(env_list)} (no privilege gate)")
    ann: list[str] = []
    for key in sorted(k for k in spec.annotations if k.startswith("cdi.k8s.io/")):
        for d in spec.annotations[key].split(","):
            if not is_qualified(d, b.cdi_name_rules):
                # v1.11.0:vendor/.../cdi/annotations.go ParseAnnotations
                msg = f'failed to parse container annotations: invalid CDI device name "{d}"'
                ctx.step("toolkit.source.annotations", f'annotation {key}="{spec.annotations[key]}"', msg)
                return Outcome(devices=tuple(env_list) + tuple(ann), error=msg)
            ann.append(d)
    if ann:
        ctx.step("toolkit.source.annotations", "annotations cdi.k8s.io/*", f"requests {ann} (joined with the env)")
    devices = tuple(env_list) + tuple(ann)
    if not devices:
        return Outcome()
    names = tuple(dict.fromkeys(d if is_qualified(d, b.cdi_name_rules) else f"nvidia.com/gpu={d}" for d in devices))
    says = f"CDI devices {list(names)} (de-duplicated through a Go map: order not deterministic)"
    if "nvidia.com/gpu=all" in names:
        # v1.11.0:internal/modifier/cdi.go Modify: replaced by every nvidia.com/gpu device, others dropped.
        names = ("nvidia.com/gpu=all",)
        says = "nvidia.com/gpu=all expands to every nvidia.com/gpu device in the registry; others dropped"
    ctx.step("cdi.names", "kind nvidia.com/gpu (fixed before v1.13)", says)
    return Outcome(devices=devices, cdi_devices=names, error=_unresolvable(names))


def cdi_mode_v113(ctx: Ctx) -> Outcome:
    """v1.13.0–v1.17.x: annotations (validated) → cdi/ mounts (v1.15+) → gated env."""
    b, cfg, spec = ctx.b, ctx.cfg, ctx.spec
    prefixes = cfg.cdi_annotation_prefixes
    ann: list[str] = []
    for key in sorted(spec.annotations):
        if not any(key.startswith(p) for p in prefixes):
            continue
        for d in spec.annotations[key].split(","):
            if not is_qualified(d, b.cdi_name_rules):
                # v1.13.0:internal/modifier/cdi.go getAnnotationDevices
                msg = f'failed to parse container annotations: invalid device name "{d}" in annotation "{key}"'
                ctx.step("toolkit.source.annotations", f'annotation {key}="{spec.annotations[key]}"', msg)
                return Outcome(error=msg)
            if d not in ann:
                ann.append(d)
    if ann:
        ctx.step("toolkit.source.annotations", f"annotations with prefixes {list(prefixes)}", f"requests {ann}")
        return _finish_v113(ctx, tuple(ann), tuple(ann))
    if b.cdi_mount_requests and cfg.accept_volume_mounts:
        # v1.15.0:internal/config/image/cuda_image.go CDIDevicesFromMounts: only cdi/ mounts count here.
        found = [n for n in (cdi_mount_name(b, r) for r in image_mounts(spec.mounts) if r.startswith("cdi/")) if n]
        if found:
            conf = ctx.conf("accept-nvidia-visible-devices-as-volume-mounts", True)
            ctx.step("toolkit.source.mounts", conf, f"CDI mount requests {found}")
            return _finish_v113(ctx, tuple(found), tuple(found))
    result = nvd_only(ctx, mark=ctx.privileged or cfg.accept_envvar_unprivileged)
    if result is None:
        return Outcome()
    read = env_read(ctx.env, NVD)
    ctx.step("toolkit.source.env", read, f"requests {list(result)}")
    # v1.13.0:internal/modifier/cdi.go: `seen` is never set, so env names are not de-duplicated.
    names = cdi_names(b, result, cfg.cdi_default_kind, dedup=False)
    devices, _ = gate(ctx, names, read)
    if devices is None:
        return Outcome()
    return _finish_v113(ctx, result, names)


def _finish_v113(ctx: Ctx, devices: tuple[str, ...], names: tuple[str, ...]) -> Outcome:
    b = ctx.b
    ctx.step(
        "cdi.names",
        f'config nvidia-container-runtime.modes.cdi.default-kind="{ctx.cfg.cdi_default_kind}"',
        f"CDI devices {list(names)}",
    )
    if b.jit_names:
        auto = [n for n in names if jit_automatic(b, n)]
        if auto and len(auto) != len(names):
            ctx.step("cdi.names", "runtime.nvidia.com/gpu mixed with other CDI names", _MIX)
            return Outcome(devices=devices, cdi_devices=names, error=_MIX)
    return Outcome(devices=devices, cdi_devices=names, error=_unresolvable(names))


def cdi_mode_v118(ctx: Ctx, jit: bool, read: tuple[str, ...] | bool | None = False) -> Outcome:
    """v1.18.0+: ``VisibleDevices()`` named with default-kind (cdi) or runtime.nvidia.com/gpu (jit-cdi).

    ``read`` passes devices already read during mode resolution (False: not read yet).
    """
    b, cfg = ctx.b, ctx.cfg
    if isinstance(read, bool):
        prefixes = () if jit else cfg.cdi_annotation_prefixes  # annotations only in cdi mode
        devices = visible_devices(ctx, prefixes, runtime_swarm(ctx))
    else:
        devices = read
    if not devices:
        return Outcome()
    kind = JIT_KIND if jit else cfg.cdi_default_kind
    names = cdi_names(b, devices, kind, dedup=True)
    kind_read = (
        "jit-cdi kind runtime.nvidia.com/gpu"
        if jit
        else ctx.conf("nvidia-container-runtime.modes.cdi.default-kind", kind)
    )
    auto = [n for n in names if n.startswith(JIT_PREFIX)]
    if auto and len(auto) != len(names):
        ctx.step("cdi.names", kind_read, f"CDI devices {list(names)}: {_MIX}")
        return Outcome(devices=devices, cdi_devices=names, error=_MIX)
    if not auto:
        ctx.step("cdi.names", kind_read, f"CDI devices {list(names)} (from CDI specs on disk)")
        return Outcome(devices=devices, cdi_devices=names, error=_unresolvable(names))
    return _jit(ctx, devices, names, kind_read)


def _jit(ctx: Ctx, devices: tuple[str, ...], names: tuple[str, ...], kind_read: str) -> Outcome:
    b, env = ctx.b, ctx.env
    extra = [f"mode={m}" for var, m in _GATED if env.get(var) == "enabled"]  # v1.18.0:internal/modifier/cdi.go
    chans = imex_channels(ctx)
    if chans:
        extra += list(dict.fromkeys(f"mode=imex,id={c}" for c in chans))
    ids = [n[len(JIT_PREFIX) :] for n in names]
    effective = names
    note = ""
    if not b.none_as_none and "" in ids:
        real = [n for n, i in zip(names, ids, strict=True) if i]
        if not real:
            # v1.18.0..v1.18.1: the empty id is dropped and GetSpec() with no ids generates "all"
            # (v1.18.0:pkg/nvcdi/wrapper.go); fixed in v1.18.2 (2a9f0336).
            effective = (JIT_PREFIX + "all",)
            note = '; the empty id is dropped and the spec is generated for "all": every GPU (bug until v1.18.2)'
        else:
            effective = tuple(real)
            note = "; the empty id is dropped"
    elif b.none_as_none:
        for i in ids:
            if i == "all":
                break
            if i == "none":
                # v1.18.2:pkg/nvcdi/lib-nvml.go: the first "none" returns no device specs at all.
                effective = (JIT_PREFIX + "none",)
                note = "; id none: no device nodes, driver libraries only"
                break
    ctx.step("cdi.names", kind_read, f"jit-cdi requests {list(names) + extra}{note}")
    return Outcome(devices=devices, cdi_devices=effective, imex=chans)
