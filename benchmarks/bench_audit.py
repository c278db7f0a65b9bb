"""How fast and how lean is ``gpuguard audit``? Run: ``.venv/bin/python benchmarks/bench_audit.py``.

Generates a 20,000-object manifest stream (Deployments, StatefulSets,
DaemonSets, Jobs, CronJobs, Pods, Services, ConfigMaps, ServiceAccounts and
Ingresses; 1-3 containers with env, envFrom and resources; about one in ten
requests a GPU, some CUDA images, some NVIDIA_VISIBLE_DEVICES), then measures,
in one run, whole processes (interpreter start and imports included):

(a) ``gpuguard audit --format json`` on the stream vs a script that only
    parses it with ``yaml.load_all(..., Loader=yaml.CSafeLoader)`` (target ≤ 1.5x);
(b) on the first 2,000 objects, gpuguard vs ``checkov -f FILE --framework
    kubernetes -o json --quiet`` (installed into ``.cache/checkov-venv`` on first
    use; target ≥ 25x; ``--no-checkov`` skips it);
(c) gpuguard's peak RSS on 2,000 vs 20,000 objects (it must not grow).

Not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
PYTHON = sys.executable
GPUGUARD = [PYTHON, "-m", "gpuguard"]
PARSE_ONLY = (
    "import sys, yaml\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    for _ in yaml.load_all(f, Loader=yaml.CSafeLoader):\n"
    "        pass\n"
)

IMAGES = [
    "nginx:1.27", "redis:7.2", "postgres:16", "python:3.12-slim", "ghcr.io/acme/api:{v}", "ghcr.io/acme/worker:{v}",
    "registry.example.com/team/app-{n}:1.{v}", "quay.io/prometheus/node-exporter:v1.8.1", "busybox:1.36",
]  # fmt: skip
GPU_IMAGES = [
    "nvcr.io/nvidia/pytorch:24.05-py3", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04", "vllm/vllm-openai:v0.6.3",
    "registry.example.com/ml/trainer-{n}:2024.{v}",
]  # fmt: skip
KINDS = [("Deployment", 30), ("StatefulSet", 6), ("DaemonSet", 3), ("Job", 6), ("CronJob", 4), ("Pod", 5),
         ("Service", 20), ("ConfigMap", 12), ("ServiceAccount", 8), ("Ingress", 6)]  # fmt: skip


def _container(r: random.Random, i: int, j: int) -> list[str]:
    gpu = j == 0 and r.random() < 0.1
    pool = GPU_IMAGES if ((gpu and r.random() < 0.8) or r.random() < 0.01) and not QUIET else IMAGES
    image = r.choice(pool).format(n=i % 97, v=i % 11)
    lines = [f"- name: c{j}", f"  image: {image}", "  ports:", f"  - containerPort: {8000 + j}"]
    env = [f"  - name: VAR_{k}\n    value: \"{r.choice(['info', 'prod', '30s', 'true', str(k)])}\"" for k in
           range(r.randint(0, 6))]  # fmt: skip
    roll = r.random() if not QUIET else 1.0
    if roll < 0.03:
        env.append('  - name: NVIDIA_VISIBLE_DEVICES\n    value: "all"')
    elif roll < 0.06:
        env.append('  - name: NVIDIA_VISIBLE_DEVICES\n    value: "void"')
    elif roll < 0.08:
        env.append("  - name: POD_NAME\n    valueFrom:\n      fieldRef:\n        fieldPath: metadata.name")
    if env:
        lines.append("  env:")
        lines.extend("\n".join("  " + x for x in e.split("\n")) for e in env)
    if r.random() < 0.05 and not QUIET:
        lines += ["  envFrom:", f"  - configMapRef:\n      name: cfg-{i % 50}"]
    lines += ["  resources:", "    requests:", "      cpu: 100m", "      memory: 128Mi", "    limits:"]
    lines.append("      nvidia.com/gpu: 1" if gpu else "      memory: 256Mi")
    lines += ["  readinessProbe:", "    httpGet:", "      path: /healthz", f"      port: {8000 + j}"]
    return lines


def _pod_spec(r: random.Random, i: int, indent: int) -> list[str]:
    out = ["containers:"]
    for j in range(r.choice((1, 1, 1, 2, 2, 3))):
        out += _container(r, i, j)
    if r.random() < 0.3:
        out += ["volumes:", "- name: data", "  emptyDir: {}"]
    if r.random() < 0.01 and not QUIET:
        out += ["runtimeClassName: nvidia"]
    return [" " * indent + x for x in "\n".join(out).split("\n")]


def _object(r: random.Random, i: int, kind: str) -> str:
    ns = f"team-{i % 23}"
    head = [f"kind: {kind}", "metadata:", f"  name: {kind.lower()}-{i}", f"  namespace: {ns}", "  labels:",
            f"    app: app-{i}", "    app.kubernetes.io/part-of: shop"]  # fmt: skip
    template = ["    metadata:", "      labels:", f"        app: app-{i}", "    spec:"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        body = ["apiVersion: apps/v1", *head, "spec:", "  selector:", "    matchLabels:", f"      app: app-{i}",
                "  template:", *template, *_pod_spec(r, i, 6)]  # fmt: skip
    elif kind == "Job":
        body = ["apiVersion: batch/v1", *head, "spec:", "  template:", *template,
                "      restartPolicy: Never", *_pod_spec(r, i, 6)]  # fmt: skip
    elif kind == "CronJob":
        body = ["apiVersion: batch/v1", *head, "spec:", '  schedule: "0 * * * *"', "  jobTemplate:", "    spec:",
                "      template:", "        spec:", "          restartPolicy: OnFailure", *_pod_spec(r, i, 10)]
    elif kind == "Pod":
        body = ["apiVersion: v1", *head, "spec:", *_pod_spec(r, i, 2)]
    elif kind == "Service":
        body = ["apiVersion: v1", *head, "spec:", "  selector:", f"    app: app-{i}", "  ports:", "  - port: 80",
                "    targetPort: 8080"]  # fmt: skip
    elif kind == "ConfigMap":
        body = ["apiVersion: v1", *head[:4], "data:", "  LOG_LEVEL: info", f"  FEATURE_{i % 5}: \"on\""]
        body[3] = f"  name: cfg-{i % 50}"
    elif kind == "ServiceAccount":
        body = ["apiVersion: v1", *head]
    else:
        body = ["apiVersion: networking.k8s.io/v1", *head, "spec:", "  rules:", f"  - host: app-{i}.example.com",
                "    http:", "      paths:", "      - path: /", "        pathType: Prefix", "        backend:",
                "          service:", f"            name: service-{i}", "            port:", "              number: 80"]
    return "\n".join(body) + "\n"


QUIET = False  # set while generating the finding-free variant of the stream


def generate(n: int, seed: int = 7, *, quiet: bool = False) -> bytes:
    """``n`` objects; ``quiet``: the same mix without anything a rule reports."""
    global QUIET  # noqa: PLW0603 - a benchmark knob, not library code
    QUIET = quiet
    r = random.Random(seed)
    kinds = [k for k, w in KINDS for _ in range(w)]
    return "---\n".join(_object(r, i, r.choice(kinds)) for i in range(n)).encode()


def _run(cmd: list[str], *, stdout: int | None = subprocess.DEVNULL) -> tuple[float, int, int]:
    """Wall seconds, exit status and peak RSS (KiB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss


def _best(cmd: list[str], repeat: int) -> tuple[float, int, int]:
    runs = [_run(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[0][1], max(r[2] for r in runs)


# The child reports its own high-water mark (VmHWM) at exit: ru_maxrss from wait4 would also count
# the pages a forked child shares with this process before exec.
_HWM = (
    "import atexit, sys\n"
    "def _report():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('VmHWM ' + line.split()[1] + '\\n')\n"
    "atexit.register(_report)\n"
    "sys.argv = ['gpuguard', *sys.argv[1:]]\n"
    "from gpuguard.cli.main import main\n"
    "main()\n"
)


def _peak_rss_kib(args: list[str]) -> int:
    """Peak resident memory of one whole ``gpuguard`` process, in KiB."""
    if not Path("/proc/self/status").exists():
        return _run([*GPUGUARD, *args])[2]
    done = subprocess.run([PYTHON, "-c", _HWM, *args], check=False, capture_output=True, cwd=ROOT)
    lines = [x for x in done.stderr.decode().splitlines() if x.startswith("VmHWM ")]
    return int(lines[-1].split()[1]) if lines else -1


def _findings(path: Path) -> int:
    cmd = [*GPUGUARD, "audit", "--format", "json", str(path)]
    out = subprocess.run(cmd, check=False, capture_output=True, cwd=ROOT)
    return len(json.loads(out.stdout)["findings"]) if out.stdout else -1


def _checkov() -> Path | None:
    venv = ROOT / ".cache" / "checkov-venv"
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        print("installing checkov into .cache/checkov-venv (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "checkov"], check=False)
        if done.returncode != 0 or not exe.exists():
            return None
    return exe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best time is kept")
    parser.add_argument("--no-checkov", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    big, small = CACHE / f"stream-{args.objects}.yaml", CACHE / f"stream-{args.small}.yaml"
    data = generate(args.objects)
    big.write_bytes(data)
    small.write_bytes(b"---\n".join(data.split(b"---\n")[: args.small]))
    print(f"stream: {args.objects} objects, {len(data) / 1e6:.1f} MB ({big.relative_to(ROOT)})")
    del data

    audit = [*GPUGUARD, "audit", "--format", "json"]
    parse_s, _, _ = _best([PYTHON, "-c", PARSE_ONLY, str(big)], args.repeat)
    audit_s, status, _ = _best([*audit, str(big)], args.repeat)
    print(f"(a) parse only (yaml.load_all, CSafeLoader): {parse_s:6.2f} s")
    print(f"    gpuguard audit --format json:            {audit_s:6.2f} s   (exit {status})")
    print(f"    ratio: {audit_s / parse_s:.2f}x (target <= 1.5x)")

    small_s, _, _ = _best([*audit, str(small)], args.repeat)
    if args.no_checkov:
        print(f"(b) gpuguard on {args.small} objects: {small_s:.2f} s; checkov skipped")
    else:
        exe = _checkov()
        if exe is None:
            print(f"(b) gpuguard on {args.small} objects: {small_s:.2f} s; checkov could not be installed")
        else:
            checkov_s, _, _ = _run([str(exe), "-f", str(small), "--framework", "kubernetes", "-o", "json", "--quiet"])
            print(f"(b) {args.small} objects: checkov {checkov_s:.2f} s, gpuguard {small_s:.2f} s: "
                  f"{checkov_s / small_s:.1f}x faster (target >= 25x)")
    quiet = generate(args.objects, quiet=True)
    quiet_big, quiet_small = CACHE / f"quiet-{args.objects}.yaml", CACHE / f"quiet-{args.small}.yaml"
    quiet_big.write_bytes(quiet)
    quiet_small.write_bytes(b"---\n".join(quiet.split(b"---\n")[: args.small]))
    del quiet
    print("(c) peak RSS (whole process), small vs big stream:")
    for label, a, b in (("the stream", small, big), ("finding-free variant", quiet_small, quiet_big)):
        rss = [_peak_rss_kib(["audit", "--format", "json", "-o", os.devnull, str(p)]) for p in (a, b)]
        counts = [_findings(p) for p in (a, b)]
        print(f"    {label}: {rss[0] / 1024:.1f} MiB on {args.small} objects ({counts[0]} findings), "
              f"{rss[1] / 1024:.1f} MiB on {args.objects} ({counts[1]} findings): {rss[1] / rss[0]:.2f}x")


if __name__ == "__main__":
    main()
