"""Load on ``gpuguard webhook`` over loopback. Run: ``.venv/bin/python benchmarks/bench_webhook.py``.

Starts the webhook as a subprocess with a throwaway self-signed certificate,
then sends AdmissionReviews for a realistic 5-container pod (an init
container, a GPU trainer, three sidecars; half to /mutate, half to /validate)
over keep-alive TLS connections at fixed rates (default 200, 500 and 1,000
requests/s, 30 s each), and prints p50/p99/max latency, throughput, errors and
the server's RSS at start and end of each run. Then it does the same against
a trivial always-allow ASGI app served by the same uvicorn stack and settings,
and prints the handler's overhead as the ratio of latencies. Not a test: it
asserts nothing. The client is an asyncio HTTP/1.1 client in its own process
(16 connections, open-loop pacing), so it competes with the server for the
machine's cores, as a real API server on the same node would not.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CONNECTIONS = 16


def realistic_pod() -> dict[str, object]:
    """A training pod as controllers create it: init, GPU trainer, three sidecars."""

    def res(cpu: str, mem: str, gpu: int = 0) -> dict[str, object]:
        limits: dict[str, object] = {"cpu": cpu, "memory": mem}
        if gpu:
            limits["nvidia.com/gpu"] = gpu
        return {"requests": {"cpu": cpu, "memory": mem}, "limits": limits}

    env = [{"name": f"VAR_{i}", "value": f"value-{i}"} for i in range(8)]
    env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    mounts = [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache"}]
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "trainer-7d9f8-",
            "namespace": "ml-team",
            "labels": {"app": "trainer", "pod-template-hash": "7d9f8", "team": "ml"},
            "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/default-container": "trainer"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "trainer-7d9f8",
                                 "uid": "0b5f0c1e-0000-4000-8000-000000000001", "controller": True}],
        },
        "spec": {
            "serviceAccountName": "trainer",
            "initContainers": [{"name": "fetch", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
                                "volumeMounts": mounts, "resources": res("100m", "64Mi")}],
            "containers": [
                {"name": "trainer", "image": "nvcr.io/nvidia/pytorch:24.05-py3", "env": env, "volumeMounts": mounts,
                 "resources": res("8", "32Gi", gpu=1), "readinessProbe": probe, "ports": [{"containerPort": 8080}]},
                {"name": "envoy", "image": "envoyproxy/envoy:v1.30.1", "env": env[:3],
                 "resources": res("200m", "128Mi"), "ports": [{"containerPort": 15001}]},
                {"name": "fluent-bit", "image": "fluent/fluent-bit:3.0", "volumeMounts": mounts[:1],
                 "envFrom": [{"configMapRef": {"name": "fluent-bit-env"}}], "resources": res("100m", "64Mi")},
                {"name": "metrics", "image": "prom/statsd-exporter:v0.26.1", "resources": res("50m", "32Mi"),
                 "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]},
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "cache",
                                                                                         "emptyDir": {}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
        },
    }


def review_body(uid: str) -> bytes:
    return orjson.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
            "namespace": "ml-team", "object": realistic_pod(), "dryRun": False,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        },
    })  # fmt: skip


def make_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- the trivial baseline server -------------------------------------------------------------------------


async def _trivial_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """Always allow: read the body, decode it, answer allowed (what any webhook must at least do)."""
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    uid = orjson.loads(b"".join(chunks))["request"]["uid"]
    body = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "response": {"uid": uid, "allowed": True}})  # fmt: skip
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve_trivial(cert: str, key: str, port: int) -> None:
    import uvicorn  # noqa: PLC0415

    from gpuguard.webhook.server import Options, uvicorn_config  # noqa: PLC0415
    from gpuguard.webhook.tls import CertReloader  # noqa: PLC0415

    options = Options(cert, key, "127.0.0.1", port)
    uvicorn.Server(uvicorn_config(_trivial_app, options, CertReloader(cert, key))).run()


# --- the client ---------------------------------------------------------------------------------------------


async def _connection(  # noqa: PLR0917
    port: int, ctx: ssl.SSLContext, path: str, interval: float, start: float, stop: float,
    lat: list[float], errors: list[str], offset: float,
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    n = 0
    due = start + offset
    while due < stop:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        body = review_body(f"uid-{id(writer)}-{n}")
        which = path if path != "both" else ("/mutate" if n % 2 else "/validate")
        head = (f"POST {which} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        sent = time.perf_counter()
        writer.write(head + body)
        try:
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(repr(exc))
            break
        lat.append(time.perf_counter() - sent)
        if not status_line.startswith(b"HTTP/1.1 200") or b'"uid"' not in payload:
            errors.append(status_line.decode(errors="replace").strip())
        n += 1
        due += interval
    writer.close()


async def _load(port: int, ca: str, rate: float, seconds: float, path: str) -> tuple[list[float], list[str], float]:
    ctx = ssl.create_default_context(cafile=ca)
    lat: list[float] = []
    errors: list[str] = []
    interval = CONNECTIONS / rate
    start = time.perf_counter() + 0.5
    stop = start + seconds
    tasks = [_connection(port, ctx, path, interval, start, stop, lat, errors, i * interval / CONNECTIONS)
             for i in range(CONNECTIONS)]  # fmt: skip
    await asyncio.gather(*tasks)
    return lat, errors, time.perf_counter() - start


def _wait_ready(port: int, ca: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.get(f"https://localhost:{port}/healthz", verify=ssl.create_default_context(cafile=ca), timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
        except Exception:
            time.sleep(0.1)
    raise SystemExit("server did not come up")


def _run_series(  # noqa: PLR0917
    label: str, argv: list[str], port: int, ca: str, rates: list[float], seconds: float, path: str
) -> dict[float, float]:
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    p99s: dict[float, float] = {}
    try:
        _wait_ready(port, ca, proc)
        asyncio.run(_load(port, ca, 50, 2, path))  # warm-up
        print(f"\n{label}")
        print(f"{'rate/s':>8} {'sent':>7} {'thrpt/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6} "
              f"{'RSS start':>10} {'RSS end':>9}")  # fmt: skip
        for rate in rates:
            before = rss_kib(proc.pid)
            lat, errors, took = asyncio.run(_load(port, ca, rate, seconds, path))
            after = rss_kib(proc.pid)
            lat.sort()
            p50 = statistics.median(lat) * 1000 if lat else float("nan")
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
            p99s[rate] = p99
            print(f"{rate:>8.0f} {len(lat):>7} {len(lat) / took:>8.1f} {p50:>7.2f} {p99:>7.2f} "
                  f"{(lat[-1] * 1000 if lat else 0):>7.2f} {len(errors):>6} {before / 1024:>8.1f}Mi "
                  f"{after / 1024:>7.1f}Mi")  # fmt: skip
            if errors:
                print("   first errors:", errors[:3])
    finally:
        proc.terminate()
        proc.wait(10)
    return p99s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate (default 30)")
    parser.add_argument("--rates", default="200,500,1000", help="requests/s, comma-separated")
    parser.add_argument("--port", type=int, default=18643)
    parser.add_argument("--path", default="both", choices=("both", "/mutate", "/validate"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--serve-trivial", nargs=3, metavar=("CERT", "KEY", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_trivial:
        serve_trivial(args.serve_trivial[0], args.serve_trivial[1], int(args.serve_trivial[2]))
        return
    rates = [float(r) for r in args.rates.split(",")]
    print(f"pod: 5 containers, {len(review_body('x'))} bytes per AdmissionReview; {CONNECTIONS} keep-alive TLS "
          f"connections; {args.duration:g}s per rate; {os.cpu_count()} CPUs")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(Path(tmp))
        exe = str(Path(sys.executable).with_name("gpuguard"))
        webhook = [exe, "webhook", "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1",
                   "--port", str(args.port)]  # fmt: skip
        ours = _run_series("gpuguard webhook", webhook, args.port, str(cert), rates, args.duration, args.path)
        if args.skip_baseline:
            return
        trivial = [sys.executable, __file__, "--serve-trivial", str(cert), str(key), str(args.port + 1)]
        base = _run_series("trivial always-allow handler, same stack", trivial, args.port + 1, str(cert), rates,
                           args.duration, args.path)  # fmt: skip
        print("\np99 overhead of the gpuguard handler (gpuguard p99 / trivial p99):")
        for rate in rates:
            print(f"  {rate:>6.0f}/s: {ours[rate] / base[rate]:.2f}x ({ours[rate]:.2f} ms vs {base[rate]:.2f} ms)")


if __name__ == "__main__":
    main()
