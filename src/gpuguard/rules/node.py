"""Node rules GG201-GG206: the effective NodeProfile judged once per node.

Each rule reads the profile the engine built (toolkit config, device plugin
strategies, runtime handlers, operator release) and quotes ``node.origin`` so
the finding says which input set the value. Remediations are fitted to the
node's mode: the volume-mounts recipe is right without CDI and breaks GPU pods
in cdi mode; on 23.3.0-25.3.2 with CDI on the operator overwrites it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpuguard.engine.operator import releases as r
from gpuguard.model.decision import Step
from gpuguard.model.finding import Finding, Location, Resource, Severity
from gpuguard.model.node import NodeProfile
from gpuguard.model.toolkit import ToolkitConfig
from gpuguard.rules.registry import rule

ACCEPT_ENVVAR = "accept-nvidia-visible-devices-envvar-when-unprivileged"
ACCEPT_MOUNTS = "accept-nvidia-visible-devices-as-volume-mounts"
JIT_CDI_DEFAULT = r.TK_CRIO_CONFIG_DEFAULT  # toolkit 1.18.0: mode auto resolves to jit-cdi
_DLS = "devicePlugin.env.DEVICE_LIST_STRATEGY"


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the rules and remediations need to know about a node, derived once."""

    operator: bool  # the profile came from a GPU Operator release
    cdi_enabled: bool  # the operator's cdi.enabled
    cdi_mode: bool  # the toolkit runtime's configured mode is cdi
    nri: bool  # toolkit NRI plugin mode
    toolkit_reached: bool  # some container can be handled by the NVIDIA runtime or hook
    nvidia_default: bool  # every container goes through the NVIDIA runtime or hook
    overwrites_strategy: bool  # operator 23.3.0 .. 25.3.2 with CDI on
    host_toolkit: bool  # toolkit config not known (host-installed): defaults assumed
    default_mode: str  # the mode the default nvidia handler resolves to (legacy, jit-cdi, cdi, csv)


def node_facts(node: NodeProfile) -> NodeFacts:
    config = node.toolkit.config
    runtime = node.runtime
    handlers = runtime.handlers
    default = runtime.handlers.get(runtime.default_handler)
    op = node.operator_version
    cdi_enabled = node.operator is not None and node.operator.cdi_enabled
    mode = config.mode
    if mode == "auto":
        mode = "jit-cdi" if node.toolkit.version >= JIT_CDI_DEFAULT else "legacy"
    return NodeFacts(
        operator=op is not None,
        cdi_enabled=cdi_enabled,
        cdi_mode=config.mode == "cdi",
        nri=node.nri.enabled,
        toolkit_reached=runtime.oci_hook_all or any(h.nvidia for h in handlers.values()),
        nvidia_default=runtime.oci_hook_all or (default is not None and default.nvidia),
        overwrites_strategy=op is not None and r.CDI_FIELD <= op < r.USER_ENV_WINS and cdi_enabled,
        host_toolkit="toolkit.config" in node.unknown,
        default_mode=mode,
    )


# --- remediation fitted to the node --------------------------------------------------------------

_RESTART = " Then restart running pods: they keep the GPUs they already got."
_MERGE = (
    " Merge into the existing toolkit.env/devicePlugin.env lists (helm --set on env[i] replaces the whole "
    "list; use --set-string for the booleans)."
)
_RECIPE_A = (
    'toolkit.env ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED="false" and '
    'ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true", and devicePlugin.env DEVICE_LIST_STRATEGY=volume-mounts'
)
_CDI_ONLY = (
    'toolkit.env ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED="false" only. Do not add '
    "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS or DEVICE_LIST_STRATEGY=volume-mounts: in cdi mode GPU pods "
    "then fail with 'unresolvable CDI devices management.nvidia.com/gpu=GPU-...' (gpu-operator#1876)"
)
_RUNTIME_CLASS_POLICY = (
    " Also deny runtimeClassName nvidia/nvidia-cdi/nvidia-legacy outside the operator's namespaces with a "
    "ValidatingAdmissionPolicy."
)


def hardening(node: NodeProfile, facts: NodeFacts | None = None) -> str:
    """How to stop unrequested GPU access on this node, in the words of its configuration source."""
    f = facts or node_facts(node)
    op = node.operator_version
    if f.nri:
        return (
            "This node runs the toolkit's NRI plugin: env requests are not the path, pod annotations are. "
            "Deny pod annotations with the prefix nvidia.cdi.k8s.io/ outside the operator's namespaces with an "
            "admission policy and keep NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES minimal; do not set ACCEPT_* "
            "(irrelevant in this mode)." + _RESTART
        )
    if not f.operator:
        if f.cdi_mode:
            return (
                f"In config.toml, at the top before any [table]: {ACCEPT_ENVVAR} = false. Do not enable "
                f"{ACCEPT_MOUNTS} or the volume-mounts strategy: in cdi mode GPU pods then fail as unresolvable."
                + _RESTART
            )
        return (
            f"In config.toml, at the top before any [table]: {ACCEPT_ENVVAR} = false and {ACCEPT_MOUNTS} = true; "
            "run the device plugin with DEVICE_LIST_STRATEGY=volume-mounts (and privileged, to keep NVML access)."
            + _RESTART
        )
    if f.host_toolkit:
        return (
            "spec.toolkit.enabled=false: the host's own toolkit decides. On every GPU node set, at the top of "
            f"/etc/nvidia-container-runtime/config.toml, {ACCEPT_ENVVAR} = false"
            + ("" if f.cdi_mode else f" and {ACCEPT_MOUNTS} = true, with devicePlugin.env DEVICE_LIST_STRATEGY="
               "volume-mounts")
            + "." + _RESTART
        )  # fmt: skip
    if f.cdi_mode:
        text = f"Set {_CDI_ONLY}."
        if op is not None and op >= r.CDI_DEFAULT_ON:
            text += (
                " Keep devicePlugin.env free of DEVICE_LIST_STRATEGY and leave NVIDIA_RUNTIME_SET_AS_DEFAULT unset."
                + _RUNTIME_CLASS_POLICY
            )
        return text + _MERGE + _RESTART
    if f.overwrites_strategy:
        return (
            f"GPU Operator {op} (23.3.0-25.3.2) with cdi.enabled=true overwrites devicePlugin.env "
            "DEVICE_LIST_STRATEGY with envvar,cdi-annotations, so the volume-mounts recipe cannot take effect: "
            f"upgrade to GPU Operator 25.3.3 or later, or set cdi.enabled=false, then set {_RECIPE_A}."
            + _MERGE
            + _RESTART
        )
    text = f"Set {_RECIPE_A}."
    if node.toolkit.version < r.TK_ACCEPT_ENV:
        text += (
            f" Toolkit {node.toolkit.version} ignores these env vars: upgrade it to {r.TK_ACCEPT_ENV} or later first."
        )
    if op is not None and op >= r.CDI_DEFAULT_ON and not f.cdi_enabled:
        text += " On this release you may instead turn CDI back on (cdi.enabled=true) and set only the first variable."
    return text + _MERGE + _RESTART


# --- GG201-GG206 -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    node: NodeProfile
    facts: NodeFacts

    def origin(self, key: str, fallback: str = "") -> str:
        return self.node.origin.get(key, fallback)


@dataclass(frozen=True, slots=True)
class NodeRule:
    """A node rule: a predicate, then a message, steps and remediation built only when it fires."""

    id: str
    applies: Callable[[_Ctx], bool]
    message: Callable[[_Ctx], str]
    steps: Callable[[_Ctx], tuple[Step, ...]]
    remedy: Callable[[_Ctx], str]
    severity: Callable[[_Ctx], Severity | None] = lambda ctx: None  # None: the rule's own severity


def _step(ctx: _Ctx, rule_id: str, key: str, says: str) -> Step:
    return Step(rule_id, f"{key} = {ctx.origin(key, '(not recorded)')}", says)


def _accepts_env(ctx: _Ctx) -> bool:
    return ctx.facts.toolkit_reached and ctx.node.toolkit.config.accept_envvar_unprivileged


def _gg201_message(ctx: _Ctx) -> str:
    who = (
        "every container on the node (the NVIDIA runtime is the default)"
        if ctx.facts.nvidia_default
        else "every pod that selects an NVIDIA runtime class"
    )
    assumed = " (assumed: the host toolkit's config is not known)" if ctx.facts.host_toolkit else ""
    return (
        f"The toolkit honours NVIDIA_VISIBLE_DEVICES from unprivileged containers{assumed}: {who} can ask for "
        "any GPU by env, with or without a GPU request."
    )


def _gg201_steps(ctx: _Ctx) -> tuple[Step, ...]:
    return (
        _step(ctx, "GG201", ACCEPT_ENVVAR, "true: env requests accepted from unprivileged containers"),
        _step(ctx, "GG201", "runtime.default_handler", f"default handler {ctx.node.runtime.default_handler}"),
    )


def _strategies(ctx: _Ctx) -> tuple[str, ...]:
    plugin = ctx.node.device_plugin
    return plugin.list_strategies if plugin is not None else ()


def _gg202_remedy(ctx: _Ctx) -> str:
    op = ctx.node.operator_version
    if ctx.facts.cdi_enabled and op is not None and op >= r.CDI_DEFAULT_ON:
        return (
            "Remove DEVICE_LIST_STRATEGY from devicePlugin.env: with CDI on, the operator's default "
            "cdi-annotations,cdi-cri passes devices without env (toolkit#1895)."
        )
    return hardening(ctx.node, ctx.facts)


def _overwritten(ctx: _Ctx) -> tuple[str, str] | None:
    """(user's value, where) when the operator's CDI transform replaced a user DEVICE_LIST_STRATEGY."""
    if not ctx.facts.overwrites_strategy or ctx.node.operator is None:
        return None
    forced = set(_strategies(ctx))
    for override in ctx.node.operator.overrides:
        if override.container != "devicePlugin" or override.name != "DEVICE_LIST_STRATEGY":
            continue
        dropped = [s.strip() for s in override.user_value.split(",") if s.strip() and s.strip() not in forced]
        if dropped:
            return override.user_value, override.user_where
    return None


def _gg203_case(ctx: _Ctx) -> str | None:
    config = ctx.node.toolkit.config
    strategies = _strategies(ctx)
    if not strategies or not ctx.facts.toolkit_reached:
        return None
    mounts = "volume-mounts" in strategies
    if mounts and ctx.facts.cdi_mode:
        return (
            "the device plugin passes volume-mounts while the toolkit runs in cdi mode: GPU UUIDs are looked up "
            "in the management CDI spec and GPU pods fail with "
            "'unresolvable CDI devices management.nvidia.com/gpu=GPU-...'"
        )
    if mounts and not config.accept_volume_mounts:
        return (
            f"the device plugin passes volume-mounts but {ACCEPT_MOUNTS} is false: the toolkit ignores the mounts "
            "and reads NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices, so GPU pods get no GPU or fail"
        )
    if not config.accept_envvar_unprivileged and set(strategies) == {"envvar"}:
        return (
            f"{ACCEPT_ENVVAR} is false but the device plugin only passes the env var: unprivileged GPU pods get no "
            "GPU from the toolkit (no driver libraries: 'CUDA driver version is insufficient')"
        )
    return None


def _default_runtime_message(ctx: _Ctx) -> str:
    if ctx.node.runtime.oci_hook_all:
        return (
            "cri-o runs the NVIDIA OCI hook for every container (hook mode): every container goes through the toolkit."
        )
    if not ctx.node.toolkit.config.accept_envvar_unprivileged:
        return (
            f"The NVIDIA runtime ({ctx.node.runtime.default_handler}) is the node's default runtime: every container "
            "goes through the toolkit. Env requests are refused from unprivileged containers, so only privileged or "
            "SYS_ADMIN containers can take GPUs with NVIDIA_VISIBLE_DEVICES alone."
        )
    return (
        f"The NVIDIA runtime ({ctx.node.runtime.default_handler}) is the node's default runtime: every container "
        "goes through the toolkit, so an image's NVIDIA_VISIBLE_DEVICES=all alone can bring every GPU."
    )


def _default_runtime_severity(ctx: _Ctx) -> Severity | None:
    """Low once env requests are refused from unprivileged containers: only privileged ones remain."""
    return None if ctx.node.toolkit.config.accept_envvar_unprivileged else Severity.LOW


def _default_runtime_remedy(ctx: _Ctx) -> str:
    op = ctx.node.operator_version
    setter = ctx.origin("toolkit.env.NVIDIA_RUNTIME_SET_AS_DEFAULT")
    if op is not None and op >= r.CDI_DEFAULT_ON and ctx.facts.cdi_enabled:
        return f"Remove NVIDIA_RUNTIME_SET_AS_DEFAULT=true from toolkit.env ({setter or 'set by the user'})."
    if ctx.node.toolkit.config.accept_envvar_unprivileged:
        return "Keep the default runtime only with env requests turned off: " + hardening(ctx.node, ctx.facts)
    return (
        "Env requests from unprivileged containers are already refused; privileged containers and image env "
        "still reach the toolkit, so keep GG104 clean."
    )


NODE_RULES: tuple[NodeRule, ...] = (
    NodeRule(
        "GG201",
        _accepts_env,
        _gg201_message,
        _gg201_steps,
        lambda ctx: hardening(ctx.node, ctx.facts),
    ),
    NodeRule(
        "GG202",
        lambda ctx: "envvar" in _strategies(ctx),
        lambda ctx: (
            f"The device plugin passes the device list as NVIDIA_VISIBLE_DEVICES "
            f"(DEVICE_LIST_STRATEGY={','.join(_strategies(ctx))}): a pod's own env overrides it."
        ),
        lambda ctx: (_step(ctx, "GG202", _DLS, "envvar strategy"),),
        _gg202_remedy,
    ),
    NodeRule(
        "GG203",
        lambda ctx: _gg203_case(ctx) is not None,
        lambda ctx: f"Hardening breaks GPU pods: {_gg203_case(ctx)}.",
        lambda ctx: (
            _step(ctx, "GG203", _DLS, f"strategies {','.join(_strategies(ctx))}"),
            _step(ctx, "GG203", ACCEPT_MOUNTS, str(ctx.node.toolkit.config.accept_volume_mounts).lower()),
            _step(ctx, "GG203", ACCEPT_ENVVAR, str(ctx.node.toolkit.config.accept_envvar_unprivileged).lower()),
            _step(ctx, "GG203", "nvidia-container-runtime.mode", f"mode {ctx.node.toolkit.config.mode}"),
        ),
        lambda ctx: hardening(ctx.node, ctx.facts),
    ),
    NodeRule(
        "GG205",
        lambda ctx: _overwritten(ctx) is not None,
        lambda ctx: (
            f"GPU Operator {ctx.node.operator_version} with cdi.enabled=true overwrites DEVICE_LIST_STRATEGY="
            f"{(_overwritten(ctx) or ('', ''))[0]} from {(_overwritten(ctx) or ('', ''))[1]} with "
            f"{','.join(_strategies(ctx))}: the hardened strategy never reaches the device plugin."
        ),
        lambda ctx: (
            _step(ctx, "GG205", "cdi.enabled", "CDI on"),
            _step(ctx, "GG205", _DLS, "the operator's CDI transform runs after the user's env (< 25.3.3)"),
        ),
        lambda ctx: hardening(ctx.node, ctx.facts),
    ),
    NodeRule(
        "GG206",
        lambda ctx: ctx.facts.nvidia_default,
        _default_runtime_message,
        lambda ctx: (
            _step(ctx, "GG206", "runtime.default_handler", f"default handler {ctx.node.runtime.default_handler}"),
            *(
                (_step(ctx, "GG206", "toolkit.env.NVIDIA_RUNTIME_SET_AS_DEFAULT", "set-as-default"),)
                if "toolkit.env.NVIDIA_RUNTIME_SET_AS_DEFAULT" in ctx.node.origin
                else ()
            ),
        ),
        _default_runtime_remedy,
        _default_runtime_severity,
    ),
)


def _origin_steps(node: NodeProfile, rule_id: str) -> tuple[Step, ...]:
    """Where the profile came from, as the first steps of a node finding's trail."""
    steps = (
        [Step(rule_id, f"operator.version = {node.origin['operator.version']}", "release rules applied")]
        if ("operator.version" in node.origin)
        else []
    )
    if node.assumed:
        steps.append(Step(rule_id, "node profile", node.origin.get("assumed", "assumed the most exposed setup")))
    return tuple(steps)


# What a toolkit config.toml alone can show: how the toolkit treats env requests.
TOOLKIT_FILE_RULES = frozenset({"GG201"})


def check_node(
    node: NodeProfile,
    *,
    resource: Resource | None,
    location: Location | None,
    only: frozenset[str] | None = None,
) -> list[Finding]:
    """GG201, GG202, GG203, GG205, GG206 for one effective node profile (or the rules in ``only``)."""
    ctx = _Ctx(node, node_facts(node))
    findings: list[Finding] = []
    for node_rule in NODE_RULES:
        if only is not None and node_rule.id not in only:
            continue
        if not node_rule.applies(ctx):
            continue
        info = rule(node_rule.id)
        findings.append(
            Finding(
                rule_id=info.id,
                severity=node_rule.severity(ctx) or info.severity,
                message=node_rule.message(ctx),
                remediation=node_rule.remedy(ctx),
                resource=resource,
                location=location,
                trail=(*_origin_steps(node, info.id), *node_rule.steps(ctx)),
            )
        )
    return findings


def check_toolkit_config(config: ToolkitConfig, location: Location) -> list[Finding]:
    """GG204: one finding per key the toolkit ignores where it was written (``config.ignored``)."""
    info = rule("GG204")
    values = dict(config.ignored_values)
    findings = []
    for key in config.ignored:
        value = values.get(key.path)
        shown = f" = {_toml(value)}" if key.path in values else ""
        remedy = _gg204_remedy(key.path, key.belongs_at, shown)
        findings.append(
            Finding(
                rule_id=info.id,
                severity=info.severity,
                message=f"config.toml key {key.path}{shown} is ignored: {key.why}.",
                remediation=remedy,
                location=location,
                trail=(Step(info.id, f"config {key.path}{shown}", key.why),),
                subject=key.path,
            )
        )
    return findings


def _gg204_remedy(path: str, home: str | None, shown: str) -> str:
    if home is None:
        return f"{path} is not a key the toolkit reads: check its spelling and the table it sits in."
    if home == path:
        return f"This toolkit release does not read {path}: remove it, or upgrade to a release that does."
    table, _, leaf = home.rpartition(".")
    if not table:
        return f"Move `{leaf}{shown}` to the top of config.toml, above the first [table] header."
    return f"Move `{leaf}{shown}` under the [{table}] table of config.toml."


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
