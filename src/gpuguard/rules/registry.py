"""Every rule as data: one ``RuleInfo`` per stable id, in id order.

This is the single registry: ``gpuguard rules``, ``docs/rules.md``, SARIF rule
metadata and the findings' default severities all read it. Ids never change
meaning; a retired rule keeps its id reserved. GG1xx judge workloads (one
container or one pod) and the images they run, GG2xx the node's configuration, GG3xx known advisories,
GG4xx the ground truth the node agent reads on a GPU node.
Rationales cite the research notes' sources (NVIDIA docs, issues, commits).
"""

from __future__ import annotations

from gpuguard.model.finding import RuleInfo, Severity

_DP_61 = "https://github.com/NVIDIA/k8s-device-plugin/issues/61"
_GOOGLE_DOC = "https://docs.google.com/document/d/1zy0key-EL6JH50MZgwg96RPYxxXXnVUdxLZwGiyqLd8"
_OP_421 = "https://github.com/NVIDIA/gpu-operator/issues/421"
_OP_1876 = "https://github.com/NVIDIA/gpu-operator/issues/1876"
_OP_1588 = "https://github.com/NVIDIA/gpu-operator/issues/1588"
_CDI_DOC = "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/cdi.html"
_TK_DOC = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/release-notes.html"
_PSS = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
_VAP = "https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/"
_RUNTIME_CLASS = "https://kubernetes.io/docs/concepts/containers/runtime-class/"
_SECURITY = "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/security.html"
_POD_RESOURCES = (
    "https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/device-plugins/"
    "#monitoring-device-plugin-resources"
)

_VOID = (
    "Set NVIDIA_VISIBLE_DEVICES=void in the container's env (not `none`: toolkit 1.18.0-1.18.1 "
    "gave every GPU for `none`)"
)


def _rule(  # noqa: PLR0917 - one row of the table, read positionally
    rule_id: str,
    title: str,
    severity: Severity,
    scope: str,
    rationale: str,
    remediation: str,
    *references: str,
) -> tuple[str, RuleInfo]:
    return rule_id, RuleInfo(rule_id, title, severity, rationale, remediation, tuple(references), scope)


RULES: dict[str, RuleInfo] = dict(
    (
        _rule(
            "GG101",
            "A container that requests no GPU still gets GPUs",
            Severity.HIGH,
            "container",
            "The device plugin's allocation is only accounting: when the NVIDIA runtime handles a "
            "container and honours NVIDIA_VISIBLE_DEVICES from unprivileged containers (the toolkit's "
            "default), a container without an nvidia.com/* request gets the GPUs its env names. CUDA "
            "and NGC base images set NVIDIA_VISIBLE_DEVICES=all, so the image alone is enough; an env "
            "entry or an envFrom ConfigMap/Secret does the same. The GPUs it uses are invisible to "
            "the scheduler and to per-pod GPU metrics.",
            f"{_VOID}, or request the GPUs it needs (nvidia.com/gpu). Node-wide: stop the toolkit "
            "honouring the variable from unprivileged containers (see GG201), then restart the pod: "
            "running containers keep the GPUs they got.",
            _DP_61,
            _GOOGLE_DOC,
            _OP_421,
            "https://github.com/NVIDIA/k8s-device-plugin/issues/1596",
        ),
        _rule(
            "GG102",
            "A container that requests GPUs gets more than it was allocated",
            Severity.HIGH,
            "container",
            "Kubelet applies the pod's own env after the device plugin's, so a container that requests "
            "one GPU but sets NVIDIA_VISIBLE_DEVICES=all overrides the plugin's list (envvar strategy). "
            "A runtime class that sends the container through the NVIDIA runtime can let the image's "
            "NVIDIA_VISIBLE_DEVICES=all through where the plugin's devices do not replace it, and "
            "privileged containers get every device node. The extra GPUs are shared with "
            "other pods without the scheduler knowing.",
            "Remove NVIDIA_VISIBLE_DEVICES (and runtimeClassName: nvidia*) from the pod spec and let the "
            "device plugin's allocation decide; drop privileged. Node-wide: see GG201/GG202.",
            _DP_61,
            _OP_1588,
            _CDI_DOC,
        ),
        _rule(
            "GG103",
            "hostPath mount of NVIDIA device nodes or of /dev",
            Severity.HIGH,
            "container",
            "A hostPath volume of /dev, /dev/nvidia*, /dev/nvidia-caps or /dev/dri puts the host's GPU "
            "device nodes in the container, bypassing the device plugin and the toolkit. With a "
            "privileged container, or a device cgroup that allows them, every GPU is usable. No "
            "ordinary workload needs it; the GPU Operator's own operands are exempt.",
            "Remove the hostPath volume and request GPUs with resources.limits (nvidia.com/gpu). "
            "Enforce the Pod Security Standards baseline (which forbids hostPath) on workload namespaces.",
            _PSS,
            _GOOGLE_DOC,
        ),
        _rule(
            "GG104",
            "Privileged or SYS_ADMIN container without a GPU request",
            Severity.HIGH,
            "container",
            "The toolkit calls a container privileged when CAP_SYS_ADMIN is in its bounding set (not the "
            "Kubernetes privileged flag), and honours any device request from it even when "
            "accept-nvidia-visible-devices-envvar-when-unprivileged = false. A privileged container also "
            "gets every host device node, GPUs included. Hardening the toolkit does not cover it.",
            "Drop privileged: true and the SYS_ADMIN capability; request GPUs with nvidia.com/gpu if it "
            "needs them. Enforce Pod Security Standards baseline/restricted on workload namespaces.",
            _PSS,
            "https://github.com/NVIDIA/gpu-operator/issues/700",
            _GOOGLE_DOC,
        ),
        _rule(
            "GG105",
            "runtimeClassName selects an NVIDIA runtime handler outside trusted namespaces",
            Severity.MEDIUM,
            "pod",
            "The nvidia, nvidia-cdi and nvidia-legacy RuntimeClasses run the NVIDIA runtime even when "
            "it is not the node's default (GPU Operator >= 25.10). With the toolkit's default "
            "accept-nvidia-visible-devices-envvar-when-unprivileged = true, any container of such a pod "
            "that sets (or whose image sets) NVIDIA_VISIBLE_DEVICES=all gets every GPU, with or without "
            "a GPU request. NVIDIA's CDI docs still tell users to keep runtimeClassName: nvidia.",
            "Remove runtimeClassName from workloads outside the GPU Operator's namespaces: GPU requests "
            "work without it when CDI is on. Enforce it with a ValidatingAdmissionPolicy denying "
            "runtimeClassName in (nvidia, nvidia-cdi, nvidia-legacy) outside an allow-list of namespaces.",
            _CDI_DOC,
            _OP_1588,
            _RUNTIME_CLASS,
            _VAP,
        ),
        _rule(
            "GG106",
            "Workload sets CDI/NRI device annotations",
            Severity.HIGH,
            "pod",
            "CDI device annotations (cdi.k8s.io/*) and the toolkit NRI plugin's annotations "
            "(nvidia.cdi.k8s.io/container.<name>, /pod) ask the container runtime for devices directly. "
            "Only the device plugin should write them. In NRI plugin mode toolkit 1.20 (GPU Operator "
            "26.7) injects non-management devices for pods in any namespace, and management devices "
            "(management.nvidia.com/gpu=all) in the operator namespace and NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES.",
            "Remove the annotations and request GPUs with nvidia.com/gpu. Deny pod annotations with these "
            "prefixes outside the trusted namespaces with an admission policy; keep "
            "NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES empty or minimal.",
            _CDI_DOC,
            _VAP,
            "https://github.com/LMCache/LMCache/pull/5056",
        ),
        _rule(
            "GG107",
            "Forged volume-mount device request",
            Severity.CRITICAL,
            "container",
            "With accept-nvidia-visible-devices-as-volume-mounts = true (part of the recommended "
            "hardening), the toolkit reads the device list from /dev/null bind mounts under "
            "/var/run/nvidia-container-devices/, which only the device plugin should create. A workload "
            "that mounts hostPath /dev/null there itself requests any GPU it names, unprivileged, "
            "without an allocation.",
            "Remove the volume and its mount. Deny hostPath volumes in workload namespaces (Pod Security "
            "Standards baseline).",
            _GOOGLE_DOC,
            _PSS,
        ),
        _rule(
            "GG108",
            "GPU exposure cannot be decided",
            Severity.MEDIUM,
            "container",
            "The answer depends on an input the audit could not read: NVIDIA_VISIBLE_DEVICES from a "
            "ConfigMap or Secret that was not given, or the env of an image that was not inspected and "
            "belongs to a GPU software family whose images set the variable (NVIDIA CUDA/NGC, PyTorch, "
            "TensorFlow, Triton, vLLM, ...; the list is configurable). An unknown is never read as safe. "
            "Other uninspected images are assumed not to set it, and the report counts that assumption.",
            f"Give the audit the missing input (the ConfigMap/Secret, or inspect the image with "
            f"--resolve-images), or make the answer independent of it: {_VOID[0].lower()}{_VOID[1:]}.",
            _DP_61,
        ),
        _rule(
            "GG109",
            "A Dockerfile's final image sets or inherits a GPU-exposing NVIDIA_VISIBLE_DEVICES",
            Severity.MEDIUM,
            "image",
            "Only the final stage of a Dockerfile becomes the image, and it inherits its base image's env: "
            "everything built FROM nvcr.io/nvidia/cuda (or an NGC, PyTorch, Triton, vLLM ... image) carries "
            "NVIDIA_VISIBLE_DEVICES=all, and an older CUDA image with CUDA_VERSION but no NVIDIA_REQUIRE_CUDA "
            "is read by the toolkit as all. Every pod that runs the image without a GPU request then gets "
            "every GPU on nodes that honour the variable from unprivileged containers (the default). A base "
            "image of a GPU family whose env was not inspected leaves the answer undecided, never safe.",
            "Add `ENV NVIDIA_VISIBLE_DEVICES=void` after the last FROM (GPU pods still get the devices the "
            "device plugin allocates them), or run the image only in pods that request GPUs explicitly "
            "(nvidia.com/gpu). To decide an undecided base, audit with --resolve-images.",
            _DP_61,
            _GOOGLE_DOC,
            "https://docs.docker.com/reference/dockerfile/#env",
        ),
        _rule(
            "GG201",
            "Toolkit accepts device requests by env var from unprivileged containers",
            Severity.HIGH,
            "node",
            "accept-nvidia-visible-devices-envvar-when-unprivileged defaults to true and no GPU Operator "
            "release changes it. Every container the NVIDIA runtime (or cri-o's hook) handles can then "
            "ask for any GPU by env: all of them when nvidia is the default runtime (operator <= 25.3), "
            "and every pod that selects an nvidia runtime class on CDI-default releases (>= 25.10).",
            'Set toolkit.env ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED="false". Without CDI '
            'also set ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true" and the device plugin\'s '
            "DEVICE_LIST_STRATEGY=volume-mounts; in cdi mode set only the first (volume-mounts breaks GPU "
            "pods there, see GG203). The finding's remediation is fitted to the node's release and mode.",
            _GOOGLE_DOC,
            _DP_61,
            _OP_421,
            "https://github.com/NVIDIA/gpu-operator/issues/1027",
        ),
        _rule(
            "GG202",
            "Device plugin passes the device list as an env var",
            Severity.MEDIUM,
            "node",
            "With DEVICE_LIST_STRATEGY=envvar the plugin's allocation is an NVIDIA_VISIBLE_DEVICES value "
            "that the pod's own env overrides, and that only means something if the toolkit honours env "
            "requests from unprivileged containers: exactly what hardening turns off. On CDI-default "
            "releases a stale values file that re-adds envvar breaks GPU pods instead.",
            "Without CDI: devicePlugin.env DEVICE_LIST_STRATEGY=volume-mounts together with the toolkit "
            "settings of GG201. With CDI on (>= 25.10): remove DEVICE_LIST_STRATEGY from devicePlugin.env "
            "and keep the operator's cdi-annotations,cdi-cri.",
            _GOOGLE_DOC,
            "https://github.com/NVIDIA/nvidia-container-toolkit/issues/1895",
        ),
        _rule(
            "GG203",
            "Hardening that breaks GPU pods",
            Severity.MEDIUM,
            "node",
            "Half-applied hardening leaves GPU pods without GPUs: a volume-mounts strategy without "
            "accept-nvidia-visible-devices-as-volume-mounts = true (the toolkit ignores the mounts), "
            "volume-mounts in cdi mode (GPU UUIDs resolve against the management CDI spec: "
            "'unresolvable CDI devices management.nvidia.com/gpu=GPU-...'), or env requests refused "
            "while the plugin only passes env ('CUDA driver version is insufficient').",
            "Apply the recipe that fits the mode: without CDI, the three settings of GG201 together; in "
            "cdi mode, only ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED=false and no "
            "volume-mounts. Check a GPU pod still works after the change.",
            _OP_1876,
            "https://github.com/NVIDIA/nvidia-container-toolkit/issues/1239",
            "https://github.com/elastisys/compliantkubernetes-apps/pull/2473",
        ),
        _rule(
            "GG204",
            "Toolkit key under the wrong TOML table is silently ignored",
            Severity.MEDIUM,
            "node",
            "The toolkit reads accept-nvidia-visible-devices-* and the other top-level keys only from "
            "the root table of config.toml. Written after a [table] header they belong to that table "
            "and are ignored without a warning, so the node keeps the insecure default.",
            "Move the key above the first [table] header of config.toml (or set it through the GPU "
            "Operator's toolkit.env, which writes it in the right place).",
            "https://github.com/NVIDIA/gpu-operator/issues/1027",
            _DP_61,
        ),
        _rule(
            "GG205",
            "The operator overwrites the user's DEVICE_LIST_STRATEGY",
            Severity.HIGH,
            "node",
            "GPU Operator 23.3.0 to 25.3.2 with cdi.enabled=true set DEVICE_LIST_STRATEGY=envvar,"
            "cdi-annotations after applying devicePlugin.env, so a hardened volume-mounts strategy is "
            "silently replaced: the ClusterPolicy looks hardened, the DaemonSet is not. Fixed in 25.3.3 "
            "(commit 825a4c38, user env wins).",
            "Upgrade the GPU Operator to 25.3.3 or later, or set cdi.enabled=false, then re-apply the hardening.",
            "https://github.com/NVIDIA/gpu-operator/commit/825a4c38",
            _OP_421,
        ),
        _rule(
            "GG206",
            "The NVIDIA runtime is the node's default runtime",
            Severity.MEDIUM,
            "node",
            "When nvidia is containerd's default runtime (NVIDIA_RUNTIME_SET_AS_DEFAULT, true by default "
            "in the toolkit installer and on GPU Operator <= 25.3), or cri-o runs the NVIDIA hook for "
            "every container, every container on the node goes through the toolkit, so a CUDA image "
            "alone can bring every GPU. operator.defaultRuntime in old charts only names the CRI runtime.",
            "On GPU Operator >= 25.10 with CDI, do not set NVIDIA_RUNTIME_SET_AS_DEFAULT=true in "
            "toolkit.env. On older releases, or where the default must stay, turn off env requests from "
            "unprivileged containers (GG201).",
            _CDI_DOC,
            _GOOGLE_DOC,
        ),
        _rule(
            "GG207",
            "No admission control covers GPU exposure",
            Severity.MEDIUM,
            "cluster",
            "Node settings decide what a container gets; only admission control stops a pod that asks for "
            "GPUs it should not have (NVIDIA_VISIBLE_DEVICES in its env, a runtimeClassName that selects the "
            "NVIDIA runtime, nvidia.com/gpu requests in a namespace that must not have them) before it runs. "
            "The cluster has no gpuguard webhook (recognised by its /validate or /mutate service path and its "
            "gpuguard name or labels) and no Kyverno ClusterPolicy, Gatekeeper ConstraintTemplate or "
            "ValidatingAdmissionPolicy that mentions NVIDIA_VISIBLE_DEVICES, nvidia.com/gpu or runtimeClassName.",
            "Install the gpuguard admission webhook (deploy/helm/gpuguard) or export its policy as a "
            "ValidatingAdmissionPolicy, Kyverno or Gatekeeper policy (`gpuguard policy`).",
            _VAP,
            _PSS,
        ),
        _rule(
            "GG208",
            "A running pod still holds GPUs it obtained before hardening",
            Severity.HIGH,
            "cluster",
            "The toolkit decides what a container sees when the container is created: hardening the node "
            "(ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED=false, CDI, a new default runtime) does not "
            "take GPUs back from running containers. Heuristic: the pod's status.startTime is before the start "
            "of the toolkit DaemonSet's pod on its node (the last rollout there), and the engine gives its "
            "containers GPUs under the most exposed common configuration (the operator's pre-hardening "
            "defaults) but not under the node's current settings.",
            "Restart the pod (delete it, or `kubectl rollout restart` its workload) so that it is created "
            "under the current settings.",
            _OP_421,
            _SECURITY,
        ),
        _rule(
            "GG209",
            "GPUs shared by time-slicing or MPS across namespaces",
            Severity.MEDIUM,
            "cluster",
            "With time-slicing or MPS (device plugin config sharing.timeSlicing or sharing.mps with replicas > 1) "
            "several pods get the same physical GPU. Time-slicing gives no memory or fault isolation and MPS "
            "only limits memory: a pod can read timing, exhaust memory or crash the GPU for the others. Pods "
            "of two or more namespaces share the GPUs of one node.",
            "Where tenants must not see each other, use MIG partitions or dedicated GPUs (a node pool per "
            "tenant, with taints); keep time-slicing and MPS to pods of one namespace.",
            "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/gpu-sharing.html",
            "https://github.com/NVIDIA/k8s-device-plugin#shared-access-to-gpus",
        ),
        _rule(
            "GG301",
            "Toolkit or GPU Operator release with a known advisory",
            Severity.HIGH,
            "node",
            "The NVIDIA Container Toolkit and the GPU Operator that bundles it have had container-escape "
            "and host-tampering advisories (CVE-2024-0132 to 0137, CVE-2025-23359, CVE-2025-23266 "
            "'NVIDIAScape', CVE-2025-23267) and exposure bugs (NVIDIA_VISIBLE_DEVICES=none giving every "
            "GPU on toolkit 1.18.0-1.18.1). Some affect only legacy or only CDI mode. A finding's severity "
            "is that of the worst advisory that applies in the node's runtime modes.",
            "Upgrade the toolkit (toolkit.version) or the GPU Operator to the release the finding names; "
            "interim mitigations are listed per advisory.",
            _SECURITY,
            "https://nvidia.custhelp.com/app/answers/detail/a_id/5659",
            _TK_DOC,
        ),
        # GG4xx: ground truth on the node (the node agent: containerd, /proc, the kubelet's pod-resources API)
        _rule(
            "GG401",
            "A running container holds GPUs it was not allocated",
            Severity.HIGH,
            "container",
            "The node agent found NVIDIA GPU device nodes (/dev/nvidiaN) inside a running container's /dev while "
            "the kubelet's pod-resources API lists no nvidia.com/* device (and no DRA claim) for it. This is "
            "what GG101, GG103, GG104 and GG105 predict, observed: the container can use those GPUs now, "
            "invisible to the scheduler and to per-pod GPU metrics. nvidiactl and nvidia-uvm alone give no "
            "GPU and do not count. GPU Operator components and allow-listed workloads are exempt.",
            f"Find how it got the GPUs (the finding's trail; the image's or pod's NVIDIA_VISIBLE_DEVICES, "
            f"privileged, a hostPath of /dev, a runtime class) and remove it: {_VOID[0].lower()}{_VOID[1:]}, "
            "or request the GPUs it needs. Then restart the pod: a running container keeps its device nodes.",
            _DP_61,
            _POD_RESOURCES,
            _GOOGLE_DOC,
        ),
        _rule(
            "GG402",
            "A running container holds more GPUs than it was allocated",
            Severity.HIGH,
            "container",
            "The container was allocated nvidia.com/* devices, but its /dev holds device nodes of other or more "
            "GPUs than the kubelet's pod-resources API lists for it (device ids mapped to the node's GPUs: "
            "UUIDs, indices, MIG devices to their parent GPU, time-slicing replicas to their GPU). Those GPUs "
            "are shared with the pods they were allocated to, without the scheduler knowing: what GG102 "
            "predicts, observed.",
            "Remove NVIDIA_VISIBLE_DEVICES, privileged and hostPath /dev from the pod and let the device "
            "plugin's allocation decide; restart the pod. Node-wide: see GG201/GG202.",
            _DP_61,
            _POD_RESOURCES,
            _OP_1588,
        ),
        _rule(
            "GG403",
            "What a running container holds differs from what the engine predicted",
            Severity.MEDIUM,
            "container",
            "The engine predicted the container's GPUs from its OCI spec and the node's toolkit settings, and "
            "the device nodes in its /dev say otherwise. Either the toolkit configuration the agent read is not "
            "the one the container was created under (hardening applied after it started, a config file that "
            "is not the effective one), or something outside the toolkit added or removed devices (an NRI "
            "plugin, a CDI spec, a hook, a hostPath mount). Either way the audit's predictions for this node "
            "cannot be trusted until the difference is understood.",
            "Compare the finding's trail (allocated, held, predicted) with the toolkit's config.toml and its "
            "log; restart the pod if it predates the current settings, and fix the node's recorded settings "
            "(or the Helm values the audit reads) if they are not the effective ones.",
            _TK_DOC,
            _CDI_DOC,
        ),
    )
)


def rule(rule_id: str) -> RuleInfo:
    """The registered rule; ``KeyError`` names the unknown id."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r} (known: {', '.join(RULES)})") from None
