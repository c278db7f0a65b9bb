"""How fast is one toolkit decision? Run: ``.venv/bin/python benchmarks/bench_decide.py``.

Builds a mix of 10,000 containers (unprivileged CUDA images, void, volume-mount
requests, privileged pods, CDI annotations, legacy images, IMEX, MIG, swarm
variables) over several toolkit releases and configurations, then times
``decide()`` on one core and prints decisions per second and µs per decision.
Not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from gpuguard.engine.toolkit.config import config_from_toml, default_config
from gpuguard.engine.toolkit.decide import decide
from gpuguard.model.container import ContainerSpec, Mount
from gpuguard.model.toolkit import Toolkit
from gpuguard.model.version import v

DEFAULT_CAPS = frozenset(
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ]
)
BASE_ENV = (
    "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOSTNAME=worker-0",
    "KUBERNETES_SERVICE_HOST=10.96.0.1",
    "KUBERNETES_SERVICE_PORT=443",
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
    "NV_CUDA_LIB_VERSION=12.4.1-1",
    "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
    "LANG=C.UTF-8",
)


def toolkits() -> list[Toolkit]:
    hardened = {"accept-nvidia-visible-devices-envvar-when-unprivileged": False,
                "accept-nvidia-visible-devices-as-volume-mounts": True}
    cdi = {"nvidia-container-runtime": {"mode": "cdi",
                                        "modes": {"cdi": {"default-kind": "management.nvidia.com/gpu"}}}}
    out = []
    for text in ("1.11.0", "1.14.6", "1.17.8", "1.18.1", "1.20.0"):
        version = v(text)
        out.append(Toolkit(version, default_config(version)))
        out.append(Toolkit(version, config_from_toml(hardened, version)))
        if version >= v("1.13.0"):
            out.append(Toolkit(version, config_from_toml(cdi, version)))
    return out


def containers(rng: random.Random, n: int) -> list[ContainerSpec]:
    shapes = [
        lambda: ContainerSpec(env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=all", "CUDA_VERSION=12.4.1",
                                   "NVIDIA_REQUIRE_CUDA=cuda>=12.4"), bounding=DEFAULT_CAPS),
        lambda: ContainerSpec(env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=void"), bounding=DEFAULT_CAPS),
        lambda: ContainerSpec(env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=GPU-8a1f,GPU-77c2"), bounding=DEFAULT_CAPS),
        lambda: ContainerSpec(
            env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"),
            bounding=DEFAULT_CAPS,
            mounts=(Mount("/dev/null", "/var/run/nvidia-container-devices/GPU-8a1f"),),
        ),
        lambda: ContainerSpec(env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=all"),
                              bounding=DEFAULT_CAPS | {"CAP_SYS_ADMIN"}),
        lambda: ContainerSpec(env=(*BASE_ENV, "CUDA_VERSION=10.0.130"), bounding=DEFAULT_CAPS),
        lambda: ContainerSpec(env=BASE_ENV, bounding=DEFAULT_CAPS,
                              annotations={"cdi.k8s.io/nvidia-device-plugin_1": "nvidia.com/gpu=GPU-8a1f"}),
        lambda: ContainerSpec(env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=0,1",
                                   "NVIDIA_MIG_CONFIG_DEVICES=all"), bounding=DEFAULT_CAPS),
        lambda: ContainerSpec(env=BASE_ENV, bounding=DEFAULT_CAPS),
        lambda: ContainerSpec(env=(*BASE_ENV, "NVIDIA_VISIBLE_DEVICES=none"), bounding=DEFAULT_CAPS),
    ]
    return [rng.choice(shapes)() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10_000, help="containers in the mix")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the best is reported")
    args = parser.parse_args()
    rng = random.Random(20261129)
    kits = toolkits()
    work = [(spec, rng.choice(kits), rng.choice(("runtime", "runtime", "runtime", "hook")))
            for spec in containers(rng, args.n)]
    for spec, kit, component in work:  # warm-up, and proof that every question is answerable
        decide(spec, kit, component=component)
    best = float("inf")
    gc.disable()
    for _ in range(args.repeat):
        start = time.perf_counter()
        for spec, kit, component in work:
            decide(spec, kit, component=component)
        best = min(best, time.perf_counter() - start)
    gc.enable()
    per = best / len(work) * 1e6
    print(f"containers: {len(work)} over {len(kits)} toolkit configurations")
    print(f"best of {args.repeat}: {best * 1e3:.1f} ms  ->  {len(work) / best:,.0f} decisions/s, {per:.2f} µs/decision")


if __name__ == "__main__":
    main()
