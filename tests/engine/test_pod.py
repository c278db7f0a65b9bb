"""End-to-end pod decisions on hand-built nodes, one row per path in gpu_operator.md §0/§4.

Expected values are typed from the research notes (toolkit_semantics.md §3, §5;
gpu_operator.md §0, §4 rows A-G) and the upstream code cited in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from gpuguard.engine.pod import decide_pod, plan_devices
from gpuguard.model.decision import ContainerDecision, Exposure
from gpuguard.model.node import (
    ContainerRuntime,
    DevicePlugin,
    Gpu,
    NodeProfile,
    NriPlugin,
    RuntimeHandler,
)
from gpuguard.model.pod import (
    Container,
    EnvFromSource,
    EnvVar,
    Pod,
    SecurityContext,
    ValueRef,
    Volume,
    VolumeMount,
)
from gpuguard.model.toolkit import Toolkit, ToolkitConfig
from gpuguard.model.version import v

GPUS = tuple(Gpu(f"GPU-{i}", str(i)) for i in range(4))
ONE = {"nvidia.com/gpu": 1}
CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
PLAIN = "busybox:1.36"
IMAGES = {
    CUDA: (
        "PATH=/usr/local/cuda/bin:/usr/bin",
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
    ),
    PLAIN: ("PATH=/usr/bin",),
}
NVIDIA = RuntimeHandler("nvidia", nvidia=True)
RUNC = RuntimeHandler("runc")


def node_a(**config: object) -> NodeProfile:
    """Row A: operator <= 25.3 defaults: nvidia is containerd's default runtime, envvar strategy."""
    return NodeProfile(
        toolkit=Toolkit(v("1.17.8"), ToolkitConfig(**config)),  # type: ignore[arg-type]
        runtime=ContainerRuntime("containerd", "nvidia", {"nvidia": NVIDIA, "runc": RUNC}),
        device_plugin=DevicePlugin(v("0.17.4")),
        gpus=GPUS,
        runtime_classes={"nvidia": "nvidia"},
    )


def node_jit(toolkit: str, id_strategy: str = "uuid") -> NodeProfile:
    """Row A with toolkit >= 1.18: the runtime's auto mode resolves to jit-cdi."""
    return replace(
        node_a(),
        toolkit=Toolkit(v(toolkit), ToolkitConfig()),
        device_plugin=DevicePlugin(v("0.18.0"), id_strategy=id_strategy),
    )


def node_hardened() -> NodeProfile:
    """Row A remediated: accept-envvar=false, accept-mounts=true, DEVICE_LIST_STRATEGY=volume-mounts."""
    node = node_a(accept_envvar_unprivileged=False, accept_volume_mounts=True)
    return replace(node, device_plugin=DevicePlugin(v("0.17.4"), list_strategies=("volume-mounts",)))


def node_seed_advice() -> NodeProfile:
    """The seed's advice without accept-mounts: volume-mounts strategy, accept-envvar=false only."""
    return replace(node_hardened(), toolkit=Toolkit(v("1.17.8"), ToolkitConfig(accept_envvar_unprivileged=False)))


def node_d(enable_cdi: bool = True) -> NodeProfile:
    """Row D: operator >= 25.10, CDI on: runc default, nvidia* RuntimeClasses, cdi-annotations,cdi-cri."""
    handlers = {
        "runc": RUNC,
        "nvidia": NVIDIA,
        "nvidia-cdi": RuntimeHandler("nvidia-cdi", nvidia=True, mode="cdi"),
        "nvidia-legacy": RuntimeHandler("nvidia-legacy", nvidia=True, mode="legacy"),
    }
    return NodeProfile(
        # The operator's toolkit installer writes skip-mode-detection = true (v1.13.0+): nvidia-legacy works.
        toolkit=Toolkit(
            v("1.18.0"),
            ToolkitConfig(mode="cdi", cdi_default_kind="management.nvidia.com/gpu", skip_mode_detection=True),
        ),
        runtime=ContainerRuntime("containerd", "runc", handlers, enable_cdi=enable_cdi),
        device_plugin=DevicePlugin(v("0.18.0"), list_strategies=("cdi-annotations", "cdi-cri")),
        gpus=GPUS,
        runtime_classes={"nvidia": "nvidia", "nvidia-cdi": "nvidia-cdi", "nvidia-legacy": "nvidia-legacy"},
    )


def node_c(mode: str = "cdi") -> NodeProfile:
    """Rows B/C: operator 23.3-25.3 with cdi.enabled: nvidia stays default, envvar,cdi-annotations.

    The toolkit gets annotation-prefixes nvidia.cdi.k8s.io/ and containerd passes those annotations
    (container_annotations = ["nvidia.cdi.k8s.io/*"]); cdi.default=true (row C) sets mode=cdi.
    """
    config = ToolkitConfig(
        mode=mode,
        cdi_default_kind="management.nvidia.com/gpu",
        cdi_annotation_prefixes=("nvidia.cdi.k8s.io/",),
        skip_mode_detection=True,
    )
    nvidia = RuntimeHandler("nvidia", nvidia=True, container_annotations=("nvidia.cdi.k8s.io/*",))
    return NodeProfile(
        toolkit=Toolkit(v("1.17.5"), config),
        runtime=ContainerRuntime("containerd", "nvidia", {"nvidia": nvidia, "runc": RUNC}, enable_cdi=True),
        device_plugin=DevicePlugin(
            v("0.17.1"), list_strategies=("envvar", "cdi-annotations"), cdi_annotation_prefix="nvidia.cdi.k8s.io/"
        ),
        gpus=GPUS,
        runtime_classes={"nvidia": "nvidia"},
    )


def node_e(toolkit: str = "1.20.0", any_namespace: bool = True) -> NodeProfile:
    """Row E: NRI plugin mode: no nvidia handler at all, devices come from pod annotations."""
    return NodeProfile(
        toolkit=Toolkit(v(toolkit), ToolkitConfig(mode="cdi", cdi_default_kind="management.nvidia.com/gpu")),
        runtime=ContainerRuntime("containerd", "runc", {"runc": RUNC}, enable_cdi=True),
        device_plugin=DevicePlugin(v("0.20.0"), list_strategies=("cdi-annotations", "cdi-cri")),
        gpus=GPUS,
        nri=NriPlugin(True, "gpu-operator", ("monitoring",), any_namespace),
    )


def node_crio_hook() -> NodeProfile:
    """Row A-crio: cri-o with the OCI hook for every container; the default handler is plain crun."""
    return NodeProfile(
        toolkit=Toolkit(v("1.17.8"), ToolkitConfig()),
        runtime=ContainerRuntime("cri-o", "crun", {"crun": RuntimeHandler("crun")}, oci_hook_all=True),
        device_plugin=DevicePlugin(v("0.17.4")),
        gpus=GPUS,
    )


def pod(
    *,
    image: str = CUDA,
    resources: dict[str, int] | None = None,
    env: tuple[EnvVar, ...] = (),
    env_from: tuple[EnvFromSource, ...] = (),
    security: SecurityContext | None = None,
    mounts: tuple[VolumeMount, ...] = (),
    volumes: tuple[Volume, ...] = (),
    runtime_class: str | None = None,
    namespace: str = "team",
    annotations: dict[str, str] | None = None,
) -> Pod:
    c = Container(
        "main",
        image=image,
        env=env,
        env_from=env_from,
        resources=resources or {},
        security=security or SecurityContext(),
        volume_mounts=mounts,
    )
    return Pod("p", namespace, (c,), volumes, annotations or {}, runtime_class_name=runtime_class)


@dataclass
class Row:
    id: str
    node: NodeProfile
    pod: Pod
    exposure: Exposure
    sees: tuple[str, ...] | None
    handler: str | None = None
    injected: tuple[str, ...] = ()
    error: str | None = None
    allocated: tuple[str, ...] = ()
    images: dict[str, tuple[str, ...]] = field(default_factory=lambda: IMAGES)


DEV = "/var/run/nvidia-container-devices"
HOST_NULL = (Volume("null", host_path="/dev/null", kind="hostPath"),)
ALL_MOUNT = (VolumeMount("null", f"{DEV}/all"),)
NVD_ALL = (EnvVar("NVIDIA_VISIBLE_DEVICES", "all"),)
NVD_VOID = (EnvVar("NVIDIA_VISIBLE_DEVICES", "void"),)
SYS_ADMIN = SecurityContext(capabilities_add=("SYS_ADMIN",))
PRIVILEGED = SecurityContext(privileged=True)
PLUGIN_GPU0 = "k8s.device-plugin.nvidia.com/gpu=GPU-0"

ROWS = [
    # --- Row A: nvidia default runtime, envvar strategy, accept-envvar=true (P1, P6) ---
    Row("A: request 1, plugin env wins over image all", node_a(), pod(resources=ONE),
        Exposure.DEVICES, ("GPU-0",), "nvidia", allocated=("GPU-0",)),
    Row("A: request 1, pod env all overrides the plugin (P6)", node_a(), pod(resources=ONE, env=NVD_ALL),
        Exposure.ALL, ("all",), "nvidia", allocated=("GPU-0",)),
    Row("A: no request, image all (P1)", node_a(), pod(),
        Exposure.ALL, ("all",), "nvidia"),
    Row("A: pod env void beats the image", node_a(), pod(env=NVD_VOID),
        Exposure.NONE, (), "nvidia"),
    Row("A: no request, plain image", node_a(), pod(image=PLAIN),
        Exposure.NONE, (), "nvidia"),
    Row("A: $(VAR) expansion builds all", node_a(),
        pod(image=PLAIN, env=(EnvVar("X", "all"), EnvVar("NVIDIA_VISIBLE_DEVICES", "$(X)"))),
        Exposure.ALL, ("all",), "nvidia"),
    Row("A: envFrom of an unknown ConfigMap makes the request unknown", node_a(),
        pod(image=PLAIN, env_from=(EnvFromSource("configMapRef", "gpu-settings"),)),
        Exposure.UNKNOWN, None, "nvidia"),
    Row("A: image not inspected: unknown", node_a(), pod(image="example.com/unknown:1"),
        Exposure.UNKNOWN, None, "nvidia"),
    Row("A: image not inspected but pod sets void", node_a(),
        pod(image="example.com/unknown:1", env=NVD_VOID),
        Exposure.NONE, (), "nvidia"),
    Row("A: privileged gets every host device (P4)", node_a(), pod(image=PLAIN, security=PRIVILEGED),
        Exposure.ALL, ("all",), "nvidia"),
    Row("A: hostPath /dev/null mount ignored without accept-mounts", node_a(),
        pod(image=PLAIN, volumes=HOST_NULL, mounts=ALL_MOUNT),
        Exposure.NONE, (), "nvidia"),
    Row("A: 5 GPUs on a 4-GPU node", node_a(), pod(resources={"nvidia.com/gpu": 5}),
        Exposure.FAILS, None, error="Insufficient nvidia.com/gpu: 5 needed, the node has 4"),
    # --- Row A hardened: accept-envvar=false, accept-mounts=true, volume-mounts ---
    Row("A-hardened: request 1 gets its mount", node_hardened(), pod(resources=ONE, env=NVD_ALL),
        Exposure.DEVICES, ("GPU-0",), "nvidia", allocated=("GPU-0",)),
    Row("A-hardened: image all ignored when unprivileged", node_hardened(), pod(),
        Exposure.NONE, (), "nvidia"),
    Row("A-hardened: SYS_ADMIN counts as privileged", node_hardened(), pod(security=SYS_ADMIN),
        Exposure.ALL, ("all",), "nvidia"),
    Row("A-hardened: CAP_SYS_ADMIN spelling is not SYS_ADMIN on containerd", node_hardened(),
        pod(security=SecurityContext(capabilities_add=("CAP_SYS_ADMIN",))),
        Exposure.NONE, (), "nvidia"),
    Row("A-hardened: hostPath /dev/null at .../all gives every GPU", node_hardened(),
        pod(image=PLAIN, volumes=HOST_NULL, mounts=ALL_MOUNT),
        Exposure.ALL, ("all",), "nvidia"),
    # --- the seed's advice without accept-mounts: the placeholder is read as the env request ---
    Row("seed advice: unprivileged GPU pod silently gets nothing",
        node_seed_advice(),
        pod(resources=ONE), Exposure.NONE, (), "nvidia", allocated=("GPU-0",)),
    # --- toolkit 1.18 jit-cdi (runtime default since v1.18.0) ---
    Row("1.18.0 jit-cdi: none exposes every GPU (fixed in 1.18.2)", node_jit("1.18.0"),
        pod(image=PLAIN, env=(EnvVar("NVIDIA_VISIBLE_DEVICES", "none"),)), Exposure.ALL, ("all",), "nvidia"),
    Row("1.18.2 jit-cdi: none is libraries only", node_jit("1.18.2"),
        pod(image=PLAIN, env=(EnvVar("NVIDIA_VISIBLE_DEVICES", "none"),)), Exposure.LIBRARIES, (), "nvidia"),
    Row("1.18.2 jit-cdi: request 1 by index strategy", node_jit("1.18.2", id_strategy="index"),
        pod(resources=ONE), Exposure.DEVICES, ("GPU-0",), "nvidia", allocated=("GPU-0",)),
    # --- Rows B/C: operator 23.3-25.3 with CDI on ---
    Row("B: cdi.default=false: the env path as in row A", node_c("auto"), pod(resources=ONE, env=NVD_ALL),
        Exposure.ALL, ("all",), "nvidia", allocated=("GPU-0",)),
    Row("C: cdi mode prefers the plugin's annotations over pod env all", node_c(), pod(resources=ONE, env=NVD_ALL),
        Exposure.DEVICES, ("GPU-0",), "nvidia", allocated=("GPU-0",)),
    Row("C: no request, image all: management all (P1)", node_c(), pod(),
        Exposure.ALL, ("all",), "nvidia"),
    # --- cri-o hook mode ---
    Row("A-crio: the hook runs for every container", node_crio_hook(), pod(),
        Exposure.ALL, ("all",), "crun"),
    # --- Row D: operator >= 25.10, CDI on ---
    Row("D: plain pod, image all: runc, no GPU", node_d(), pod(),
        Exposure.NONE, (), "runc"),
    Row("D: runtimeClassName nvidia, no request, image all (P2)", node_d(), pod(runtime_class="nvidia"),
        Exposure.ALL, ("all",), "nvidia"),
    Row("D: nvidia-legacy, image all", node_d(), pod(runtime_class="nvidia-legacy"),
        Exposure.ALL, ("all",), "nvidia-legacy"),
    Row("D: request 1, no class: native CDI injection", node_d(), pod(resources=ONE),
        Exposure.DEVICES, ("GPU-0",), "runc", (PLUGIN_GPU0,), allocated=("GPU-0",)),
    # The injected CDI spec appends NVIDIA_VISIBLE_DEVICES=void, so the image's all does not survive.
    Row("D: request 1 + runtimeClassName nvidia + pod env all: CDI spec sets void", node_d(),
        pod(resources=ONE, runtime_class="nvidia", env=NVD_ALL),
        Exposure.DEVICES, ("GPU-0",), "nvidia", (PLUGIN_GPU0,), allocated=("GPU-0",)),
    # No native CDI: the plugin sets no env at all, so the image's all reaches the runtime.
    Row("D without enable_cdi: request 1 + nvidia: image all survives", node_d(enable_cdi=False),
        pod(resources=ONE, runtime_class="nvidia"),
        Exposure.ALL, ("all",), "nvidia", allocated=("GPU-0",)),
    Row("D: RuntimeClass naming the default handler", replace(node_d(), runtime_classes={"plain": "runc"}),
        pod(runtime_class="plain"), Exposure.NONE, (), "runc"),
    Row("D: unknown RuntimeClass: not admitted", node_d(), pod(runtime_class="gpu"),
        Exposure.FAILS, None, error='pod rejected: RuntimeClass "gpu" not found'),
    Row("D: RuntimeClass whose handler is not configured",
        replace(node_d(), runtime_classes={"nvidia": "nv2"}),
        pod(runtime_class="nvidia"),
        Exposure.FAILS, None, error='failed to create containerd task: no runtime for "nv2" is configured'),
    # --- Row E: NRI plugin ---
    Row("E 1.20: specific GPUs by annotation from any namespace (P3)", node_e(),
        pod(image=PLAIN, annotations={
            "nvidia.cdi.k8s.io/container.main":
                "k8s.device-plugin.nvidia.com/gpu=GPU-1,k8s.device-plugin.nvidia.com/gpu=GPU-2"}),
        Exposure.DEVICES, ("GPU-1", "GPU-2"), "runc",
        ("k8s.device-plugin.nvidia.com/gpu=GPU-1", "k8s.device-plugin.nvidia.com/gpu=GPU-2")),
    Row("E 1.20: management device refused outside the allowed namespaces", node_e(),
        pod(image=PLAIN, annotations={"nvidia.cdi.k8s.io/container.main": "management.nvidia.com/gpu=all"}),
        Exposure.NONE, (), "runc"),
    Row("E 1.20: management device in the operator namespace", node_e(),
        pod(image=PLAIN, namespace="gpu-operator",
            annotations={"nvidia.cdi.k8s.io/container.main": "management.nvidia.com/gpu=all"}),
        Exposure.ALL, ("all",), "runc", ("management.nvidia.com/gpu=all",)),
    Row("E 1.20: management device in a management namespace", node_e(),
        pod(image=PLAIN, namespace="monitoring",
            annotations={"nvidia.cdi.k8s.io/pod": "management.nvidia.com/gpu=all"}),
        Exposure.ALL, ("all",), "runc", ("management.nvidia.com/gpu=all",)),
    Row("E 1.19: any device refused outside the toolkit namespace", node_e("1.19.0", any_namespace=False),
        pod(image=PLAIN,
            annotations={"nvidia.cdi.k8s.io/container.main": "k8s.device-plugin.nvidia.com/gpu=GPU-3"}),
        Exposure.NONE, (), "runc"),
    Row("E 1.19: toolkit namespace", node_e("1.19.0", any_namespace=False),
        pod(image=PLAIN, namespace="gpu-operator",
            annotations={"nvidia.cdi.k8s.io": "k8s.device-plugin.nvidia.com/gpu=GPU-3"}),
        Exposure.DEVICES, ("GPU-3",), "runc", ("k8s.device-plugin.nvidia.com/gpu=GPU-3",)),
    Row("E: container-scoped annotation beats pod-scoped", node_e(),
        pod(image=PLAIN, annotations={
            "nvidia.cdi.k8s.io/pod": "k8s.device-plugin.nvidia.com/gpu=GPU-1",
            "nvidia.cdi.k8s.io/container.main": "k8s.device-plugin.nvidia.com/gpu=GPU-2"}),
        Exposure.DEVICES, ("GPU-2",), "runc", ("k8s.device-plugin.nvidia.com/gpu=GPU-2",)),
    Row("E: an unresolvable CDI device fails the container", node_e(),
        pod(image=PLAIN,
            annotations={"nvidia.cdi.k8s.io/container.main": "k8s.device-plugin.nvidia.com/gpu=GPU-9"}),
        Exposure.FAILS, None, "runc",
        error="unresolvable CDI devices k8s.device-plugin.nvidia.com/gpu=GPU-9"),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_decide_pod(row: Row) -> None:
    (got,) = decide_pod(row.pod, row.node, image_env=row.images)
    assert got.exposure == row.exposure, got.trail
    assert got.sees == row.sees, got.trail
    assert got.handler == row.handler
    assert got.injected == row.injected
    assert got.error == row.error
    assert got.allocated == row.allocated
    assert got.trail, "every decision explains itself"


def test_overreach() -> None:
    (ok,) = decide_pod(pod(resources=ONE), node_a(), image_env=IMAGES)
    (bad,) = decide_pod(pod(resources=ONE, env=NVD_ALL), node_a(), image_env=IMAGES)
    assert not ok.overreach
    assert bad.overreach


def test_unknown_names_why() -> None:
    (got,) = decide_pod(pod(image="example.com/unknown:1"), node_a(), image_env=IMAGES)
    assert got.unknown
    assert any("example.com/unknown:1" in why for why in got.unknown)


def test_secret_resolved_when_known_and_missing_key_fails() -> None:
    ref = ValueRef("secretKeyRef", "gpu", "devices")
    p = pod(image=PLAIN, env=(EnvVar("NVIDIA_VISIBLE_DEVICES", value_from=ref),))
    (known,) = decide_pod(p, node_a(), image_env=IMAGES, objects={("team", "Secret", "gpu"): {"devices": "GPU-2"}})
    assert (known.exposure, known.sees) == (Exposure.DEVICES, ("GPU-2",))
    (unknown,) = decide_pod(p, node_a(), image_env=IMAGES)
    assert unknown.exposure == Exposure.UNKNOWN
    (fails,) = decide_pod(p, node_a(), image_env=IMAGES, objects={("team", "Secret", "gpu"): {}})
    assert fails.exposure == Exposure.FAILS
    assert fails.error == "couldn't find key devices in Secret team/gpu"


def test_unknown_request_does_not_matter_without_the_toolkit() -> None:
    p = pod(image="example.com/unknown:1", env_from=(EnvFromSource("secretRef", "x"),))
    (got,) = decide_pod(p, node_d(), image_env=IMAGES)
    assert (got.exposure, got.sees, got.toolkit) == (Exposure.NONE, (), None)


def test_pass_device_specs_give_device_nodes_even_when_the_toolkit_does_nothing() -> None:
    node = replace(node_a(), device_plugin=DevicePlugin(v("0.17.4"), pass_device_specs=True))
    (got,) = decide_pod(pod(resources=ONE, env=NVD_VOID), node, image_env=IMAGES)
    assert (got.exposure, got.sees) == (Exposure.DEVICES, ("GPU-0",))


def test_seed_advice_privileged_placeholder_fails() -> None:
    node = node_seed_advice()
    (got,) = decide_pod(pod(resources=ONE, security=PRIVILEGED), node, image_env=IMAGES)
    assert got.exposure == Exposure.FAILS
    assert got.error == "nvidia-container-cli: device error: /var/run/nvidia-container-devices: unknown device"


def test_no_device_plugin_fails_a_gpu_request() -> None:
    node = replace(node_a(), device_plugin=None)
    (got,) = decide_pod(pod(resources=ONE), node, image_env=IMAGES)
    assert (got.exposure, got.error) == (
        Exposure.FAILS,
        "no device plugin serves nvidia.com/gpu on this node",
    )


def _multi() -> Pod:
    return Pod(
        "p",
        "team",
        (
            Container("app", image=PLAIN, resources={"nvidia.com/gpu": 2}),
            Container("setup", image=PLAIN, kind="initContainer", resources=ONE),
            Container("debug", image=PLAIN, kind="ephemeralContainer", resources=ONE),
            Container("sidecar", image=PLAIN, resources=ONE),
        ),
    )


def test_order_and_allocation_of_init_app_and_ephemeral_containers() -> None:
    got = decide_pod(_multi(), node_a(), image_env=IMAGES)
    assert [(d.container, d.kind, d.requested, d.allocated) for d in got] == [
        ("setup", "initContainer", 1, ("GPU-0",)),
        ("app", "container", 2, ("GPU-0", "GPU-1")),
        ("sidecar", "container", 1, ("GPU-2",)),
        ("debug", "ephemeralContainer", 0, ()),
    ]
    assert [d.sees for d in got] == [("GPU-0",), ("GPU-0", "GPU-1"), ("GPU-2",), ()]


def test_plan_devices_counts_every_nvidia_resource() -> None:
    p = Pod("p", containers=(Container("a", resources={"nvidia.com/gpu": 1, "nvidia.com/mig-1g.10gb": 1}),))
    assert plan_devices(p, GPUS) == {"a": GPUS[:2]}


def test_hami_amounts_are_not_devices() -> None:
    """HAMi sizes a share of one GPU with nvidia.com/gpumem and gpucores: still one device."""
    shares = {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 3000, "nvidia.com/gpucores": 30}
    p = Pod("p", containers=(Container("a", resources=shares),))
    assert plan_devices(p, GPUS) == {"a": GPUS[:1]}


def test_decision_records_the_toolkit_decision() -> None:
    (got,) = decide_pod(pod(), node_a(), image_env=IMAGES)
    assert isinstance(got, ContainerDecision)
    assert got.toolkit is not None
    assert got.toolkit.devices == ("all",)
    rules = [s.rule for s in got.trail]
    assert rules[0] == "k8s.runtime-class"
    assert rules[-1] == "k8s.sees"
