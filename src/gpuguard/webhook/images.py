"""Image inspection for the webhook: each judged image's config env, from memory, the disk cache or its registry.

The admission core is pure, so the lookups happen here and reach it as data
(:class:`~gpuguard.admission.policy.ImageLookups`). Hot images cost nothing: an
in-memory LRU of answers sits on top of the resolver's disk cache. A miss is
resolved by ``sources.images.resolver`` on a small thread pool, never on the
event loop, once per image however many reviews ask for it at the same time
(single flight); each review waits for its images only until its lookup
deadline (``images.lookupTimeoutSeconds``), and an image still unanswered then
is *timed out* for that review (``failurePolicy`` decides), while its lookup
goes on for a while and a late answer is cached for the next review.

Answers are kept for a while: an image's env for ``POSITIVE_TTL`` (a tag may
move; the disk cache revalidates tags after an hour), a failure (auth denied,
not found) for ``NEGATIVE_TTL`` so a broken image does not cost a registry
round trip per pod; a timeout is never kept. Nothing here logs credentials or
registry answers: only image references and reasons.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gpuguard.admission.policy import ImageLookups
from gpuguard.audit.images import env_of
from gpuguard.model.admission import AdmissionConfig
from gpuguard.model.errors import InputError
from gpuguard.webhook.metrics import Metrics

log = logging.getLogger("gpuguard.webhook")

MAX_ENTRIES = 4096  # images remembered in memory
POSITIVE_TTL = 300.0  # seconds an image's env is reused without asking the resolver again
NEGATIVE_TTL = 30.0  # seconds a failure (not a timeout) is reused
WORKERS = 16  # lookups (each a resolver run of its own) at once
LATE_FACTOR = 2.0  # a lookup goes on this many lookup deadlines, so a late answer still fills the cache


@dataclass(frozen=True, slots=True)
class _Answer:
    env: tuple[str, ...] | None  # None: could not be inspected
    problem: str | None  # "could not be inspected: <why>"
    timed_out: bool
    expires: float


def settings_of(config: AdmissionConfig) -> tuple[object, ...]:
    """What a config says about image inspection (a reload that changes none of it keeps the cache)."""
    return (config.resolve_images, config.registry_auth, config.insecure_registries, config.ca_file,
            config.image_cache_dir, config.image_platform, config.lookup_timeout())  # fmt: skip


def check_files(config: AdmissionConfig) -> None:
    """Raise InputError naming the field when a file image inspection needs cannot be read."""
    if not config.resolve_images:
        return
    files = [(f"images.registryAuth[{i}]", path) for i, path in enumerate(config.registry_auth)]
    if config.ca_file is not None:
        files.append(("images.caFile", config.ca_file))
    for field, path in files:
        try:
            with Path(path).open("rb") as f:
                f.read(1)
        except OSError as exc:
            raise InputError(field, f"cannot read {path}: {exc.strerror or exc}") from None


class ImageLookup:
    """Image env for reviews: an LRU in memory, single-flight lookups off the event loop, a deadline per review."""

    def __init__(self, config: AdmissionConfig, metrics: Metrics, *, workers: int = WORKERS) -> None:
        from gpuguard.sources.images.resolver import ResolveOptions  # noqa: PLC0415 - the HTTP stack only when used

        self.settings = settings_of(config)
        self.metrics = metrics
        self.deadline = config.lookup_timeout()
        self.options = ResolveOptions(
            platform=config.image_platform,
            auth_files=config.registry_auth,
            insecure_registries=config.insecure_registries,
            ca_file=config.ca_file,
            cache_dir=config.image_cache_dir,
            timeout=self.deadline,
            deadline=self.deadline * LATE_FACTOR,
        )
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gpuguard-image")
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, _Answer] = OrderedDict()
        self._flights: dict[str, Future[_Answer]] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def cached(self, image: str) -> _Answer | None:
        """A fresh answer from memory (most recently used first out of the way of eviction), else None."""
        with self._lock:
            answer = self._answers.get(image)
            if answer is None:
                return None
            if answer.expires <= time.monotonic():
                del self._answers[image]
                return None
            self._answers.move_to_end(image)
            return answer

    async def lookup(self, images: Sequence[str], started: float | None = None) -> ImageLookups:
        """The env of ``images``, waiting at most the lookup deadline from ``started`` (a monotonic time)."""
        end = (started if started is not None else time.monotonic()) + self.deadline
        answers: dict[str, _Answer] = {}
        waiting: dict[str, Future[_Answer]] = {}
        for image in images:
            answer = self.cached(image)
            if answer is not None:
                self.metrics.image_cache.labels("hit").inc()
                answers[image] = answer
            else:
                self.metrics.image_cache.labels("miss").inc()
                waiting[image] = self._flight(image)
        if waiting:
            wrapped = {image: asyncio.wrap_future(f) for image, f in waiting.items()}
            remaining = end - time.monotonic()
            if remaining > 0:
                await asyncio.wait(wrapped.values(), timeout=remaining)
            for image, future in wrapped.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    answers[image] = future.result()
                else:
                    answers[image] = _Answer(None, f"could not be inspected: timeout (the lookup deadline of "
                                                   f"{self.deadline:g}s ran out)", True, 0.0)  # fmt: skip
        env: dict[str, tuple[str, ...] | None] = {}
        problems: dict[str, str] = {}
        timed_out: set[str] = set()
        for image, answer in answers.items():
            env[image] = answer.env
            if answer.problem is not None:
                problems[image] = answer.problem
            if answer.timed_out:
                timed_out.add(image)
                self.metrics.image_cache.labels("timeout").inc()
        if timed_out:
            log.warning("image lookup timed out after %gs: %s", self.deadline, ", ".join(sorted(timed_out)))
        return ImageLookups(env, problems, frozenset(timed_out), self.deadline)

    def _flight(self, image: str) -> Future[_Answer]:
        """The lookup of ``image`` in progress, or a new one on the pool."""
        with self._lock:
            flight = self._flights.get(image)
            if flight is not None:
                return flight
            try:
                flight = self.pool.submit(self._resolve, image)
            except RuntimeError:  # the pool is shut down (a config reload replaced it)
                flight = Future()
                flight.set_result(_Answer(None, "could not be inspected: the webhook is reloading", False, 0.0))
                return flight
            self._flights[image] = flight
        return flight

    def _resolve(self, image: str) -> _Answer:
        from gpuguard.sources.images.resolver import resolve_images  # noqa: PLC0415

        try:
            try:
                found, _stats = resolve_images([image], self.options)
                env, why = env_of(found[image])
            except InputError as exc:  # bad options: an unreadable auth file or CA bundle
                env, why = None, f"could not be inspected: {exc.message}"
            except Exception as exc:  # a bug must not sink the review: unknown, with a reason
                env, why = None, f"could not be inspected ({type(exc).__name__})"
            timed_out = why is not None and why.removeprefix("could not be inspected: ").startswith("timeout")
            ttl = 0.0 if timed_out else POSITIVE_TTL if env is not None else NEGATIVE_TTL
            answer = _Answer(env, why, timed_out, time.monotonic() + ttl)
            if why is not None:
                log.info("image %s %s", image, why)
            if not timed_out:
                with self._lock:
                    self._answers[image] = answer
                    self._answers.move_to_end(image)
                    while len(self._answers) > MAX_ENTRIES:
                        self._answers.popitem(last=False)
            return answer
        finally:
            with self._lock:
                self._flights.pop(image, None)
