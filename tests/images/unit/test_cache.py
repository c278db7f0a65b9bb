"""The on-disk cache: TTL, atomic writes under two processes, corrupt entries, offline."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from gpuguard.sources.images.cache import Cache, default_cache_dir
from gpuguard.sources.images.resolver import ResolveOptions, resolve_images
from tests.images.unit import imagekit as kit

# Nothing listens here: any request would fail, so success proves the cache answered.
NOWHERE = "127.0.0.1:9"


def test_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == str(tmp_path / "gpuguard")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == str(tmp_path / "home" / ".cache" / "gpuguard")


def test_content_round_trip_and_layout(tmp_path: Path) -> None:
    cache = Cache(tmp_path, 60)
    data = b'{"config": {}}'
    d = kit.digest(data)
    assert cache.get_blob(d, 100) is None
    cache.put_blob(d, data)
    assert cache.get_blob(d, 100) == data
    assert (tmp_path / "blobs" / "sha256" / d.split(":")[1]).read_bytes() == data
    assert cache.get_blob(d, 5) is None  # over the limit: not served
    d512 = kit.digest(data, "sha512")
    cache.put_manifest(d512, data)
    assert cache.get_manifest(d512, 100) == data
    assert not list(tmp_path.rglob(".tmp-*"))


def test_tag_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(tmp_path, 10)
    d = kit.digest(b"x")
    cache.put_tag("r.io/a", "1", d)
    assert cache.get_tag("r.io/a", "1") == (d, True)
    assert cache.get_tag("r.io/a", "2") is None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 11)
    assert cache.get_tag("r.io/a", "1") == (d, False)
    monkeypatch.setattr(time, "time", lambda: now - 3600)  # written "in the future": not trusted
    assert cache.get_tag("r.io/a", "1") == (d, False)


def test_corrupt_entries_are_ignored(tmp_path: Path) -> None:
    cache = Cache(tmp_path, 60)
    data = b"content"
    d = kit.digest(data)
    cache.put_blob(d, data)
    cache.put_manifest(d, data)
    (tmp_path / "blobs" / "sha256" / d.split(":")[1]).write_bytes(b"contenT")
    (tmp_path / "manifests" / "sha256" / d.split(":")[1]).write_bytes(b"")
    assert cache.get_blob(d, 100) is None
    assert cache.get_manifest(d, 100) is None
    cache.put_tag("r.io/a", "1", d)
    (tag_file,) = (tmp_path / "tags").iterdir()
    for broken in (b"{", b"[]", b'{"reference": "r.io/a:1", "digest": "nope", "fetched": 1}',
                   json.dumps({"reference": "r.io/b:1", "digest": d, "fetched": time.time()}).encode()):  # fmt: skip
        tag_file.write_bytes(broken)
        assert cache.get_tag("r.io/a", "1") is None
    cache.put_blob(d, data)  # a later fetch overwrites the corrupt entry
    assert cache.get_blob(d, 100) == data


def test_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = Cache(blocker / "cache", 60)
    cache.put_blob(kit.digest(b"x"), b"x")
    assert cache.get_blob(kit.digest(b"x"), 10) is None


def _writer(root: str, seed: int, rounds: int) -> None:
    cache = Cache(root, 60)
    for i in range(rounds):
        data = (f"{i}:".encode() * 5000) + bytes([seed])  # two writers race on ...
        cache.put_blob(kit.digest(b"shared" * 10000), b"shared" * 10000)  # ... one shared entry
        cache.put_blob(kit.digest(data), data)
        cache.put_tag("r.io/a", "t", kit.digest(data))


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(str(tmp_path), s, 200)) for s in (1, 2)]
    for p in procs:
        p.start()
    cache = Cache(tmp_path, 60)
    shared = kit.digest(b"shared" * 10000)
    seen_torn = 0
    while any(p.is_alive() for p in procs):
        path = tmp_path / "blobs" / "sha256" / shared.split(":")[1]
        if path.exists() and cache.get_blob(shared, 1 << 20) is None:
            seen_torn += 1
        written = (tmp_path / "tags").exists() and any((tmp_path / "tags").glob("*.json"))
        if written:
            assert cache.get_tag("r.io/a", "t") is not None  # never half a tag entry
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert seen_torn == 0
    assert cache.get_blob(shared, 1 << 20) == b"shared" * 10000
    assert not list(tmp_path.rglob(".tmp-*"))


def _seed(cache_dir: Path, ref_name: str, tag: str | None, image: kit.Image) -> None:
    cache = Cache(cache_dir, 3600)
    for d, data in image.blobs.items():
        (cache.put_manifest if b'"schemaVersion"' in data else cache.put_blob)(d, data)
    if tag:
        cache.put_tag(ref_name, tag, image.root)


def _options(cache_dir: Path, **kw: object) -> ResolveOptions:
    return ResolveOptions(cache_dir=str(cache_dir), insecure_registries=(NOWHERE,), docker_config="/nonexistent",
                          timeout=1.0, deadline=10.0, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_warm_digest_reference_makes_no_request(tmp_path: Path) -> None:
    image = kit.multi({"linux/amd64": ["A=1"], "linux/arm64": ["A=2"]})
    _seed(tmp_path, f"{NOWHERE}/app", None, image)
    ref = f"{NOWHERE}/app@{image.root}"
    results, stats = resolve_images([ref], _options(tmp_path))
    resolution = results[ref]
    assert resolution.problem is None
    assert resolution.env == ("A=1",)
    assert resolution.configs[0].source == "cache"
    assert resolution.configs[0].digest == image.root
    assert stats.requests == 0 and stats.cache_hits >= 3


def test_warm_tag_within_ttl_and_offline(tmp_path: Path) -> None:
    image = kit.single(["B=1"])
    _seed(tmp_path, f"{NOWHERE}/app", "1.0", image)
    ref = f"{NOWHERE}/app:1.0"
    results, stats = resolve_images([ref], _options(tmp_path))
    assert results[ref].env == ("B=1",) and stats.requests == 0
    # a stale tag is used offline (nothing better is allowed), never fetched
    results, stats = resolve_images([ref], _options(tmp_path, tag_ttl=0.0, offline=True))
    assert results[ref].env == ("B=1",) and stats.requests == 0


def test_offline_miss_is_a_problem(tmp_path: Path) -> None:
    image = kit.single(["C=1"])
    _seed(tmp_path, f"{NOWHERE}/app", "1.0", image)
    (tmp_path / "blobs").rename(tmp_path / "gone")  # the config is no longer cached
    refs = [f"{NOWHERE}/app:1.0", f"{NOWHERE}/app:2.0", f"{NOWHERE}/app@sha256:{'0' * 64}"]
    results, stats = resolve_images(refs, _options(tmp_path, offline=True))
    assert [results[r].problem.reason for r in refs] == ["not in cache (offline)"] * 3  # type: ignore[union-attr]
    assert stats.requests == 0


def test_corrupt_cache_is_refetched_not_trusted(tmp_path: Path) -> None:
    image = kit.single(["D=1"])
    _seed(tmp_path, f"{NOWHERE}/app", "1.0", image)
    config = next(d for d, data in image.blobs.items() if b"Env" in data)
    (tmp_path / "blobs" / "sha256" / config.split(":")[1]).write_bytes(b'{"config": {"Env": ["EVIL=1"]}}')
    ref = f"{NOWHERE}/app:1.0"
    results, stats = resolve_images([ref], _options(tmp_path))
    reason = results[ref].problem.reason  # type: ignore[union-attr]
    assert reason.startswith("registry unreachable")  # it tried the registry instead of using the bad entry
    assert stats.requests > 0
    assert os.path.exists(tmp_path / "manifests")
