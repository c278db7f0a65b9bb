"""A GPU node as gpuguard models it: toolkit, container runtime, device plugin, GPUs.

A ``NodeProfile`` is built from a GPU Operator release and its ClusterPolicy or
Helm values (``gpuguard.engine.operator``), from explicit settings, or later
from a live node. ``origin`` records where each setting came from, so an
explanation can name the input it read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuguard.model.toolkit import Toolkit
from gpuguard.model.version import Version

NVIDIA_RESOURCE_PREFIX = "nvidia.com/"
# The device plugin env the GPU Operator chart's values.yaml shipped before 25.3.3 (commit 1a1a5a1e moved
# it into the operator's asset and left devicePlugin.env: []). A values file that sets devicePlugin.env
# replaces this list, so a remedy for those releases must restate it.
CHART_DEVICE_PLUGIN_ENV: tuple[tuple[str, str], ...] = (
    ("PASS_DEVICE_SPECS", "true"),
    ("FAIL_ON_INIT_ERROR", "true"),
    ("DEVICE_LIST_STRATEGY", "envvar"),
    ("DEVICE_ID_STRATEGY", "uuid"),
    ("NVIDIA_VISIBLE_DEVICES", "all"),
    ("NVIDIA_DRIVER_CAPABILITIES", "all"),
)

# nvidia.com/* resources that measure an amount of a shared GPU (HAMi), not a number of devices.
NVIDIA_AMOUNT_RESOURCES = frozenset(
    {"nvidia.com/gpumem", "nvidia.com/gpumem-percentage", "nvidia.com/gpucores", "nvidia.com/priority"}
)


@dataclass(frozen=True, slots=True)
class RuntimeHandler:
    """A containerd/cri-o runtime handler (what a RuntimeClass ``handler`` names)."""

    name: str
    nvidia: bool = False  # runs nvidia-container-runtime
    mode: str | None = None  # forced toolkit mode: "cdi" for nvidia-cdi, "legacy" for nvidia-legacy
    container_annotations: tuple[str, ...] = ()  # CRI annotation patterns passed into the OCI spec
    privileged_without_host_devices: bool = False


@dataclass(frozen=True, slots=True)
class ContainerRuntime:
    """The node's CRI runtime configuration."""

    kind: str = "containerd"  # "containerd" | "cri-o"
    default_handler: str = "nvidia"
    handlers: Mapping[str, RuntimeHandler] = field(default_factory=dict)
    enable_cdi: bool = False  # the CRI runtime injects CDI devices itself (cdi-cri, CDI annotations)
    oci_hook_all: bool = False  # cri-o hook mode: the NVIDIA hook runs for every container

    def handler(self, runtime_class_handler: str | None) -> RuntimeHandler | None:
        name = runtime_class_handler or self.default_handler
        return self.handlers.get(name)


@dataclass(frozen=True, slots=True)
class DevicePlugin:
    """NVIDIA k8s-device-plugin settings that shape its Allocate response."""

    version: Version
    list_strategies: tuple[str, ...] = ("envvar",)
    id_strategy: str = "uuid"
    pass_device_specs: bool = False
    cdi_annotation_prefix: str = "cdi.k8s.io/"
    imex_channel_ids: tuple[str, ...] = ()
    gds: bool = False
    mofed: bool = False
    gdrcopy: bool = False
    dev_root: str = "/"  # NVIDIA_DEV_ROOT: host root of device nodes in DeviceSpec.HostPath


@dataclass(frozen=True, slots=True)
class Gpu:
    """One allocatable GPU (or MIG device) as the device plugin names it."""

    uuid: str
    index: str
    # Device node paths the plugin passes with PASS_DEVICE_SPECS; empty means /dev/nvidia<index>
    # for a whole GPU with a numeric index (the usual minor number), nothing for MIG devices.
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NriPlugin:
    """The toolkit's NRI plugin (GPU Operator ≥ 26.3 with ``cdi.nriPluginEnabled``)."""

    enabled: bool = False
    operator_namespace: str = "gpu-operator"
    management_namespaces: tuple[str, ...] = ()  # NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES
    any_namespace_devices: bool = True  # toolkit >= 1.20: non-management devices from any namespace


@dataclass(frozen=True, slots=True)
class EnvOverride:
    """A user's env entry that the operator replaced (23.3.0-25.3.2: the CDI transform runs last)."""

    container: str  # "toolkit" | "devicePlugin"
    name: str
    user_value: str
    user_where: str  # e.g. "clusterPolicy.spec.devicePlugin.env[0]"
    effective: str
    why: str


@dataclass(frozen=True, slots=True)
class OperatorState:
    """The GPU Operator switches that decide the node, as the operator reads them."""

    cdi_enabled: bool = False
    cdi_default: bool = False
    toolkit_enabled: bool = True
    overrides: tuple[EnvOverride, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeProfile:
    """Everything the engine needs to know about one GPU node."""

    toolkit: Toolkit
    runtime: ContainerRuntime
    device_plugin: DevicePlugin | None
    gpus: tuple[Gpu, ...] = ()
    nri: NriPlugin = field(default_factory=NriPlugin)
    runtime_classes: Mapping[str, str] = field(default_factory=dict)  # RuntimeClass name -> handler
    operator_version: Version | None = None
    origin: Mapping[str, str] = field(default_factory=dict)  # setting -> where it came from
    assumed: bool = False  # True when nothing was known and the most exposed setup was assumed
    # Settings that could not be known (a host-installed toolkit), setting -> why; never read as safe.
    unknown: Mapping[str, str] = field(default_factory=dict)
    operator: OperatorState | None = None  # None when no GPU Operator renders this node
