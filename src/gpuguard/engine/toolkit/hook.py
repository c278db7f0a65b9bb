"""The legacy prestart hook's own checks, after the device request is known.

``getNvidiaConfig`` (and ``doPrestart``) run these only for a GPU container
(devices non-nil): MIG config/monitor privilege, driver capabilities, the
requirement list, and the hook's mode check. Every failure here makes the
container fail to start.
"""

from __future__ import annotations

from functools import lru_cache

from gpuguard.engine.toolkit import requirements as req
from gpuguard.engine.toolkit.request import Ctx, env_read
from gpuguard.engine.toolkit.versions import Behaviour
from gpuguard.model.toolkit import Driver

_CAPS_ENV = "NVIDIA_DRIVER_CAPABILITIES"
_FAILURE_ONLY = (
    _CAPS_ENV,
    "NVIDIA_REQUIRE_CUDA",
    "NVIDIA_DISABLE_REQUIRE",
    "CUDA_VERSION",
    "NVIDIA_MIG_CONFIG_DEVICES",
    "NVIDIA_MIG_MONITOR_DEVICES",
)
_ALL_SET = frozenset(["compute", "compat32", "graphics", "utility", "video", "display", "ngx"])


def mig_check(ctx: Ctx) -> str | None:
    """v1.1.0:pkg/container_config.go: MIG config/monitor devices need a privileged container."""
    if not ctx.b.mig_privilege_check or ctx.privileged:
        return None
    for name, short in (
        ("NVIDIA_MIG_CONFIG_DEVICES", "MIG_CONFIG"),
        ("NVIDIA_MIG_MONITOR_DEVICES", "MIG_MONITOR"),
    ):
        if ctx.env.get(name):
            msg = f"cannot set {short}_DEVICES in non privileged container"
            ctx.step("hook.mig", env_read(ctx.env, name), f"hook panics: {msg}")
            return msg
    return None


def _set(s: str) -> frozenset[str]:
    return frozenset(t for t in (p.strip() for p in s.split(",")) if t)


@lru_cache(maxsize=1024)
def capabilities(b: Behaviour, supported: str, value: str | None, legacy: bool) -> tuple[str, str | None]:
    """Effective ``NVIDIA_DRIVER_CAPABILITIES`` and the hook's error, per era."""
    if b.caps_era == "cli":
        # v1.3.0:pkg/container_config.go getDriverCapabilities + pkg/capabilities.go capabilityToCLI.
        if value is None and legacy:
            caps = b.all_caps
        elif not value:
            caps = b.default_caps
        elif value == "all":
            caps = b.all_caps
        else:
            caps = value
        known = b.all_caps.split(",")
        for cap in caps.split(","):
            if cap == "":
                break  # doPrestart stops at the first empty piece
            if cap not in known:
                return caps, f"unknown driver capability: {cap}"
        return caps, None
    if b.caps_era == "string":
        # v1.7.0:cmd/nvidia-container-toolkit/capabilities.go: string intersection and string compare.
        sup = b.all_caps if supported == "all" else supported
        all_list = b.all_caps.split(",")
        trimmed = [t for t in (p.strip() for p in sup.split(",")) if t]
        if ",".join(t for t in trimmed if t in all_list) != sup:
            return (
                sup,
                f"Invalid value for config option 'supported-driver-capabilities'; {sup} (supported: {b.all_caps})",
            )
        sup_list = set(trimmed)
        default = ",".join(t for t in b.default_caps.split(",") if t in sup_list)
        if value is None and legacy:
            return sup, None
        if not value:
            return default, None
        if value == "all":
            return sup, None
        inter = ",".join(t for t in (p.strip() for p in value.split(",")) if t and t in sup_list)
        if inter != value:
            return inter, f"unsupported capabilities found in '{value}' (allowed '{inter}')"
        return inter, None
    # v1.14.0:internal/config/image/capabilities.go: sets; "all" anywhere means all.
    sup_set = _ALL_SET if supported == "all" else _set(supported)
    if not sup_set <= _ALL_SET:
        return supported, (
            f"Invalid value for config option 'supported-driver-capabilities'; {supported} "
            f"(supported: {','.join(sorted(_ALL_SET))})"
        )
    if value is None and legacy:
        return ",".join(sorted(sup_set)), None
    if not value:
        return ",".join(sorted(sup_set & _set(b.default_caps))), None
    env_set = _set(value)
    if "all" in env_set:
        return ",".join(sorted(sup_set)), None
    common = sup_set & env_set
    if len(common) != len(env_set):
        shown = ",".join(sorted(common))
        return shown, f"unsupported capabilities found in '{','.join(sorted(env_set))}' (allowed '{shown}')"
    return ",".join(sorted(common)), None


def caps_check(ctx: Ctx) -> str | None:
    """Driver capabilities: an unsupported one makes the hook panic."""
    value = ctx.env.get(_CAPS_ENV)
    caps, err = capabilities(ctx.b, ctx.cfg.supported_driver_capabilities, value, ctx.legacy)
    says = f"hook panics: {err}" if err else f"capabilities {caps}"
    ctx.step("hook.capabilities", env_read(ctx.env, _CAPS_ENV), says)
    return err


def collect_requirements(ctx: Ctx) -> tuple[list[tuple[str, str]], str | None]:
    """The hook's ``GetRequirements``: (requirements to pass on, abort message)."""
    b, env, cfg = ctx.b, ctx.env, ctx.cfg
    disabled_env = req.parse_bool(env.get("NVIDIA_DISABLE_REQUIRE", ""))
    disabled = disabled_env or cfg.disable_require
    why_disabled = env_read(env, "NVIDIA_DISABLE_REQUIRE") if disabled_env else ctx.conf("disable-require", True)
    if disabled and b.disable_require_empties:
        # v1.14.0:internal/config/image/cuda_image.go GetRequirements returns nil when disabled.
        ctx.step("hook.requirements", why_disabled, "requirements disabled")
        return [], None
    reqs: list[tuple[str, str]] = []
    for name, value in env.items():
        if name.startswith("NVIDIA_REQUIRE_"):
            if b.require_skips_jetpack and name.startswith("NVIDIA_REQUIRE_JETPACK"):
                continue  # v1.10.0:internal/config/image/cuda_image.go skips NVIDIA_REQUIRE_JETPACK*
            reqs.append((name, value))
    if len(reqs) > 1:
        reqs.sort()  # Go map order: the CLI gets them in no fixed order; sorted for stable messages
    if ctx.legacy:
        cv = env["CUDA_VERSION"]
        mm = req.cuda_major_minor(cv, b.semver_cuda_version)
        if mm is None:
            msg = f"invalid CUDA version: {cv}"
            ctx.step("hook.requirements", f'process.env CUDA_VERSION="{cv}" (legacy image)', f"hook panics: {msg}")
            return [], msg
        reqs.append(("CUDA_VERSION", f"cuda>={mm}"))
    if disabled:
        # Before v1.14 the list is still built (so a bad CUDA_VERSION aborts) but no --require is passed.
        ctx.step("hook.requirements", why_disabled, "requirements disabled")
        return [], None
    return reqs, None


def evaluate_requirements(
    ctx: Ctx, reqs: list[tuple[str, str]], devices: tuple[str, ...], driver: Driver
) -> str | None:
    """nvidia-container-cli's evaluation; unknown driver facts leave a "not checked" step."""
    gpus = devices != ("",)  # no GPU selected: arch and brand terms hold (src/cli/configure.c)
    unchecked: list[str] = []
    for name, predicate in reqs:
        outcome = req.evaluate(predicate, (driver.cuda, driver.version, driver.arch, driver.brand), gpus)
        if outcome in ("fail", "invalid"):
            msg = req.failure_message(predicate) if outcome == "fail" else "requirement error: invalid expression"
            ctx.step("hook.requirements", f'{name}="{predicate}"', f"nvidia-container-cli fails: {msg}")
            return msg
        if outcome == "unchecked":
            unchecked.append(name)
    if unchecked:
        ctx.step(
            "hook.requirements",
            ", ".join(unchecked),
            "not checked: the driver facts they need (cuda, driver, arch, brand) are unknown",
        )
    elif reqs:
        ctx.step("hook.requirements", ", ".join(n for n, _ in reqs), "requirements satisfied")
    return None


def failure_only_unknowns(ctx: Ctx) -> None:
    """Unknown variables that could only make the container fail: noted, not counted as unknown exposure."""
    if not ctx.spec.unknown_env and ctx.spec.image_env_unknown is None:
        return
    names = [n for n in _FAILURE_ONLY if ctx.unknown_why(n) is not None]
    names += [n for n in (ctx.spec.unknown_env or ()) if n.startswith("NVIDIA_REQUIRE_") and n not in names]
    if names:
        ctx.step("hook.unknown", ", ".join(names), "unknown values could only make the container fail to start")
