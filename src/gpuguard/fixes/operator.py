"""GPU Operator remedies: which env changes fit the node, and how to apply them without losing entries.

The hardening recipe depends on the release and on CDI (gpu_operator.md §4):
``volume-mounts`` is right for legacy/non-CDI nodes and breaks GPU pods where
CDI is the default (unresolvable management UUIDs); on 23.3.0-25.3.2 with CDI
on, the operator overwrites ``DEVICE_LIST_STRATEGY`` after the user's env, so
the env recipe cannot take effect there. :data:`RECIPES` holds that matrix as
rows, first match wins; :func:`recipe` is the only reader.

Every way of applying a recipe keeps the entries already in ``toolkit.env`` /
``devicePlugin.env`` (k3s/RKE2 need their ``CONTAINERD_*`` entries):

- Helm ``--set list[i]`` replaces the whole list (the other indices become
  null), so :func:`helm_args` restates every current entry at its index and
  appends the new ones after them, all with ``--set-string`` (``EnvVar.value``
  is a string, and ``--set`` would turn ``false`` into a boolean).
- :func:`values_overlay` writes the full merged lists, since Helm never merges lists.
- :func:`clusterpolicy_patch` appends with ``/env/-`` and replaces by index only
  after a ``test`` of the name at that index, never ``replace /spec/toolkit/env``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gpuguard.model.node import CHART_DEVICE_PLUGIN_ENV, NodeProfile
from gpuguard.model.report import ProfileSummary
from gpuguard.model.version import Version, v

ACCEPT_UNPRIVILEGED = "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED"
ACCEPT_VOLUME_MOUNTS = "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS"
DEVICE_LIST_STRATEGY = "DEVICE_LIST_STRATEGY"
SET_AS_DEFAULT = ("NVIDIA_RUNTIME_SET_AS_DEFAULT", "CONTAINERD_SET_AS_DEFAULT")

# Release boundaries the recipe depends on (the engine keeps its own copy; fixers may not import it).
CDI_FIELD = v("23.3.0")  # spec.cdi appears; cdi.enabled=true forces DEVICE_LIST_STRATEGY
USER_ENV_WINS = v("25.3.3")  # commit 825a4c38: the user's env applied after the CDI transform
CDI_DEFAULT_ON = v("25.10.0")  # cdi.enabled nil -> true; cdi mode; nvidia not the default runtime
NRI_PLUGIN = v("26.3.0")  # spec.cdi.nriPluginEnabled
ACCEPT_ENV_SUPPORTED = v("22.9.0")  # first release whose toolkit (1.11) honours the ACCEPT_* env

EnvList = Sequence[Mapping[str, object]]

# Until 25.3.3 the chart's values.yaml shipped these devicePlugin.env entries; a values overlay that
# lists devicePlugin.env replaces them, so they must be restated (commit 1a1a5a1e moved them to the asset).
CHART_DEVICE_PLUGIN_ENV_UNTIL = v("25.3.3")


def chart_default_env(section: str, version: Version | None) -> list[dict[str, object]]:
    """The list a chart release renders when the user's values do not set ``<section>.env``."""
    if section == "devicePlugin" and version is not None and version < CHART_DEVICE_PLUGIN_ENV_UNTIL:
        return [{"name": n, "value": val} for n, val in CHART_DEVICE_PLUGIN_ENV]
    return []


HARDEN_LEGACY_TOOLKIT = ((ACCEPT_UNPRIVILEGED, "false"), (ACCEPT_VOLUME_MOUNTS, "true"))
HARDEN_LEGACY_PLUGIN = ((DEVICE_LIST_STRATEGY, "volume-mounts"),)
HARDEN_CDI_TOOLKIT = ((ACCEPT_UNPRIVILEGED, "false"),)

RUNTIMECLASS_POLICY = (
    "admission policy: allow runtimeClassName nvidia, nvidia-cdi, nvidia-legacy only in the GPU Operator "
    "namespace and allow-listed monitoring namespaces (ValidatingAdmissionPolicy, Kyverno or Gatekeeper)"
)
ANNOTATION_POLICY = (
    "admission policy: deny pod annotations with prefix nvidia.cdi.k8s.io/ outside the GPU Operator namespace; "
    "keep NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES empty"
)


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """The few node facts the remedy depends on, as plain data (tests build them by hand)."""

    operator_version: Version | None  # None: not an operator node (host toolkit, or unknown)
    cdi_enabled: bool | None = None  # None: not stated; the release's nil default applies
    cdi_default: bool = False  # 23.3-25.3: cdi.default=true puts the runtime in cdi mode
    nri: bool = False
    toolkit_managed: bool = True  # False: toolkit.enabled=false, the host's config.toml rules

    @property
    def cdi_on(self) -> bool:
        if self.cdi_enabled is not None:
            return self.cdi_enabled
        return self.operator_version is not None and self.operator_version >= CDI_DEFAULT_ON


@dataclass(frozen=True, slots=True)
class Recipe:
    """Which env changes apply on this node, and why (one row of :data:`RECIPES`)."""

    mode: str  # the matrix row: "A", "B", "C", "D", "E", "F", "old"
    why: str
    toolkit_env: tuple[tuple[str, str], ...] = ()
    device_plugin_env: tuple[tuple[str, str], ...] = ()
    device_plugin_remove: tuple[str, ...] = ()  # names to drop from devicePlugin.env (none in CDI modes)
    set_cdi_enabled: bool | None = None  # set cdi.enabled to this first (False on 23.3.0-25.3.2 with CDI)
    policies: tuple[str, ...] = ()  # what no env can do: admission policies
    alternatives: tuple[str, ...] = ()
    restart_running_pods: bool = True  # running pods keep the GPUs they got until restarted
    host_config: bool = False  # the toolkit is host-installed: change config.toml on the nodes instead

    @property
    def changes_env(self) -> bool:
        return bool(self.toolkit_env or self.device_plugin_env or self.device_plugin_remove)


@dataclass(frozen=True, slots=True)
class RecipeRow:
    """One row of the decision table: a release range x CDI x cdi.default x NRI -> a recipe."""

    since: Version | None  # inclusive; None: any (or no operator at all, with ``operator`` False)
    until: Version | None  # exclusive
    cdi: bool | None  # None: either
    recipe: Recipe
    cdi_default: bool | None = None
    nri: bool | None = None
    operator: bool | None = True  # True: an operator node; False: none known; None: either
    toolkit_managed: bool | None = True

    def matches(self, facts: ProfileFacts) -> bool:
        ver = facts.operator_version
        if self.operator is not None and self.operator != (ver is not None):
            return False
        if ver is not None and (
            (self.since is not None and ver < self.since) or (self.until is not None and ver >= self.until)
        ):
            return False
        return (
            (self.cdi is None or self.cdi == facts.cdi_on)
            and (self.cdi_default is None or self.cdi_default == facts.cdi_default)
            and (self.nri is None or self.nri == facts.nri)
            and (self.toolkit_managed is None or self.toolkit_managed == facts.toolkit_managed)
        )


_A = Recipe(
    "A",
    "legacy (non-CDI) runtime: the toolkit must ignore NVIDIA_VISIBLE_DEVICES from unprivileged containers, and the "
    "device plugin must pass allocations as volume mounts so that GPU pods keep working",
    toolkit_env=HARDEN_LEGACY_TOOLKIT,
    device_plugin_env=HARDEN_LEGACY_PLUGIN,
)
_HOST = Recipe(
    "F",
    "the toolkit is installed on the host (toolkit.enabled=false or no operator): change config.toml on every GPU "
    "node; set DEVICE_LIST_STRATEGY=volume-mounts on the device plugin unless CDI injects the devices",
    toolkit_env=HARDEN_LEGACY_TOOLKIT,
    host_config=True,
)

RECIPES: tuple[RecipeRow, ...] = (
    RecipeRow(None, None, None, _HOST, operator=None, toolkit_managed=False),
    RecipeRow(None, None, None, _HOST, operator=False, toolkit_managed=None),
    RecipeRow(
        None,
        ACCEPT_ENV_SUPPORTED,
        None,
        Recipe(
            "old",
            "this release's toolkit (< 1.11) ignores the ACCEPT_* env; the file it would write is rewritten on restart",
            alternatives=("upgrade the GPU Operator to >= 22.9.0, then apply the env recipe",),
        ),
    ),
    RecipeRow(ACCEPT_ENV_SUPPORTED, CDI_FIELD, None, _A),  # no spec.cdi yet: the API server prunes it
    RecipeRow(CDI_FIELD, None, False, _A),
    RecipeRow(
        CDI_FIELD,
        USER_ENV_WINS,
        True,
        Recipe(
            "B",
            "operator 23.3.0-25.3.2 with cdi.enabled=true forces DEVICE_LIST_STRATEGY=envvar,cdi-annotations after "
            "the user's devicePlugin.env, so a volume-mounts setting is silently replaced: turn CDI off first",
            toolkit_env=HARDEN_LEGACY_TOOLKIT,
            device_plugin_env=HARDEN_LEGACY_PLUGIN,
            set_cdi_enabled=False,
            alternatives=("or upgrade the GPU Operator to >= 25.3.3, where the user's env wins, then apply recipe A",),
        ),
        cdi_default=False,
    ),
    RecipeRow(
        CDI_FIELD,
        CDI_DEFAULT_ON,
        True,
        Recipe(
            "C",
            "cdi.default=true runs the runtime in cdi mode, where volume-mount UUIDs resolve against the management "
            "spec and fail: only stop accepting the env var (GPU pods keep working through CDI annotations)",
            toolkit_env=HARDEN_CDI_TOOLKIT,
            device_plugin_remove=(DEVICE_LIST_STRATEGY,),
        ),
        cdi_default=True,
    ),
    RecipeRow(
        USER_ENV_WINS,
        CDI_DEFAULT_ON,
        True,
        Recipe(
            "A",
            "operator >= 25.3.3 applies the user's env after the CDI transform, and cdi.default=false keeps the "
            "runtime in legacy mode: the legacy recipe takes effect",
            toolkit_env=HARDEN_LEGACY_TOOLKIT,
            device_plugin_env=HARDEN_LEGACY_PLUGIN,
        ),
        cdi_default=False,
    ),
    RecipeRow(
        NRI_PLUGIN,
        None,
        True,
        Recipe(
            "E",
            "NRI plugin mode: no nvidia RuntimeClass and no runtime config changes, so the env var path is closed; "
            "the residual path is pod annotations, which only an admission policy stops",
            policies=(ANNOTATION_POLICY,),
            restart_running_pods=False,
        ),
        nri=True,
    ),
    RecipeRow(
        CDI_DEFAULT_ON,
        None,
        True,
        Recipe(
            "D",
            "CDI is the default (>= 25.10 with cdi.enabled): volume-mounts breaks GPU pods (unresolvable CDI "
            "devices), so only stop accepting the env var and keep DEVICE_LIST_STRATEGY out of devicePlugin.env; "
            "pods that set runtimeClassName nvidia* still need an admission policy",
            toolkit_env=HARDEN_CDI_TOOLKIT,
            device_plugin_remove=(DEVICE_LIST_STRATEGY,),
            policies=(RUNTIMECLASS_POLICY,),
        ),
    ),
)


def recipe(facts: ProfileFacts, rows: Sequence[RecipeRow] = RECIPES) -> Recipe:
    """The first row of the decision table that matches the node."""
    for row in rows:
        if row.matches(facts):
            return row.recipe
    raise LookupError(f"no remedy row matches {facts}")  # the table covers every combination; a test checks it


# --- node facts from what the audit knows ----------------------------------------------------------


def _flag(text: str | None) -> bool | None:
    """``"true from spec.cdi.enabled"`` -> True: origins and settings start with the value."""
    words = str(text or "").lower().replace(":", " ").split()
    return {"true": True, "false": False}.get(words[0]) if words else None


def facts_from_profile(profile: NodeProfile) -> ProfileFacts:
    """Read the facts from a node profile (``origin`` says how cdi.* were set)."""
    origin = profile.origin
    host = "toolkit.enabled=false" in origin.get("toolkit", "") or _flag(origin.get("toolkit.enabled")) is False
    managed = not host
    return ProfileFacts(
        operator_version=profile.operator_version,
        cdi_enabled=_flag(origin.get("cdi.enabled")),
        cdi_default=bool(_flag(origin.get("cdi.default"))),
        nri=profile.nri.enabled,
        toolkit_managed=managed,
    )


def facts_from_summary(summary: ProfileSummary) -> ProfileFacts:
    """Read the facts from a report header (``settings`` keys ``cdi.enabled`` and the like)."""
    s = summary.settings
    version: Version | None = None
    if summary.operator_version:
        try:
            version = Version.parse(summary.operator_version)
        except ValueError:
            version = None
    managed = _flag(s.get("toolkit.enabled"))
    return ProfileFacts(
        operator_version=version,
        cdi_enabled=_flag(s.get("cdi.enabled")),
        cdi_default=bool(_flag(s.get("cdi.default"))),
        nri=bool(_flag(s.get("cdi.nriPluginEnabled") or s.get("nri.enabled"))),
        toolkit_managed=managed is not False,
    )


# --- merging env lists -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvOp:
    """One change to an env list: ``replace`` at ``index``, ``remove`` at ``index``, or ``append``."""

    op: str
    name: str
    value: str | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class EnvMerge:
    merged: tuple[dict[str, object], ...]
    ops: tuple[EnvOp, ...] = field(default=())


def merge_env(current: EnvList | None, changes: Sequence[tuple[str, str]], remove: Sequence[str] = ()) -> EnvMerge:
    """The list after the changes: names already present keep their index, new names go last."""
    merged = [dict(e) for e in current or ()]
    ops: list[EnvOp] = []
    for name, value in changes:
        at = [i for i, e in enumerate(merged) if e.get("name") == name]
        if at:
            for i in at:
                if merged[i].get("value") != value or "valueFrom" in merged[i]:
                    merged[i] = {"name": name, "value": value}
                    ops.append(EnvOp("replace", name, value, i))
        else:
            merged.append({"name": name, "value": value})
            ops.append(EnvOp("append", name, value, len(merged) - 1))
    drops = sorted((i for i, e in enumerate(merged) if e.get("name") in remove), reverse=True)
    for i in drops:
        ops.append(EnvOp("remove", str(merged[i].get("name")), None, i))
    keep = [e for i, e in enumerate(merged) if i not in set(drops)]
    return EnvMerge(tuple(keep), tuple(ops))


# --- Helm ---------------------------------------------------------------------------------------


def _helm_escape(value: str) -> str:
    """Helm's --set parser splits on commas and reads backslashes as escapes."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


def helm_args(
    rec: Recipe,
    toolkit_env: EnvList | None,
    device_plugin_env: EnvList | None,
    *,
    quote: bool = True,
) -> list[str]:
    """``--set``/``--set-string`` arguments that leave the env lists merged, not replaced.

    Current entries are restated at their indices (a ``--set`` index replaces
    the whole list), new entries take the indices after them. With ``quote`` each
    argument is quoted for POSIX shells and zsh (brackets are glob characters).
    """
    args: list[str] = []
    if rec.set_cdi_enabled is not None:
        args += ["--set", f"cdi.enabled={str(rec.set_cdi_enabled).lower()}"]
    for key, current, changes, remove in (
        ("toolkit.env", toolkit_env, rec.toolkit_env, ()),
        ("devicePlugin.env", device_plugin_env, rec.device_plugin_env, rec.device_plugin_remove),
    ):
        m = merge_env(current, changes, remove)
        if not m.ops:
            continue
        if not m.merged:
            args += ["--set", f"{key}={{}}"]  # an empty list; null would bring back the chart's default
        for i, entry in enumerate(m.merged):
            args += ["--set-string", f"{key}[{i}].name={_helm_escape(str(entry.get('name', '')))}"]
            if "value" in entry:
                args += ["--set-string", f"{key}[{i}].value={_helm_escape(str(entry['value']))}"]
    if quote:
        return [a if a.startswith("--") else shlex.quote(a) for a in args]
    return args


def helm_command(
    rec: Recipe,
    toolkit_env: EnvList | None,
    device_plugin_env: EnvList | None,
    *,
    release: str = "gpu-operator",
    chart: str = "nvidia/gpu-operator",
    namespace: str = "gpu-operator",
) -> str:
    """The whole ``helm upgrade`` line, one argument pair per line."""
    args = helm_args(rec, toolkit_env, device_plugin_env)
    head = f"helm upgrade {shlex.quote(release)} {shlex.quote(chart)} -n {shlex.quote(namespace)} --reuse-values"
    pairs = [f"{args[i]} {args[i + 1]}" for i in range(0, len(args), 2)]
    return " \\\n  ".join([head, *pairs])


def values_overlay(rec: Recipe, toolkit_env: EnvList | None, device_plugin_env: EnvList | None) -> str:
    """A values file (``-f overlay.yaml``) with the full merged lists: Helm replaces lists, never merges them."""
    out: list[str] = []
    if rec.set_cdi_enabled is not None:
        out += ["cdi:", f"  enabled: {str(rec.set_cdi_enabled).lower()}"]
    for key, current, changes, remove in (
        ("toolkit", toolkit_env, rec.toolkit_env, ()),
        ("devicePlugin", device_plugin_env, rec.device_plugin_env, rec.device_plugin_remove),
    ):
        m = merge_env(current, changes, remove)
        if not m.ops:
            continue
        out += [f"{key}:", "  env:" + (" []" if not m.merged else "")]
        for entry in m.merged:
            out.append(f"  - name: {_yaml_name(entry.get('name', ''))}")
            for k, val in entry.items():
                if k != "name":
                    out.append(f"    {k}: {_yaml_str(val) if k == 'value' else json.dumps(val)}")
    return "\n".join(out) + "\n" if out else ""


def _yaml_name(value: object) -> str:
    """Env names plain when YAML cannot read them as anything but a string."""
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf"}


def _yaml_str(value: object) -> str:
    """Always a double-quoted YAML string: ``"false"`` must stay a string (EnvVar.value is one)."""
    return json.dumps(str(value))


# --- ClusterPolicy -----------------------------------------------------------------------------


def clusterpolicy_ops(
    rec: Recipe,
    toolkit_env: EnvList | None,
    device_plugin_env: EnvList | None,
    *,
    has_cdi: bool = True,
    known: bool = True,
) -> list[dict[str, object]]:
    """RFC 6902 operations that append to ``spec.toolkit.env`` and ``spec.devicePlugin.env``.

    ``None`` for a list means it is absent (or null): it is created empty
    first. Entries already present are replaced by index after a ``test`` of
    their name, so a list that changed since it was read makes the patch fail
    instead of clobbering another entry. With ``known=False`` (the lists were
    not read) only ``/-`` appends are emitted: they fail on an absent list
    rather than guess, and an appended entry wins over an earlier duplicate.
    """
    ops: list[dict[str, object]] = []
    if rec.set_cdi_enabled is not None:
        if has_cdi:
            ops.append({"op": "add", "path": "/spec/cdi/enabled", "value": rec.set_cdi_enabled})
        else:
            ops.append({"op": "add", "path": "/spec/cdi", "value": {"enabled": rec.set_cdi_enabled}})
    for base, current, changes, remove in (
        ("/spec/toolkit/env", toolkit_env, rec.toolkit_env, ()),
        ("/spec/devicePlugin/env", device_plugin_env, rec.device_plugin_env, rec.device_plugin_remove),
    ):
        m = merge_env(current if known else (), changes, remove)
        if not m.ops:
            continue
        if known and current is None and any(o.op == "append" for o in m.ops):
            ops.append({"op": "add", "path": base, "value": []})
        for o in m.ops:
            if o.op == "replace":
                entry = current[o.index] if current is not None and o.index is not None else {}
                verb = "replace" if "value" in entry else "add"
                ops.append({"op": "test", "path": f"{base}/{o.index}/name", "value": o.name})
                ops.append({"op": verb, "path": f"{base}/{o.index}/value", "value": o.value})
                if "valueFrom" in entry:
                    ops.append({"op": "remove", "path": f"{base}/{o.index}/valueFrom"})
            elif o.op == "remove":
                ops.append({"op": "test", "path": f"{base}/{o.index}/name", "value": o.name})
                ops.append({"op": "remove", "path": f"{base}/{o.index}"})
        for o in m.ops:
            if o.op == "append":
                ops.append({"op": "add", "path": f"{base}/-", "value": {"name": o.name, "value": o.value}})
    return ops


def clusterpolicy_patch(
    rec: Recipe,
    toolkit_env: EnvList | None,
    device_plugin_env: EnvList | None,
    *,
    has_cdi: bool = True,
    known: bool = True,
) -> str:
    """The JSON patch text, one operation per line (``kubectl patch --type=json -p '<this>'``)."""
    ops = clusterpolicy_ops(rec, toolkit_env, device_plugin_env, has_cdi=has_cdi, known=known)
    if not ops:
        return "[]"
    return "[\n" + ",\n".join("  " + json.dumps(op, separators=(", ", ": ")) for op in ops) + "\n]"


def kubectl_patch_command(patch: str, name: str = "cluster-policy") -> str:
    """``kubectl patch`` for the ClusterPolicy (cluster-scoped), the patch quoted for the shell."""
    return f"kubectl patch clusterpolicies.nvidia.com/{shlex.quote(name)} --type=json -p {shlex.quote(patch)}"


# Running pods on GPU nodes (GPU Feature Discovery's label) that request no nvidia.com/* resource,
# outside the operator's namespace: they may hold GPUs from before the fix, until restarted.
RUNNING_PODS_COMMAND = (
    "for node in $(kubectl get nodes -l nvidia.com/gpu.present=true -o name); do "
    'kubectl get pods -A --field-selector="spec.nodeName=${node#node/},status.phase=Running" -o json; done '
    '| jq -r \'.items[] | select(.metadata.namespace != "gpu-operator") '
    '| select([.spec.containers[].resources.limits // {} | keys[] | select(startswith("nvidia.com/"))] '
    '| length == 0) | "\\(.metadata.namespace)/\\(.metadata.name)"\''
)
