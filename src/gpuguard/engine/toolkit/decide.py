"""The toolkit's per-container decision: the single entry point of this package.

``decide`` follows the code path of the release: the runtime resolves a mode
(v1.10+) and either inserts the legacy hook or edits the spec itself; the hook
(alone, as with ``docker --gpus`` or cri-o hook mode) reads the request and
runs its checks. The result names the devices, the mode, why a container
would fail, and one trail step per rule that fired.
"""

from __future__ import annotations

from dataclasses import replace

from gpuguard.engine.toolkit import envvars
from gpuguard.engine.toolkit.config import FIELDS
from gpuguard.engine.toolkit.envvars import NVD
from gpuguard.engine.toolkit.hook import (
    capabilities,
    caps_check,
    collect_requirements,
    evaluate_requirements,
    failure_only_unknowns,
    mig_check,
)
from gpuguard.engine.toolkit.imex import imex_channels
from gpuguard.engine.toolkit.modes import invalid_mode_error, is_qualified, mode_known, platform_mode
from gpuguard.engine.toolkit.request import Ctx, hook_devices, image_mounts, swarm_names, visible_devices
from gpuguard.engine.toolkit.runtime import (
    cdi_mode_v111,
    cdi_mode_v113,
    cdi_mode_v118,
    csv_mode,
    runtime_swarm,
)
from gpuguard.engine.toolkit.versions import behaviour
from gpuguard.model.container import ContainerSpec
from gpuguard.model.decision import Decision, Step
from gpuguard.model.errors import InputError
from gpuguard.model.toolkit import Toolkit

_HOOK_DIRECT = (
    "invoking the NVIDIA Container Runtime Hook directly (e.g. specifying the docker --gpus flag) is not "
    "supported. Please use the NVIDIA Container Runtime{} instead"
)
_PRIV = Step("toolkit.privileged", "process.capabilities.bounding has CAP_SYS_ADMIN", "privileged")
_UNPRIV = Step("toolkit.privileged", "process.capabilities.bounding lacks CAP_SYS_ADMIN", "unprivileged")


def decide(
    spec: ContainerSpec, toolkit: Toolkit, *, component: str = "runtime", forced_mode: str | None = None
) -> Decision:
    """What the NVIDIA Container Toolkit does with one container."""
    if component not in ("runtime", "hook"):
        raise InputError("toolkit.component", f"expected 'runtime' or 'hook', got {component!r}")
    decision = _decide(spec, toolkit, component, forced_mode)
    if toolkit.config.ignored:
        decision = _with_ignored(spec, toolkit, component, forced_mode, decision)
    return decision


def _decide(spec: ContainerSpec, toolkit: Toolkit, component: str, forced_mode: str | None) -> Decision:
    b = behaviour(toolkit.version)
    env, bad = envvars.parse_env(spec.env)
    privileged = "CAP_SYS_ADMIN" in spec.bounding
    ctx = Ctx(
        spec,
        env,
        b,
        toolkit.config,
        privileged,
        [_PRIV if privileged else _UNPRIV],
        [],
        envvars.is_legacy_image(env),
    )
    if ctx.legacy:
        ctx.step(
            "toolkit.legacy-image",
            f'process.env CUDA_VERSION="{env["CUDA_VERSION"]}", NVIDIA_REQUIRE_CUDA unset or empty',
            "legacy CUDA image",
        )
    if component == "hook" or not b.runtime_modes:
        if component == "runtime":
            ctx.step("runtime.mode", f"toolkit v{b.version}", "the runtime only inserts the hook before v1.10.0")
        if bad is not None:
            return _fail_env(ctx, bad, "legacy")
        return _hook(ctx, toolkit)
    return _runtime(ctx, toolkit, forced_mode, bad)


def _fail_env(ctx: Ctx, bad: str, mode: str) -> Decision:
    msg = envvars.env_error(ctx.b, bad)
    ctx.step("toolkit.env", f'process.env entry "{bad}"', f"fails: {msg}")
    return Decision(devices=None, mode=mode, error=msg, trail=tuple(ctx.steps))


def _finish(ctx: Ctx, devices: tuple[str, ...] | None, mode: str, **kw: object) -> Decision:
    unknown = tuple(ctx.unknown) if ctx.unknown else None
    imex_unknown = tuple(ctx.imex_unknown) if ctx.imex_unknown else None
    return Decision(
        devices, mode, unknown=unknown, imex_unknown=imex_unknown, trail=tuple(ctx.steps), **kw  # type: ignore[arg-type]
    )


# --- the legacy hook ---------------------------------------------------------------------------------


def _hook(ctx: Ctx, toolkit: Toolkit) -> Decision:
    b, cfg = ctx.b, ctx.cfg
    if b.caps_era != "cli":
        _, err = capabilities(b, cfg.supported_driver_capabilities, None, False)
        if err is not None:  # getHookConfig validates the config for every container
            ctx.step(
                "hook.capabilities",
                ctx.conf("supported-driver-capabilities", cfg.supported_driver_capabilities),
                f"hook panics: {err}",
            )
            return _finish(ctx, None, "legacy", error=err)
    if b.hook_mode_check_early:
        err = _hook_mode_check(ctx, toolkit, None)
        if err is not None:
            return _finish(ctx, None, "legacy", error=err)
    if b.unified_visible_devices:
        devices = visible_devices(ctx, (), swarm_names(b, cfg))
        err = None
    else:
        devices, err = hook_devices(ctx)
    if err is not None:
        return _finish(ctx, None, "legacy", error=err)
    if devices is None:
        return _finish(ctx, None, "legacy")
    err = mig_check(ctx)
    if err is not None:
        return _finish(ctx, devices, "legacy", error=err)
    chans = imex_channels(ctx)
    err = caps_check(ctx)
    reqs: list[tuple[str, str]] = []
    if err is None:
        reqs, err = collect_requirements(ctx)
    if err is None and b.hook_mode_check_late:
        err = _hook_mode_check(ctx, toolkit, devices)  # v1.14.0-rc.1: after getContainerConfig
    if err is None and reqs:
        err = evaluate_requirements(ctx, reqs, devices, toolkit.platform.driver)
    failure_only_unknowns(ctx)
    if err is None:
        _cli_step(ctx, devices, chans)
    return _finish(ctx, devices, "legacy", error=err, imex_channels=chans)


def _hook_mode_check(ctx: Ctx, toolkit: Toolkit, devices: tuple[str, ...] | None) -> str | None:
    b, cfg = ctx.b, ctx.cfg
    if b.skip_mode_detection_key and cfg.skip_mode_detection:
        ctx.step(
            "hook.mode-check",
            ctx.conf("nvidia-container-runtime-hook.skip-mode-detection", True),
            "mode check skipped",
        )
        return None
    mode = cfg.mode
    why = ""
    if mode == "auto":
        if devices is not None and _hook_auto_cdi(ctx, devices):
            mode, why = "cdi", "the request holds only fully-qualified CDI names"
        else:
            mode, why = platform_mode(b, toolkit.platform, "legacy")
    if mode == "legacy":
        return None
    read = ctx.conf("nvidia-container-runtime.mode", cfg.mode) + (f"; {why}" if why else "")
    msg = _HOOK_DIRECT.format(" (e.g. specify the --runtime=nvidia flag)" if b.cdi_mode else "")
    ctx.step("hook.mode-check", read, f"mode resolves to {mode}: hook aborts ({msg})")
    return msg


def _hook_auto_cdi(ctx: Ctx, devices: tuple[str, ...]) -> bool:
    b = ctx.b
    if b.auto_cdi == "visible":
        return all(is_qualified(d, b.cdi_name_rules) for d in devices)
    if b.auto_cdi:
        return _auto_cdi_pre118(ctx)
    return False


def _cli_step(ctx: Ctx, devices: tuple[str, ...], chans: tuple[str, ...] | None) -> None:
    joined = ",".join(devices)
    args = f"--device={joined}" if joined else "no --device (driver libraries only)"
    if chans:
        imex = ",".join(chans)
        if imex:
            args += f" --imex-channel={imex}"
    if any(d.lower() == "all" and d != "all" for d in devices):
        args += "; nvidia-container-cli matches 'all' case-insensitively (libnvidia-container select_devices)"
    ctx.step("hook.cli", "nvidia-container-cli configure", args)


# --- the runtime -------------------------------------------------------------------------------------


def _auto_cdi_pre118(ctx: Ctx) -> bool:
    """v1.14–v1.17 ``OnlyFullyQualifiedCDIDevices``: NVIDIA_VISIBLE_DEVICES ungated (+ mounts from v1.15)."""
    if ctx.auto_cdi is None:
        ctx.auto_cdi = _only_qualified_pre118(ctx)
    return ctx.auto_cdi


def _only_qualified_pre118(ctx: Ctx) -> bool:
    b, env = ctx.b, ctx.env
    value = env.get(NVD)
    legacy = ctx.legacy
    listed = envvars.tokens((value,) if value is not None else (), value is not None, legacy) or ()
    has = False
    for d in listed:
        if not is_qualified(d, b.cdi_name_rules):
            return False
        has = True
    if b.auto_cdi == "env+mounts":
        for r in image_mounts(ctx.spec.mounts):  # every /dev/null mount, accept flag or not
            if not r.startswith("cdi/"):
                return False
            has = True
    return has


def _resolve(ctx: Ctx, toolkit: Toolkit, forced_mode: str | None) -> tuple[str, tuple[str, ...] | bool | None]:
    """The runtime's mode, and the devices read while resolving it (False when none were read)."""
    b, cfg = ctx.b, ctx.cfg
    pre: tuple[str, ...] | bool | None = False
    if forced_mode is not None:
        ctx.step("runtime.mode", f"runtime handler executable forces mode {forced_mode}", f"mode {forced_mode}")
        return forced_mode, pre
    mode = cfg.mode
    read = ctx.conf("nvidia-container-runtime.mode", mode)
    if mode != "auto":
        ctx.step("runtime.mode", read, f"mode {mode}")
        return mode, pre
    if b.auto_cdi == "visible":
        # v1.18.0:internal/runtime/runtime_factory.go initRuntimeModeAndImage: the full VisibleDevices()
        # (annotations included) decides; for a non-cdi mode the image is rebuilt without annotations.
        mark = (len(ctx.steps), len(ctx.unknown))
        devices = visible_devices(ctx, cfg.cdi_annotation_prefixes, runtime_swarm(ctx))
        if devices and all(is_qualified(d, b.cdi_name_rules) for d in devices):
            ctx.step("runtime.mode", read, "auto: only fully-qualified CDI names requested: cdi")
            return "cdi", devices
        if any(st.rule == "toolkit.source.annotations" for st in ctx.steps[mark[0] :]):
            del ctx.steps[mark[0] :]
            del ctx.unknown[mark[1] :]
        else:
            pre = devices
    elif b.auto_cdi:
        if _auto_cdi_pre118(ctx):
            ctx.step(
                "runtime.mode",
                f"{read}; process.env {NVD}",
                "auto: only fully-qualified CDI names requested: cdi",
            )
            return "cdi", pre
        if ctx.unknown_why(NVD) is not None and any(
            k.startswith(p) for k in ctx.spec.annotations for p in cfg.cdi_annotation_prefixes
        ):
            ctx.mark_unknown((NVD,))  # it could switch the runtime into cdi mode, where annotations count
    mode, why = platform_mode(b, toolkit.platform, b.runtime_default_mode)
    ctx.step("runtime.mode", f"{read}; {why}", f"auto: {mode}")
    return mode, pre


def _runtime(ctx: Ctx, toolkit: Toolkit, forced_mode: str | None, bad: str | None) -> Decision:
    b = ctx.b
    if forced_mode is not None and not b.forced_mode_executables:
        msg = f"nvidia-container-runtime.{forced_mode} does not exist before toolkit v1.13.0"
        ctx.step("runtime.mode", f"handler forces mode {forced_mode}", f"fails: {msg}")
        return _finish(ctx, None, forced_mode, error=msg)
    if bad is not None and b.runtime_parses_env:
        return _fail_env(ctx, bad, forced_mode or ctx.cfg.mode)
    mode, pre = _resolve(ctx, toolkit, forced_mode)
    if not mode_known(b, mode):
        msg = invalid_mode_error(b, mode)
        ctx.step("runtime.mode", f"mode {mode}", f"container fails: {msg}")
        return _finish(ctx, None, mode, error=msg)
    if bad is not None:
        return _fail_env(ctx, bad, mode)
    if mode == "legacy":
        ctx.step("runtime.mode", "mode legacy", f"the runtime inserts {b.hook_name} as a prestart hook")
        return _hook(ctx, toolkit)
    if mode == "csv":
        out = csv_mode(ctx, pre)
    elif b.unified_visible_devices:
        out = cdi_mode_v118(ctx, mode == "jit-cdi", pre)
    elif b.cdi_annotations_first:
        out = cdi_mode_v113(ctx)
    else:
        out = cdi_mode_v111(ctx)
    cdi = out.cdi_devices if mode in ("cdi", "jit-cdi") else None
    return _finish(ctx, out.devices, mode, cdi_devices=cdi, error=out.error, imex_channels=out.imex)


# --- misplaced config keys ---------------------------------------------------------------------------


def _with_ignored(
    spec: ContainerSpec, toolkit: Toolkit, component: str, forced_mode: str | None, decision: Decision
) -> Decision:
    cfg = toolkit.config
    values = dict(cfg.ignored_values)
    steps: list[Step] = []
    for key in cfg.ignored:
        home = key.belongs_at
        if home is None or home not in FIELDS:
            continue
        if key.path not in values:
            if home.startswith("accept-"):
                steps.append(Step("config.ignored-key", f"config {key.path} (ignored)", f"{key.why}; value unknown"))
            continue
        value = values[key.path]
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        alt_cfg = replace(cfg, **{FIELDS[home][0]: value}, ignored=(), ignored_values=())  # type: ignore[arg-type]
        alt = _decide(spec, replace(toolkit, config=alt_cfg), component, forced_mode)
        if _outcome(alt) != _outcome(decision):
            says = f"{key.why}. Read at {home} it would give {_summary(alt)} instead of {_summary(decision)}"
            steps.append(Step("config.ignored-key", f"config {key.path}={shown} (ignored)", says))
    if not steps:
        return decision
    return replace(decision, trail=(*steps, *decision.trail))


def _outcome(d: Decision) -> tuple[object, ...]:
    return (d.devices, d.mode, d.cdi_devices, d.error, d.imex_channels)


def _summary(d: Decision) -> str:
    if d.error:
        return f"fails ({d.error})"
    if d.cdi_devices:
        return f"CDI devices {list(d.cdi_devices)}"
    if d.devices is None:
        return "no GPUs"
    return f"devices {list(d.devices)}"
