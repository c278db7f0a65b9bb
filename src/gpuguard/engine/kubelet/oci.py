"""A pod container as the CRI runtime writes its OCI spec, reduced to what the toolkit reads.

Capabilities, host device nodes, mounts and annotations follow containerd's
CRI plugin (``internal/cri/opts/spec_linux.go`` ``WithCapabilities``,
``WithPrivileged``/``WithHostDevices``, ``WithMounts``,
``getPassthroughAnnotations``) and kubelet's ``makeMounts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from gpuguard.engine.device_plugin.allocate import Allocation
from gpuguard.model.container import ContainerSpec, Mount
from gpuguard.model.node import RuntimeHandler
from gpuguard.model.pod import Container, Pod, SecurityContext


def _caps(names: str) -> frozenset[str]:
    return frozenset("CAP_" + name for name in names.split())


# Every capability of a current kernel (5.9+): what privileged / add ALL grants.
ALL_CAPS = _caps(
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
    "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
    "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
    "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
)
# containerd oci/spec.go defaultUnixCaps: the bounding set of an unprivileged container.
CONTAINERD_DEFAULT_CAPS = _caps(
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
    "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE"
)
# cri-o default_capabilities (crio.conf since 1.18).
CRIO_DEFAULT_CAPS = _caps("CHOWN DAC_OVERRIDE FSETID FOWNER SETGID SETUID SETPCAP NET_BIND_SERVICE KILL")
KUBELET_PODS_DIR = "/var/lib/kubelet/pods"


def _cap_name(name: str, runtime: str) -> str:
    """The OCI name a CRI capability becomes.

    containerd always prepends ``CAP_`` to the upper-cased name, so
    ``CAP_SYS_ADMIN`` in a pod becomes the unknown ``CAP_CAP_SYS_ADMIN`` and
    grants nothing; cri-o accepts both spellings.
    """
    upper = name.upper()
    if runtime == "cri-o" and upper.startswith("CAP_"):
        return upper
    return "CAP_" + upper


@lru_cache(maxsize=256)
def bounding_set(security: SecurityContext, runtime: str = "containerd") -> frozenset[str]:
    """The capability bounding set the toolkit sees (``CAP_SYS_ADMIN`` there = "privileged").

    Privileged ignores add/drop. Otherwise ``add: [ALL]`` first grants all,
    ``drop: [ALL]`` then clears, and the named adds and drops apply after, so
    ``drop: [ALL], add: [SYS_ADMIN]`` keeps ``CAP_SYS_ADMIN``.
    """
    if security.privileged:
        return ALL_CAPS
    caps = set(CRIO_DEFAULT_CAPS if runtime == "cri-o" else CONTAINERD_DEFAULT_CAPS)
    adds = security.capabilities_add
    drops = security.capabilities_drop
    if any(c.upper() == "ALL" for c in adds):
        caps = set(ALL_CAPS)
    if any(c.upper() == "ALL" for c in drops):
        caps = set()
    caps.update(_cap_name(c, runtime) for c in adds if c.upper() != "ALL")
    caps.difference_update(_cap_name(c, runtime) for c in drops if c.upper() != "ALL")
    return frozenset(caps)


def host_devices(security: SecurityContext, handler: RuntimeHandler | None) -> bool:
    """Privileged containers get every host device node, unless the handler says otherwise."""
    return security.privileged and not (handler is not None and handler.privileged_without_host_devices)


def volume_mounts(pod: Pod, container: Container) -> tuple[Mount, ...]:
    """hostPath volume mounts as OCI mounts (other volume kinds never source host files we care about).

    Without ``subPath`` the source is the hostPath path as written. With one,
    kubelet bind-mounts the sub path into its own directory first
    (``subpather.PrepareSafeSubpath``) and that directory is the source, so
    hostPath ``/dev`` + subPath ``null`` is not a ``/dev/null`` source.
    """
    volumes = {vol.name: vol for vol in pod.volumes}
    mounts: list[Mount] = []
    for i, vm in enumerate(container.volume_mounts):
        vol = volumes.get(vm.name)
        if vol is None or vol.host_path is None:
            continue
        if vm.sub_path:
            source = f"{KUBELET_PODS_DIR}/<{pod.name}-uid>/volume-subpaths/{vol.name}/{container.name}/{i}"
        else:
            source = vol.host_path
        mounts.append(Mount(source, vm.mount_path))
    return tuple(mounts)


def _depth(path: str) -> int:
    return sum(1 for part in path.split("/") if part and part != ".") + 1


def merge_mounts(plugin: Sequence[Mount], volumes: Sequence[Mount]) -> tuple[Mount, ...]:
    """Kubelet lists device-plugin mounts before volume mounts; containerd sorts them stably by depth."""
    return tuple(sorted((*plugin, *volumes), key=lambda m: _depth(m.destination)))


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` never match ``/``; ``[...]`` classes; ``\\`` escapes."""
    return _match(pattern, 0, name, 0)


def _match(p: str, i: int, s: str, j: int) -> bool:
    while i < len(p):
        c = p[i]
        if c == "*":
            while i < len(p) and p[i] == "*":
                i += 1
            if i == len(p):
                return "/" not in s[j:]
            for k in range(j, len(s) + 1):
                if _match(p, i, s, k):
                    return True
                if k < len(s) and s[k] == "/":
                    return False
            return False
        if j >= len(s):
            return False
        if c == "?":
            if s[j] == "/":
                return False
            i += 1
            j += 1
            continue
        if c == "[":
            end = p.find("]", i + 1)
            if end < 0:
                return False  # ErrBadPattern: no match
            body = p[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            hit = _in_class(body, s[j])
            if hit == negate or s[j] == "/":
                return False
            i = end + 1
            j += 1
            continue
        if c == "\\" and i + 1 < len(p):
            i += 1
            c = p[i]
        if s[j] != c:
            return False
        i += 1
        j += 1
    return j == len(s)


def _in_class(body: str, ch: str) -> bool:
    k = 0
    while k < len(body):
        lo = body[k]
        if k + 2 < len(body) and body[k + 1] == "-":
            if lo <= ch <= body[k + 2]:
                return True
            k += 3
            continue
        if lo == ch:
            return True
        k += 1
    return False


def oci_annotations(
    cri_annotations: Mapping[str, str], handler: RuntimeHandler | None, runtime: str = "containerd"
) -> dict[str, str]:
    """CRI container annotations that reach the OCI spec.

    Only the device plugin puts annotations on the CRI container config; pod
    annotations go to the sandbox and never reach a container's spec here.
    containerd keeps the keys matching the handler's ``container_annotations``
    (``path.Match``; the toolkit installer writes ``<prefix>*``). cri-o is
    modelled as passing them all, the exposed reading.
    """
    if not cri_annotations:
        return {}
    if runtime == "cri-o":
        return dict(cri_annotations)
    patterns = handler.container_annotations if handler is not None else ()
    return {k: val for k, val in cri_annotations.items() if any(path_match(p, k) for p in patterns)}


def container_spec(
    pod: Pod,
    container: Container,
    *,
    env: tuple[str, ...],
    allocation: Allocation | None,
    handler: RuntimeHandler | None,
    runtime: str = "containerd",
    unknown_env: Mapping[str, str] | None = None,
    image_env_unknown: str | None = None,
) -> ContainerSpec:
    """The parts of the container's OCI spec that decide GPU exposure."""
    plugin_mounts = allocation.mounts if allocation is not None else ()
    mounts = merge_mounts(plugin_mounts, volume_mounts(pod, container))
    annotations = oci_annotations(allocation.annotations if allocation is not None else {}, handler, runtime)
    return ContainerSpec(
        env=env,
        bounding=bounding_set(container.security, runtime),
        mounts=mounts,
        annotations=annotations,
        unknown_env=dict(unknown_env or {}),
        image_env_unknown=image_env_unknown,
    )
