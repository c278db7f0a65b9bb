"""``VisibleDevices()`` and its ancestors: which devices a container asks for.

Three sources, tried in a fixed order per release: CDI annotations (runtime,
cdi mode only), ``/dev/null`` mounts under ``/var/run/nvidia-container-devices``
(only with ``accept-nvidia-visible-devices-as-volume-mounts``), then the env
(gated by privilege since v1.3.0). ``Ctx`` carries one decision's inputs and
collects its trail, so each rule writes its own step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuguard.engine.paths import clean as clean_path
from gpuguard.engine.toolkit import envvars
from gpuguard.engine.toolkit.envvars import NVD
from gpuguard.engine.toolkit.modes import is_qualified
from gpuguard.engine.toolkit.versions import Behaviour
from gpuguard.model.container import ContainerSpec, Mount
from gpuguard.model.decision import Step
from gpuguard.model.toolkit import ToolkitConfig

MOUNT_ROOT = "/var/run/nvidia-container-devices"
_ACCEPT_ENV = "accept-nvidia-visible-devices-envvar-when-unprivileged"
_ACCEPT_MOUNTS = "accept-nvidia-visible-devices-as-volume-mounts"


@dataclass(slots=True)
class Ctx:
    """One decision in progress: inputs, derived facts, and the trail so far."""

    spec: ContainerSpec
    env: dict[str, str]
    b: Behaviour
    cfg: ToolkitConfig
    privileged: bool
    steps: list[Step] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    legacy: bool = False  # legacy CUDA image (CUDA_VERSION set, NVIDIA_REQUIRE_CUDA empty)
    auto_cdi: bool | None = None  # memo of the v1.14–1.17 auto→cdi check (runtime and hook agree)
    # Unknowns that can change only the IMEX channels, not which GPUs the container gets.
    imex_unknown: list[str] = field(default_factory=list)

    def step(self, rule: str, read: str, says: str) -> None:
        self.steps.append(Step(rule, read, says))

    def unknown_why(self, name: str) -> str | None:
        """Why ``name`` may hold a value we do not know (None when it is known)."""
        spec = self.spec
        if spec.unknown_env and name in spec.unknown_env:
            return f"{name}: {spec.unknown_env[name]}"
        if spec.image_env_unknown is not None and name not in self.env:
            return f"{name} may be set by the image: {spec.image_env_unknown}"
        return None

    def mark_unknown(self, names: tuple[str, ...] | list[str], *, imex: bool = False) -> None:
        if not self.spec.unknown_env and self.spec.image_env_unknown is None:
            return
        into = self.imex_unknown if imex else self.unknown
        for name in names:
            why = self.unknown_why(name)
            if why is not None and why not in into:
                into.append(why)

    def conf(self, key: str, value: object) -> str:
        shown = str(value).lower() if isinstance(value, bool) else f'"{value}"'
        default = "" if key in self.cfg.explicit else " (default)"
        return f"config {key}={shown}{default}"


def env_read(env: dict[str, str], name: str) -> str:
    value = env.get(name)
    return f"process.env {name} unset" if value is None else f'process.env {name}="{value}"'


def _mount_rest(m: Mount) -> tuple[str, str] | None:
    if clean_path(m.source) != "/dev/null":
        return None
    dest = clean_path(m.destination)
    if not dest.startswith(MOUNT_ROOT):  # string prefix: ".../nvidia-container-devicesX/GPU0" counts
        return None
    return dest, dest[len(MOUNT_ROOT) :]


def hook_mounts_old(mounts: tuple[Mount, ...]) -> list[str]:
    """v1.3.0..v1.16.x hook ``getDevicesFromMounts``: every request, no de-dup, cdi/ and imex/ verbatim."""
    out: list[str] = []
    for m in mounts:
        hit = _mount_rest(m)
        if hit is None:
            continue
        rest = hit[1]
        if rest.startswith("/"):
            rest = rest[1:]
        if rest:
            out.append(rest)
    return out


def image_mounts(mounts: tuple[Mount, ...]) -> list[str]:
    """v1.15.0+ ``DevicesFromMounts``/``requestsFromMounts``: first mount per destination wins."""
    out: list[str] = []
    seen: set[str] = set()
    for m in mounts:
        if clean_path(m.source) != "/dev/null":
            continue
        dest = clean_path(m.destination)
        if dest in seen:  # seen is recorded before the prefix check (v1.15.0:internal/config/image/cuda_image.go)
            continue
        seen.add(dest)
        if not dest.startswith(MOUNT_ROOT):
            continue
        rest = dest[len(MOUNT_ROOT) :].strip("/")
        if rest:
            out.append(rest)
    return out


def cdi_mount_name(b: Behaviour, request: str) -> str | None:
    """A ``cdi/…`` mount request as a CDI name; None when malformed (skipped)."""
    body = request[4:]
    if b.unified_visible_devices and is_qualified(body, b.cdi_name_rules):
        return body  # v1.18.0: cdi/<vendor>/<class>=<name> accepted as is
    parts = body.split("/", 2)
    if len(parts) != 3:
        return None
    return f"{parts[0]}/{parts[1]}={parts[2]}"  # not validated further


def swarm_names(b: Behaviour, cfg: ToolkitConfig) -> list[str]:
    """The configured ``swarm-resource`` variable names."""
    raw = cfg.swarm_resource
    if not raw:
        return []
    if not b.token_parsing:
        return [raw]  # before v1.12 the value is one variable name
    return [s for s in (p.strip(envvars.GO_SPACE) for p in raw.split(",")) if s]


def env_devices(ctx: Ctx, names: list[str]) -> tuple[tuple[str, ...] | None, list[str], str]:
    """Devices from the env (ungated): result, the variables read, and the trail ``read``."""
    env = ctx.env
    b = ctx.b
    legacy = ctx.legacy
    if b.token_parsing:
        present = [n for n in names if n in env]
        chosen = present or [NVD]
        values = tuple(env[n] for n in chosen if n in env)
        result = envvars.tokens(values, bool(values), legacy)
    else:
        candidates = [*names, NVD]
        present = [n for n in candidates if n in env]
        if not present:
            chosen = [NVD]
        elif b.swarm_first:
            chosen = present[:1]
        else:
            chosen = present[-1:]  # v1.3.0..v1.5.0: no `break`, the last present variable wins
        value = env.get(chosen[0])
        result = envvars.whole_string(value, legacy)
    read = "; ".join(env_read(env, n) for n in chosen)
    if result == ("all",) and not any(n in env for n in chosen):
        read += f'; process.env CUDA_VERSION="{env.get("CUDA_VERSION", "")}" (legacy image)'
    return result, chosen, read


def mark_env_unknown(ctx: Ctx, names: list[str], chosen: list[str]) -> None:
    """Record unknowns that could change an env device request that is honoured."""
    ctx.mark_unknown(chosen)
    ctx.mark_unknown(names)
    if not any(n in ctx.env for n in chosen):
        ctx.mark_unknown(("CUDA_VERSION", "NVIDIA_REQUIRE_CUDA"))


def gate(ctx: Ctx, result: tuple[str, ...] | None, read: str) -> tuple[tuple[str, ...] | None, str | None]:
    """The privilege gate on env requests; returns (devices, error)."""
    b, cfg = ctx.b, ctx.cfg
    if result is None:
        return None, None
    if not b.privilege_gate:
        return result, None
    if ctx.privileged:
        ctx.step("toolkit.gate", "process.capabilities.bounding has CAP_SYS_ADMIN", "privileged: env honoured")
        return result, None
    accept = cfg.accept_envvar_unprivileged
    conf = ctx.conf(_ACCEPT_ENV, accept)
    if accept:
        ctx.step("toolkit.gate", conf, "unprivileged, but env requests are accepted")
        return result, None
    if b.gate_fails_container:
        # v1.3.0:pkg/container_config.go log.Panicln; v1.4.1 turned it into a log line.
        msg = "insufficient privileges to read device list from NVIDIA_VISIBLE_DEVICES envvar"
        ctx.step("toolkit.gate", conf, f"unprivileged env request: hook panics ({msg})")
        return None, msg
    ctx.step("toolkit.gate", conf, "unprivileged: env request ignored, no GPUs")
    return None, None


def hook_devices(ctx: Ctx) -> tuple[tuple[str, ...] | None, str | None]:
    """The legacy hook's device request before v1.18 (mounts → env)."""
    b, cfg, spec = ctx.b, ctx.cfg, ctx.spec
    if b.privilege_gate and cfg.accept_volume_mounts:
        if b.mount_dedup:
            # v1.17.0:cmd/nvidia-container-runtime-hook/container_config.go: VisibleDevicesFromMounts
            # skips cdi/ and imex/ requests.
            reqs = [r for r in image_mounts(spec.mounts) if not r.startswith(("cdi/", "imex/"))]
        else:
            reqs = hook_mounts_old(spec.mounts)
        if reqs:
            ctx.step("toolkit.source.mounts", ctx.conf(_ACCEPT_MOUNTS, True), f"mount requests {reqs}")
            return tuple(reqs), None
    names = swarm_names(b, cfg)
    if b.alpha_merge_envvars and cfg.alpha_merge_visible_devices_envvars:
        merged = [v for k, v in ctx.env.items() if k.startswith(NVD + "_")]
        if merged:
            # v1.1.0:pkg/container_config.go getEnvMap: Go map order, so the order is not deterministic.
            ctx.env[NVD] = ",".join(merged)
            ctx.step(
                "toolkit.source.env",
                "config nvidia-container-cli.alpha-merge-visible-devices-envvars=true",
                f"NVIDIA_VISIBLE_DEVICES_* merged (order not deterministic): {merged}",
            )
    result, chosen, read = env_devices(ctx, names)
    if result is not None:
        ctx.step("toolkit.source.env", read, _says(result))
    devices, err = gate(ctx, result, read)
    if err is None and (devices is not None or _gate_open(ctx)):
        mark_env_unknown(ctx, names, chosen)
    return devices, err


def _gate_open(ctx: Ctx) -> bool:
    return not ctx.b.privilege_gate or ctx.privileged or ctx.cfg.accept_envvar_unprivileged


def _says(result: tuple[str, ...] | None) -> str:
    if result is None:
        return "not a GPU container"
    if result == ("all",):
        return "all GPUs"
    if result == ("",):
        return "none: no GPUs, driver libraries only"
    return f"devices {list(result)}"


def annotation_devices(ctx: Ctx, prefixes: tuple[str, ...]) -> list[str]:
    """v1.18.0+ ``cdiDeviceRequestsFromAnnotations``: sorted keys, values split on ',', unvalidated."""
    ann = ctx.spec.annotations
    if not prefixes or not ann:
        return []
    keys = sorted(k for k in ann if k.startswith(prefixes))
    out: list[str] = []
    for k in keys:
        out.extend(ann[k].split(","))
    return out


def visible_devices(ctx: Ctx, prefixes: tuple[str, ...], names: list[str]) -> tuple[str, ...] | None:
    """v1.18.0+ ``CUDA.VisibleDevices()``: annotations → mounts → gated env."""
    b, cfg, spec = ctx.b, ctx.cfg, ctx.spec
    ann = annotation_devices(ctx, prefixes)
    if ann:
        ctx.step("toolkit.source.annotations", f"annotations with prefixes {list(prefixes)}", f"requests {ann}")
        return tuple(ann)
    if cfg.accept_volume_mounts:
        reqs: list[str] = []
        for raw in image_mounts(spec.mounts):
            r = raw
            if r.startswith("imex/"):
                continue
            if r.startswith("cdi/"):
                name = cdi_mount_name(b, r)
                if name is None:
                    ctx.step(
                        "toolkit.source.mounts",
                        f"mount {MOUNT_ROOT}/{r}",
                        "malformed CDI mount request ignored",
                    )
                    continue
                r = name
            reqs.append(r)
        if reqs:
            ctx.step("toolkit.source.mounts", ctx.conf(_ACCEPT_MOUNTS, True), f"mount requests {reqs}")
            return tuple(reqs)
    result, chosen, read = env_devices(ctx, names)
    if result is not None:
        ctx.step("toolkit.source.env", read, _says(result))
    devices, _ = gate(ctx, result, read)
    if devices is not None or _gate_open(ctx):
        mark_env_unknown(ctx, names, chosen)
    return devices
