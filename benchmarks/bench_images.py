"""How fast is image resolution? Run: ``.venv/bin/python benchmarks/bench_images.py``.

Starts a real registry on loopback (Debian's ``docker-registry``, as the tests do, through
``tests/images/registry_harness.py``), pushes 500 distinct images (distinct repositories and
tags; one in five a two-platform index; set-up, pushed in parallel, not measured), then
resolves all 500 references with ``resolve_images``:

(a) cold cache, tag references: wall time, requests per image (at most index + manifest +
    config = 3, plus token requests behind token auth);
(b) warm cache, digest references: requests (must be 0);
(c) warm cache, tag references within the tag TTL: requests (must be 0);
(d) ``gpuguard audit --resolve-images`` as a whole process on 500 pods using those images,
    cold cache, then warm.

``--auth basic|token`` puts the registry behind basic or token auth (credentials from a
docker config file). Target: (a) under 10 s. Not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.images.registry_harness import (  # noqa: E402
    BuiltImage,
    Pusher,
    RegistryServer,
    build_image,
    docker_config,
    registry_binary,
    start_registry,
)

from gpuguard.sources.images.resolver import ResolveOptions, resolve_images  # noqa: E402

ENVS = (
    ("PATH=/usr/local/bin:/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=all", "CUDA_VERSION=12.4.1"),
    ("PATH=/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=void"),
    ("PATH=/usr/bin:/bin", "APP_MODE=production"),
    ("PATH=/usr/local/cuda/bin:/usr/bin:/bin", "CUDA_VERSION=9.0.176"),
)
USER = ("bench", "bench-password")
TARGET_S = 10.0


def images(count: int) -> list[tuple[str, str, BuiltImage]]:
    out = []
    for i in range(count):
        env = ENVS[i % len(ENVS)]
        repo, tag = f"bench/app-{i:04d}", f"1.{i}"
        if i % 5 == 0:
            image = build_image({"linux/amd64": env, "linux/arm64": ENVS[1]}, platforms=("linux/amd64", "linux/arm64"),
                                label=f"{repo}:{tag}")  # fmt: skip
        else:
            image = build_image(env, label=f"{repo}:{tag}", media="docker" if i % 2 else "oci")
        out.append((repo, tag, image))
    return out


def push_all(server: RegistryServer, todo: list[tuple[str, str, BuiltImage]], workers: int) -> dict[str, str]:
    """Push in parallel, one connection per worker; ``{repo:tag: digest}``."""
    chunks = [todo[i::workers] for i in range(workers)]

    def run(chunk: list[tuple[str, str, BuiltImage]]) -> dict[str, str]:
        pusher = Pusher(server.url, server.credentials, ca_path=server.ca_path)
        try:
            return {f"{repo}:{tag}": pusher.push(repo, tag, image) for repo, tag, image in chunk}
        finally:
            pusher.close()

    digests: dict[str, str] = {}
    with ThreadPoolExecutor(workers) as pool:
        for part in pool.map(run, chunks):
            digests.update(part)
    return digests


def report(title: str, seconds: float, count: int, stats: object, failed: int) -> None:
    requests = getattr(stats, "requests", 0)
    by_kind = getattr(stats, "by_kind", {})
    hits = getattr(stats, "cache_hits", 0)
    print(f"{title}")
    print(f"  wall time        {seconds:8.3f} s   ({count / seconds:,.0f} images/s)" if seconds else "")
    print(f"  requests         {requests:8d}     ({requests / count:.2f} per image)  by kind: {json.dumps(by_kind)}")
    print(f"  cache hits       {hits:8d}")
    print(f"  problems         {failed:8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--auth", choices=("none", "basic", "token"), default="none")
    parser.add_argument("--push-workers", type=int, default=16)
    parser.add_argument("--no-audit", action="store_true", help="skip (d), the whole-process audit")
    args = parser.parse_args()
    if registry_binary() is None:
        sys.exit("bench_images: docker-registry is not installed (apt-get install docker-registry)")

    with tempfile.TemporaryDirectory(prefix="gpuguard-bench-images-") as tmp_name:
        tmp = Path(tmp_name)
        kwargs = {"htpasswd": USER} if args.auth == "basic" else {"token_auth": USER} if args.auth == "token" else {}
        server = start_registry(tmp / "registry", **kwargs)  # type: ignore[arg-type]
        try:
            start = time.perf_counter()
            todo = images(args.images)
            digests = push_all(server, todo, args.push_workers)
            print(f"set-up: {len(digests)} images pushed to {server.url} (auth: {args.auth}) "
                  f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
            config_dir = docker_config(tmp / "docker", {server.host: USER} if args.auth != "none" else {}).parent
            tag_refs = [f"{server.host}/{ref}" for ref in digests]
            digest_refs = [f"{server.host}/{ref.rsplit(':', 1)[0]}@{d}" for ref, d in digests.items()]
            options = ResolveOptions(
                cache_dir=str(tmp / "cache"), docker_config=str(config_dir), insecure_registries=(server.host,)
            )
            print(f"resolver: {options.connections_per_registry} connections per registry, "
                  f"timeout {options.timeout:g} s, deadline {options.deadline:g} s")  # fmt: skip

            start = time.perf_counter()
            found, stats = resolve_images(tag_refs, options)
            cold = time.perf_counter() - start
            failed = sum(1 for r in found.values() if r.problem is not None)
            report(f"(a) cold cache, {len(tag_refs)} tag references", cold, len(tag_refs), stats, failed)
            token = stats.by_kind.get("token", 0)
            print(f"  per image without token requests: {(stats.requests - token) / len(tag_refs):.2f} (at most 3)")
            verdict = "met" if cold < TARGET_S and not failed else "NOT met"
            print(f"  target: cold under {TARGET_S:g} s -> {verdict}")

            start = time.perf_counter()
            found, stats = resolve_images(digest_refs, options)
            failed = sum(1 for r in found.values() if r.problem is not None)
            report(f"(b) warm cache, {len(digest_refs)} digest references (must be 0 requests)",
                   time.perf_counter() - start, len(digest_refs), stats, failed)  # fmt: skip

            start = time.perf_counter()
            found, stats = resolve_images(tag_refs, options)
            failed = sum(1 for r in found.values() if r.problem is not None)
            report(f"(c) warm cache, {len(tag_refs)} tag references within the TTL (must be 0 requests)",
                   time.perf_counter() - start, len(tag_refs), stats, failed)  # fmt: skip

            if not args.no_audit:
                audit(tmp, server, tag_refs, config_dir)
        finally:
            server.stop()


def audit(tmp: Path, server: RegistryServer, refs: list[str], config_dir: Path) -> None:
    manifest = tmp / "pods.yaml"
    manifest.write_text("".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: bench}}\n"
        f"spec:\n  containers:\n  - name: c\n    image: {ref}\n" for i, ref in enumerate(refs)
    ))  # fmt: skip
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    command = [sys.executable, "-m", "gpuguard", "audit", "--format", "json", "--resolve-images",
               "--insecure-registry", server.host, "--cache-dir", str(tmp / "audit-cache"), str(manifest)]  # fmt: skip
    for label in ("cold", "warm"):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        seconds = time.perf_counter() - start
        try:
            doc = json.loads(done.stdout)
            counts: dict[str, int] = {}
            for f in doc["findings"]:
                counts[f["rule_id"]] = counts.get(f["rule_id"], 0) + 1
            summary = json.dumps(dict(sorted(counts.items())))
        except (ValueError, KeyError):
            summary = f"no report (exit {done.returncode}): {done.stderr.strip()[-300:]}"
        print(f"(d) gpuguard audit --resolve-images, {len(refs)} pods, {label} cache: {seconds:.2f} s "
              f"(whole process), exit {done.returncode}, findings {summary}")  # fmt: skip


if __name__ == "__main__":
    main()
