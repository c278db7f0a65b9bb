"""Resolve image references to their configs' env: local sources, the cache, then registries.

Each distinct reference is resolved once (``busybox`` and ``docker.io/library/busybox:latest``
are one), on a thread pool; each registry gets one client with at most
``connections_per_registry`` requests in flight, and one bearer token per repository scope.
A manifest or config fetched by one thread is shared with the others (single flight by digest).

Every failure is an :class:`ImageProblem` with a reason; only bad options (an unreadable
``--registry-auth`` file, CA bundle or local source, a malformed platform) raise
:class:`InputError`, before anything is fetched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gpuguard.model.errors import InputError
from gpuguard.model.image import DEFAULT_PLATFORM, ImageConfig, ImageProblem, ImageResolution
from gpuguard.sources.images.auth import TokenCache
from gpuguard.sources.images.cache import Cache, default_cache_dir
from gpuguard.sources.images.client import Registry, RegistrySettings, build_ssl_context
from gpuguard.sources.images.credentials import CredentialStore
from gpuguard.sources.images.local import LocalHit, LocalImages
from gpuguard.sources.images.manifests import (
    INDEX_TYPES,
    Descriptor,
    Index,
    Manifest,
    parse_config,
    parse_manifest,
    select_platforms,
)
from gpuguard.sources.images.platforms import Platform, parse_platform
from gpuguard.sources.images.problems import ImageError
from gpuguard.sources.images.reference import Reference, parse_reference
from gpuguard.sources.images.stats import Counter, Deadline, Stats

__all__ = ["ResolveOptions", "Stats", "resolve_images", "walk"]

log = logging.getLogger("gpuguard.images")
MAX_WORKERS = 64
MAX_NESTING = 3
OFFLINE_MISS = "not in cache (offline)"


@dataclass(frozen=True)
class ResolveOptions:
    """How to resolve: which platform, which credentials, which cache, which limits."""

    platform: str = DEFAULT_PLATFORM  # "os/arch[/variant]"
    all_platforms: bool = False  # every platform of an index (ImageResolution.disagree tells)
    auth_files: tuple[str, ...] = ()  # --registry-auth FILE (docker config.json format)
    pull_secrets: tuple[Mapping[str, Any], ...] = ()  # parsed .dockerconfigjson documents (imagePullSecrets)
    docker_config: str | None = None  # directory; default $DOCKER_CONFIG or ~/.docker
    insecure_registries: tuple[str, ...] = ()  # HOST[:PORT] spoken to over plain HTTP
    ca_file: str | None = None  # extra CA bundle; TLS verification is always on otherwise
    cache_dir: str | None = None  # default $XDG_CACHE_HOME/gpuguard or ~/.cache/gpuguard
    offline: bool = False  # cache only
    timeout: float = 10.0  # seconds per request
    deadline: float = 120.0  # seconds for the whole resolution
    connections_per_registry: int = 8
    tag_ttl: float = 3600.0  # seconds a tag->digest entry stays fresh
    max_manifest_bytes: int = 4 * 1024 * 1024
    max_config_bytes: int = 8 * 1024 * 1024
    local: tuple[str, ...] = ()  # OCI layout dirs and docker-save/OCI archives to read first


@dataclass(frozen=True, slots=True)
class _Found:
    platform: str
    env: tuple[str, ...]
    digest: str | None
    source: str


class _Trace:
    """Whether resolving one reference touched the network (its source is then "registry")."""

    def __init__(self) -> None:
        self.network = False


def _insecure(host: str, entries: tuple[str, ...]) -> bool:
    """``HOST:PORT`` matches exactly; ``HOST`` alone matches the host on any port."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    wanted = {host, bare}
    return any(
        e.strip().lower().removeprefix("http://").removeprefix("https://").rstrip("/") in wanted for e in entries
    )


class _Session:
    """Everything shared by the references of one resolution."""

    def __init__(self, options: ResolveOptions, counter: Counter, deadline: Deadline) -> None:
        self.options = options
        self.counter = counter
        self.deadline = deadline
        self.platform = parse_platform(options.platform)
        self.credentials = CredentialStore(
            options.auth_files, options.pull_secrets, options.docker_config, helper_timeout=options.timeout
        )
        self.settings = RegistrySettings(
            timeout=options.timeout,
            connections=max(1, options.connections_per_registry),
            max_manifest_bytes=options.max_manifest_bytes,
            max_config_bytes=options.max_config_bytes,
            verify=build_ssl_context(options.ca_file),
        )
        self.cache = Cache(options.cache_dir or default_cache_dir(), options.tag_ttl)
        self.local = LocalImages(options.local, options.max_manifest_bytes, options.max_config_bytes)
        self.tokens = TokenCache()
        self._registries: dict[str, Registry] = {}
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str], bytes] = {}
        self._flights: dict[tuple[str, str], threading.Lock] = {}

    def close(self) -> None:
        for registry in self._registries.values():
            registry.close()
        self.local.close()

    def registry(self, ref: Reference) -> Registry:
        with self._lock:
            found = self._registries.get(ref.registry)
            if found is None:
                found = Registry(
                    ref.registry,
                    ref.endpoint,
                    insecure=_insecure(ref.registry, self.options.insecure_registries)
                    or _insecure(ref.endpoint, self.options.insecure_registries),
                    settings=self.settings,
                    credentials=self.credentials,
                    tokens=self.tokens,
                    counter=self.counter,
                    deadline=self.deadline,
                )
                self._registries[ref.registry] = found
            return found

    # -- content by digest, once per run --------------------------------------------------------
    def _once(self, kind: str, digest: str, load: Callable[[], bytes]) -> bytes:
        key = (kind, digest)
        with self._lock:
            if key in self._memory:
                self.counter.hit()
                return self._memory[key]
            flight = self._flights.setdefault(key, threading.Lock())
        if not flight.acquire(timeout=self.deadline.check()):
            raise self.deadline.error()
        try:
            with self._lock:
                if key in self._memory:
                    self.counter.hit()
                    return self._memory[key]
            data = load()
            with self._lock:
                self._memory[key] = data
            return data
        finally:
            flight.release()

    def manifest(self, ref: Reference, digest: str, trace: _Trace) -> bytes:
        """A manifest by digest: memory, cache, then the registry."""
        limit = self.options.max_manifest_bytes

        def load() -> bytes:
            cached = self.cache.get_manifest(digest, limit)
            if cached is not None:
                self.counter.hit()
                return cached
            if self.options.offline:
                raise ImageError(OFFLINE_MISS)
            trace.network = True
            data, _ = self.registry(ref).get_manifest(ref.repository, digest)
            self.cache.put_manifest(digest, data)
            return data

        return self._once("manifest", digest, load)

    def config(self, ref: Reference, descriptor: Descriptor, trace: _Trace) -> bytes:
        """A config blob by digest: memory, cache, then the registry."""
        limit = self.options.max_config_bytes
        if descriptor.size > limit:
            raise ImageError(f"config larger than {limit} bytes")

        def load() -> bytes:
            cached = self.cache.get_blob(descriptor.digest, limit)
            if cached is not None:
                self.counter.hit()
                return cached
            if self.options.offline:
                raise ImageError(OFFLINE_MISS)
            trace.network = True
            data = self.registry(ref).get_blob(ref.repository, descriptor.digest, limit, "config")
            self.cache.put_blob(descriptor.digest, data)
            return data

        return self._once("blob", descriptor.digest, load)

    def root(self, ref: Reference, trace: _Trace) -> tuple[bytes, str]:
        """The manifest or index a reference names, and its digest."""
        if ref.digest is not None:
            return self.manifest(ref, ref.digest, trace), ref.digest
        tag = ref.tag or "latest"
        entry = self.cache.get_tag(ref.name, tag)
        if entry is not None:
            digest, fresh = entry
            if fresh or self.options.offline:
                cached = self.cache.get_manifest(digest, self.options.max_manifest_bytes)
                if cached is not None:
                    self.counter.hit()
                    return cached, digest
        if self.options.offline:
            raise ImageError(OFFLINE_MISS)
        registry = self.registry(ref)
        trace.network = True
        if entry is not None:
            try:
                current = registry.head_manifest(ref.repository, tag)
            except ImageError:
                current = None
            cached = self.cache.get_manifest(current, self.options.max_manifest_bytes) if current else None
            if current is not None and cached is not None:
                self.counter.hit()
                self.cache.put_tag(ref.name, tag, current)
                return cached, current
        data, digest = registry.get_manifest(ref.repository, tag)
        self.cache.put_manifest(digest, data)
        self.cache.put_tag(ref.name, tag, digest)
        return data, digest

    # -- one reference ---------------------------------------------------------------------------
    def resolve(self, ref: Reference) -> list[_Found]:
        hit = self.local.find(ref)
        if hit is not None:
            return self._resolve_local(hit)
        trace = _Trace()
        data, digest = self.root(ref, trace)
        found = walk(
            data,
            fetch_manifest=lambda d: self.manifest(ref, d.digest, trace),
            fetch_config=lambda d: self.config(ref, d, trace),
            platform=self.platform,
            all_platforms=self.options.all_platforms,
            max_manifest_bytes=self.options.max_manifest_bytes,
        )
        source = "registry" if trace.network else "cache"
        return [_Found(platform, env, digest, source) for platform, env in found]

    def _resolve_local(self, hit: LocalHit) -> list[_Found]:
        self.counter.hit()
        if hit.root is None:
            config = parse_config(hit.config or b"")
            platform = str(config.platform or self.platform)
            return [_Found(platform, config.env, None, hit.source)]
        limit = self.options.max_config_bytes

        def config_of(d: Descriptor) -> bytes:
            if d.size > limit:
                raise ImageError(f"config larger than {limit} bytes")
            return hit.store.read(d.digest, limit, "config")

        found = walk(
            hit.root,
            fetch_manifest=lambda d: hit.store.read(d.digest, self.options.max_manifest_bytes, "manifest"),
            fetch_config=config_of,
            platform=self.platform,
            all_platforms=self.options.all_platforms,
            max_manifest_bytes=self.options.max_manifest_bytes,
        )
        return [_Found(platform, env, hit.digest, hit.source) for platform, env in found]


def walk(
    root: bytes,
    *,
    fetch_manifest: Callable[[Descriptor], bytes],
    fetch_config: Callable[[Descriptor], bytes],
    platform: Platform,
    all_platforms: bool,
    max_manifest_bytes: int,
) -> list[tuple[str, tuple[str, ...]]]:
    """From a root manifest or index to ``(platform, env)`` for each platform asked for."""
    node = parse_manifest(root)
    if isinstance(node, Manifest):
        config = parse_config(fetch_config(node.config))
        return [(str(config.platform or platform), config.env)]

    def child(d: Descriptor) -> Index | Manifest:
        if d.size > max_manifest_bytes:
            raise ImageError(f"manifest larger than {max_manifest_bytes} bytes")
        return parse_manifest(fetch_manifest(d))

    entries: list[Descriptor] = []
    pending = [(node, 0)]
    while pending:
        index, depth = pending.pop(0)
        for d in index.manifests:
            if d.media_type in INDEX_TYPES and d.platform is None:
                if depth + 1 >= MAX_NESTING:
                    raise ImageError("invalid manifest: indexes nested too deep")
                nested = child(d)
                if isinstance(nested, Index):
                    pending.append((nested, depth + 1))
                    continue
            entries.append(d)
    unplaced = [d for d in entries if d.platform is None]
    if unplaced and (all_platforms or not any(d.platform and platform.rank(d.platform) is not None for d in entries)):
        # entries without a platform (an OCI layout's index.json): the config says which it is
        results = []
        for d in entries:
            manifest = child(d)
            if not isinstance(manifest, Manifest):
                raise ImageError("invalid manifest: an index entry is neither a manifest nor an index")
            config = parse_config(fetch_config(manifest.config))
            where = d.platform or config.platform
            if all_platforms or (where is not None and platform.rank(where) is not None):
                results.append((str(where or platform), config.env))
        if not results:
            raise ImageError(f"no {platform} image in the index")
        return results if all_platforms else results[:1]
    results = []
    for d in select_platforms(Index(tuple(entries)), platform, all_platforms):
        manifest = child(d)
        if not isinstance(manifest, Manifest):
            raise ImageError("invalid manifest: an index entry is neither a manifest nor an index")
        config = parse_config(fetch_config(manifest.config))
        results.append((str(d.platform or config.platform or platform), config.env))
    return results


def _problem(text: str, reason: str) -> ImageResolution:
    return ImageResolution(text, problem=ImageProblem(text, reason))


def resolve_images(
    refs: Iterable[str], options: ResolveOptions = ResolveOptions()
) -> tuple[dict[str, ImageResolution], Stats]:
    """Resolve every reference; the result maps each input text to its resolution."""
    counter = Counter()
    deadline = Deadline(options.deadline)
    texts = list(dict.fromkeys(refs))
    results: dict[str, ImageResolution] = {}
    groups: dict[str, tuple[Reference, list[str]]] = {}
    for text in texts:
        try:
            ref = parse_reference(text)
        except InputError as exc:
            results[text] = _problem(text, f"invalid reference: {exc.message}")
            continue
        groups.setdefault(str(ref), (ref, []))[1].append(text)
    if not groups:
        return results, counter.stats()
    session = _Session(options, counter, deadline)
    try:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(groups)), thread_name_prefix="gpuguard-img") as pool:
            futures = {key: pool.submit(_guarded, session, ref) for key, (ref, _) in groups.items()}
            for key, future in futures.items():
                outcome = future.result()
                for text in groups[key][1]:
                    if isinstance(outcome, str):
                        results[text] = _problem(text, outcome)
                    else:
                        configs = tuple(ImageConfig(text, f.digest, f.platform, f.env, f.source) for f in outcome)
                        results[text] = ImageResolution(text, configs)
    finally:
        session.close()
    return {text: results[text] for text in texts}, counter.stats()


def _guarded(session: _Session, ref: Reference) -> list[_Found] | str:
    """One reference's outcome, or the reason it failed; nothing escapes as an exception."""
    try:
        return session.resolve(ref)
    except ImageError as exc:
        return exc.reason
    except Exception as exc:  # a bug or an odd answer must not sink the other references
        log.debug("resolving %s failed: %s", ref, type(exc).__name__)
        return f"cannot inspect image ({type(exc).__name__})"
