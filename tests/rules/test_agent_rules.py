"""GG401-GG403: allocated vs held vs predicted GPUs of one container (hand-typed expectations)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from gpuguard.model.container import ContainerSpec
from gpuguard.model.decision import Decision
from gpuguard.model.finding import Resource, Severity
from gpuguard.model.observed import ContainerAllocation, DeviceNode, HeldDevices, NodeGpu, RuntimeContainer
from gpuguard.model.toolkit import Toolkit, ToolkitConfig
from gpuguard.model.version import Version
from gpuguard.rules.agent import gpu_of, judge_container, predict
from gpuguard.rules.settings import Allow, AuditSettings

U = [f"GPU-00000000-0000-0000-0000-00000000000{i}" for i in range(4)]
MIG_A = "MIG-aaaaaaaa-0000-0000-0000-000000000000"
GPUS = (NodeGpu(0, U[0]), NodeGpu(1, U[1]), NodeGpu(2, U[2], mig_uuids=(MIG_A,)), NodeGpu(3, U[3]))
ALL = frozenset(U)
TOOLKIT = Toolkit(Version.parse("1.17.8"), ToolkitConfig())
HARDENED = Toolkit(Version.parse("1.17.8"), ToolkitConfig(accept_envvar_unprivileged=False))
CDI_TOOLKIT = Toolkit(Version.parse("1.18.0"), ToolkitConfig())
NVD = "NVIDIA_VISIBLE_DEVICES"
SYS_ADMIN = frozenset({"CAP_SYS_ADMIN", "CAP_CHOWN"})


def gpu(n: int) -> DeviceNode:
    return DeviceNode(f"nvidia{n}", 195, n, "gpu")


CTL = DeviceNode("nvidiactl", 195, 255, "control")
UVM = DeviceNode("nvidia-uvm", 508, 0, "uvm")
CAP = DeviceNode("nvidia-caps/nvidia-cap21", 237, 21, "caps")


@dataclass(frozen=True)
class Case:
    name: str
    held: tuple[DeviceNode, ...] | str | None  # a str: the scan's error
    devices: Mapping[str, tuple[str, ...]] | None  # None: no pod-resources entry
    env: tuple[str, ...] = ()
    expect_rules: tuple[str, ...] = ()
    expect_allocated: frozenset[str] = frozenset()
    expect_held: frozenset[str] | None = None
    expect_predicted: frozenset[str] | None = frozenset()
    expect_exempt: str | None = None
    namespace: str = "ml"
    pod: str = "job-1"
    privileged: bool = False
    linux_devices: tuple[DeviceNode, ...] = ()
    claims: tuple[str, ...] = ()
    toolkit: Toolkit = TOOLKIT
    spec_error: str | None = None
    settings: AuditSettings = field(default_factory=AuditSettings)


CASES = [
    Case("image env all, no request: every GPU, as predicted", (gpu(0), gpu(1), gpu(2), gpu(3), CTL, UVM), None,
         env=(f"{NVD}=all",), expect_rules=("GG401",), expect_held=ALL, expect_predicted=ALL),
    Case("allocated one GPU by UUID, holds it", (gpu(1), CTL), {"nvidia.com/gpu": (U[1],)}, env=(f"{NVD}={U[1]}",),
         expect_allocated=frozenset({U[1]}), expect_held=frozenset({U[1]}), expect_predicted=frozenset({U[1]})),
    Case("allocated one, holds two", (gpu(1), gpu(2)), {"nvidia.com/gpu": (U[1],)}, env=(f"{NVD}={U[1]}",),
         expect_rules=("GG402", "GG403"), expect_allocated=frozenset({U[1]}), expect_held=frozenset({U[1], U[2]}),
         expect_predicted=frozenset({U[1]})),
    Case("allocated one, holds another", (gpu(3),), {"nvidia.com/gpu": (U[0],)}, env=(f"{NVD}=all",),
         expect_rules=("GG402",), expect_allocated=frozenset({U[0]}), expect_held=frozenset({U[3]}),
         expect_predicted=frozenset({U[3]}), linux_devices=(gpu(3),), toolkit=HARDENED),
    Case("index strategy", (gpu(0),), {"nvidia.com/gpu": ("0",)}, env=(f"{NVD}=0",),
         expect_allocated=frozenset({U[0]}), expect_held=frozenset({U[0]}), expect_predicted=frozenset({U[0]})),
    Case("jit-cdi toolkit, index request", (gpu(2),), {"nvidia.com/gpu": ("2",)}, env=(f"{NVD}=2",),
         toolkit=CDI_TOOLKIT, expect_allocated=frozenset({U[2]}), expect_held=frozenset({U[2]}),
         expect_predicted=frozenset({U[2]})),
    Case("MIG device maps to its parent GPU", (gpu(2), CTL, CAP), {"nvidia.com/mig-1g.10gb": (MIG_A,)},
         env=(f"{NVD}={MIG_A}",), expect_allocated=frozenset({U[2]}), expect_held=frozenset({U[2]}),
         expect_predicted=frozenset({U[2]})),
    Case("time-slicing replica", (gpu(3),), {"nvidia.com/gpu": (f"{U[3]}::0",)}, env=(f"{NVD}={U[3]}",),
         expect_allocated=frozenset({U[3]}), expect_held=frozenset({U[3]}), expect_predicted=frozenset({U[3]})),
    Case("two replicas of one GPU still allow one GPU", (gpu(3), gpu(0)),
         {"nvidia.com/gpu": (f"{U[3]}::0", f"{U[3]}::1")}, env=(f"{NVD}={U[3]}",), expect_rules=("GG402", "GG403"),
         expect_allocated=frozenset({U[3]}), expect_held=frozenset({U[3], U[0]}), expect_predicted=frozenset({U[3]})),
    Case("nvidiactl and nvidia-uvm alone are no GPU", (CTL, UVM), None, expect_held=frozenset()),
    Case("other resources are no GPU allocation", (gpu(0),), {"example.com/fpga": ("fpga-1",)},
         env=(f"{NVD}=0",), expect_rules=("GG401",), expect_held=frozenset({U[0]}), expect_predicted=frozenset({U[0]})),
    Case("exited mid-scan: not judged", "process 4242 vanished", None, env=(f"{NVD}=all",), expect_predicted=ALL),
    Case("no running task: not judged", None, None, env=(f"{NVD}=all",), expect_predicted=ALL),
    Case("hardened toolkit, env request ignored, holds nothing", (), None, env=(f"{NVD}=all",), toolkit=HARDENED,
         expect_held=frozenset()),
    Case("hardened toolkit predicts nothing but it holds a GPU", (gpu(1),), None, env=(f"{NVD}=all",),
         toolkit=HARDENED, expect_rules=("GG401", "GG403"), expect_held=frozenset({U[1]})),
    Case("CDI-injected linux.devices are held by construction", (gpu(1), CTL), {"nvidia.com/gpu": (U[1],)},
         toolkit=HARDENED, linux_devices=(gpu(1),), expect_allocated=frozenset({U[1]}),
         expect_held=frozenset({U[1]}), expect_predicted=frozenset({U[1]})),
    Case("privileged without request: every GPU", (gpu(0), gpu(1), gpu(2), gpu(3)), None, privileged=True,
         expect_rules=("GG401",), expect_held=ALL, expect_predicted=ALL),
    Case("privileged that somehow holds one GPU", (gpu(0),), None, privileged=True,
         expect_rules=("GG401", "GG403"), expect_held=frozenset({U[0]}), expect_predicted=ALL),
    Case("spec not read: prediction unknown, ground truth still judged", (gpu(0),), None, spec_error="bad spec",
         expect_rules=("GG401",), expect_held=frozenset({U[0]}), expect_predicted=None),
    Case("GPU Operator device plugin in its namespace", (gpu(0), gpu(1), gpu(2), gpu(3)), None, privileged=True,
         namespace="gpu-operator", pod="nvidia-device-plugin-daemonset-x7k2p", expect_held=ALL, expect_predicted=ALL,
         expect_exempt="GPU Operator component (pod nvidia-device-plugin-daemonset-x7k2p, namespace gpu-operator): "
         "it reaches all GPUs by design"),
    Case("GPU Operator validator in its namespace, even against the prediction", (gpu(0),), None, env=(f"{NVD}=all",),
         namespace="gpu-operator", pod="nvidia-cuda-validator-abcde",
         expect_held=frozenset({U[0]}), expect_predicted=ALL,
         expect_exempt="GPU Operator component (pod nvidia-cuda-validator-abcde, namespace gpu-operator): "
         "it reaches all GPUs by design"),
    Case("operator-looking pod outside the trusted namespaces", (gpu(0), gpu(1), gpu(2), gpu(3)), None,
         privileged=True, namespace="default", pod="nvidia-device-plugin-daemonset-x7k2p", expect_rules=("GG401",),
         expect_held=ALL, expect_predicted=ALL),
    Case("allow-listed namespace", (gpu(2),), None, env=(f"{NVD}=2",), namespace="monitoring",
         settings=AuditSettings(allow=(Allow("DCGM exporter reads every GPU", namespace="monitoring"),)),
         expect_held=frozenset({U[2]}), expect_predicted=frozenset({U[2]}),
         expect_exempt="allow-listed: DCGM exporter reads every GPU"),
    Case("DRA claim holding one GPU", (gpu(0),), {}, claims=("ml/c: gpu.nvidia.com/node-1/gpu-0",),
         env=(f"{NVD}=0",), expect_held=frozenset({U[0]}), expect_predicted=frozenset({U[0]})),
    Case("DRA claim of one device, holds two", (gpu(0), gpu(1)), {}, claims=("ml/c: gpu.nvidia.com/node-1/gpu-0",),
         env=(f"{NVD}=0,1",), expect_rules=("GG402",), expect_held=frozenset({U[0], U[1]}),
         expect_predicted=frozenset({U[0], U[1]})),
    Case("allocated an id of no node GPU, holds one", (gpu(0),), {"nvidia.com/gpu": ("GPU-elsewhere",)},
         env=(f"{NVD}=0",), expect_held=frozenset({U[0]}), expect_predicted=frozenset({U[0]})),
    Case("a device minor the driver does not list", (gpu(9),), None, env=(f"{NVD}=all",),
         expect_rules=("GG401", "GG403"), expect_held=frozenset({"nvidia9"}), expect_predicted=ALL),
    Case("prediction names no node GPU: cannot say", (gpu(0),), {"nvidia.com/gpu": ("0",)}, env=(f"{NVD}=GPU-gone",),
         expect_allocated=frozenset({U[0]}), expect_held=frozenset({U[0]}), expect_predicted=None),
]  # fmt: skip


def container_of(case: Case) -> RuntimeContainer:
    bounding = SYS_ADMIN if case.privileged else frozenset({"CAP_CHOWN"})
    return RuntimeContainer(
        id="c0ffee" * 10 + "abcd", namespace=case.namespace, pod=case.pod, container="main", image="busybox:1.36",
        status="running", pid=4242, spec=ContainerSpec(env=case.env, bounding=bounding),
        linux_devices=case.linux_devices, privileged=case.privileged, error=case.spec_error,
    )  # fmt: skip


def judge(case: Case):  # type: ignore[no-untyped-def]
    c = container_of(case)
    if case.held is None:
        held = None
    elif isinstance(case.held, str):
        held = HeldDevices(c.id, error=case.held)
    else:
        held = HeldDevices(c.id, case.held)
    allocation = None
    if case.devices is not None:
        allocation = ContainerAllocation(case.namespace, case.pod, "main", case.devices, case.claims)
    return judge_container(c, held, allocation, GPUS, predict(c, case.toolkit), node="gpu-node-1",
                           settings=case.settings)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict(case: Case) -> None:
    verdict = judge(case)
    assert tuple(f.rule_id for f in verdict.findings) == case.expect_rules
    assert verdict.allocated == case.expect_allocated
    assert verdict.held == case.expect_held
    assert verdict.predicted == case.expect_predicted
    assert verdict.exempt == case.expect_exempt
    for f in verdict.findings:
        assert f.node == "gpu-node-1"
        assert f.resource == Resource("v1", "Pod", case.namespace, case.pod)
        assert f.container == "main"
        assert [s.rule for s in f.trail] == ["agent.allocated", "agent.held", "agent.predicted"]
        assert f.remediation


def test_findings_say_what_was_read() -> None:
    verdict = judge(CASES[2])  # allocated U1, holds U1 and U2
    gg402 = verdict.findings[0]
    assert gg402.severity is Severity.HIGH
    assert gg402.message == (
        f"Container main of pod ml/job-1 holds {U[1]}, {U[2]}; allocated {U[1]}: {U[2]} beyond its allocation"
    )
    allocated, held, predicted = gg402.trail
    assert allocated.read == f"kubelet pod-resources List: nvidia.com/gpu=[{U[1]}]"
    assert held.read == "/dev NVIDIA device nodes: nvidia1, nvidia2"
    assert predicted.says == f"predicts {U[1]}"
    assert verdict.findings[1].severity is Severity.MEDIUM


def test_control_nodes_are_noted_in_the_message() -> None:
    verdict = judge(CASES[0])
    assert verdict.findings[0].message.endswith(
        "(it also holds nvidiactl, nvidia-uvm: no GPU access without an nvidiaN node)"
    )


def test_sandbox_is_skipped() -> None:
    c = RuntimeContainer(id="pause", namespace="ml", pod="job-1", container=None, sandbox=True, pid=1)
    verdict = judge_container(c, HeldDevices("pause", (gpu(0),)), None, GPUS, None, node="n")
    assert (verdict.findings, verdict.held, verdict.predicted, verdict.exempt) == ((), None, None, None)


def test_container_without_kubernetes_labels() -> None:
    c = RuntimeContainer(id="f" * 64, namespace=None, pod=None, container=None, pid=7)
    verdict = judge_container(c, HeldDevices(c.id, (gpu(1),)), None, GPUS, None, node="n")
    (finding,) = verdict.findings
    assert (finding.rule_id, finding.resource, finding.container) == ("GG401", None, "f" * 64)
    assert finding.subject == f"containerd container {'f' * 64}"
    assert verdict.predicted is None  # no decision given, not privileged: the engine cannot say


def test_unknown_node_gpus() -> None:
    """The driver's GPU list could not be read: device minors stand in, "every GPU" cannot be said."""
    c = RuntimeContainer(id="x", namespace="ml", pod="p", container="c", pid=7, privileged=True)
    allocation = ContainerAllocation("ml", "p", "c", {"nvidia.com/gpu": (U[0],)})
    verdict = judge_container(c, HeldDevices("x", (gpu(0), gpu(1))), allocation, (), None, node="n")
    assert verdict.allocated == frozenset()
    assert verdict.held == frozenset({"nvidia0", "nvidia1"})
    assert verdict.predicted is None
    assert [f.rule_id for f in verdict.findings] == ["GG402"]  # two GPUs held, one device allocated
    assert (
        verdict.findings[0].message
        == "Container c of pod ml/p holds 2 GPUs (nvidia0, nvidia1) but was allocated 1 device(s)"
    )


def test_no_prediction_gives_no_gg403() -> None:
    c = RuntimeContainer(id="x", namespace="ml", pod="p", container="c", pid=7)
    allocation = ContainerAllocation("ml", "p", "c", {"nvidia.com/gpu": (U[0],)})
    verdict = judge_container(c, HeldDevices("x", (gpu(0),)), allocation, GPUS, None, node="n")
    assert verdict.findings == ()


def test_undecidable_prediction() -> None:
    c = RuntimeContainer(id="x", namespace="ml", pod="p", container="c", pid=7)
    unknown = Decision(devices=None, mode="legacy", unknown=("NVIDIA_VISIBLE_DEVICES from secret s",))
    verdict = judge_container(c, HeldDevices("x", (gpu(0),)), None, GPUS, unknown, node="n")
    assert verdict.predicted is None
    assert [f.rule_id for f in verdict.findings] == ["GG401"]
    assert verdict.findings[0].trail[2].says == "cannot say: NVIDIA_VISIBLE_DEVICES from secret s"


@pytest.mark.parametrize(
    ("device_id", "gpus", "expected"),
    [
        (U[2], GPUS, U[2]),
        ("3", GPUS, U[3]),
        (MIG_A, GPUS, U[2]),
        ("2:0", GPUS, U[2]),  # MIG index strategy: <gpu index>:<mig index>
        (f"MIG-{U[1]}/1/0", GPUS, U[1]),  # MIG UUIDs of drivers before R470
        ("4", GPUS, None),
        ("GPU-unknown", GPUS, None),
        ("0", (), None),
    ],
)
def test_gpu_of(device_id: str, gpus: Sequence[NodeGpu], expected: str | None) -> None:
    assert gpu_of(device_id, gpus) == expected


@pytest.mark.parametrize(("binary", "sees_all"), [
    ("/usr/local/nvidia/toolkit/nvidia-container-runtime", True),  # the GPU Operator's `nvidia` handler
    ("/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi", True),  # `nvidia-cdi`
    ("/usr/bin/nvidia-container-runtime.legacy", True),  # `nvidia-legacy`
    (None, True),  # containerd does not say which binary: the NVIDIA runtime is assumed (never read as safe)
    ("", False),  # runc options with no BinaryName: plain runc
    ("/usr/sbin/runc", False),
    ("/usr/bin/crun", False),
])
def test_only_the_nvidia_runtime_reads_the_device_request(binary: str | None, sees_all: bool) -> None:
    c = RuntimeContainer("c1", "ml", "nb-0", "main", spec=ContainerSpec(env=(f"{NVD}=all",)), runtime_binary=binary)
    verdict = judge_container(c, HeldDevices("c1", ()), None, GPUS, predict(c, TOOLKIT), node="gpu-1")
    assert verdict.predicted == (ALL if sees_all else frozenset())
    # it holds nothing: with the NVIDIA runtime the prediction (all) disagrees with reality (GG403)
    assert [f.rule_id for f in verdict.findings] == (["GG403"] if sees_all else [])
