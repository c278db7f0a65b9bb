"""Dockerfiles in the audit: evaluate the final stage's env and hand it to GG109.

Why here: the base image's env comes from the same place as a container's
(the resolver's answers with ``--resolve-images``, else the GPU-family
assumption), so Dockerfiles and workloads are judged on the same footing.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpuguard.audit.images import ResolvedImages
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Finding, Location, ReadError
from gpuguard.rules.dockerfile import FinalImage, check_dockerfile
from gpuguard.rules.images import AssumedImageEnv as ImageEnv
from gpuguard.rules.settings import AuditSettings
from gpuguard.sources.images.dockerfile import BaseEnv, Dockerfile, parse
from gpuguard.sources.inputs import read_input

NO_FROM = "(Dockerfile without FROM)"


def _base_env(images: ImageEnv) -> BaseEnv:
    def base(image: str) -> tuple[tuple[str, ...] | None, str]:
        env = images.get(image)
        if isinstance(images, ResolvedImages):
            return env, f"base image {image} {images.problems.get(image, 'could not be inspected')}"
        return env, f"base image {image} was not inspected"

    return base


def read_dockerfile(path: str) -> tuple[str | None, ReadError | None]:
    """A Dockerfile's text, or why it cannot be read."""
    item = read_input(path)
    if item.error is not None:
        return None, item.error
    try:
        return item.data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, ReadError(f"not UTF-8 text: invalid byte at offset {exc.start}", Location(path))


def external_bases(path: str, platform: str) -> Iterator[str]:
    """The external base images a Dockerfile names (for the pre-scan); nothing when unreadable."""
    text, _ = read_dockerfile(path)
    if text is None:
        return
    try:
        yield from parse(text, path, platform=platform).external
    except InputError:
        return


def final_image(df: Dockerfile, images: ImageEnv, settings: AuditSettings) -> FinalImage:
    """The final stage as GG109 reads it: its bases in turn and the env it sets."""
    chain = list(df.chain())
    bases = tuple(
        f"stage '{df.stages[s.parent].name}' (line {df.stages[s.parent].line})" if s.parent is not None else s.base
        for s in chain
    )
    final = df.final
    resolved = isinstance(images, ResolvedImages)
    root = chain[-1]
    family = None
    if not resolved and final.env.unknown is not None and root.parent is None and root.base:
        family = settings.gpu_image_pattern(root.base)
    return FinalImage(
        path=df.path,
        line=final.line,
        bases=bases,
        env=final.env.values,
        origin=final.env.origin,
        unknown=final.env.unknown,
        gpu_family=family,
        resolved=resolved,
    )


def judge(
    path: str, images: ImageEnv, settings: AuditSettings, platform: str
) -> tuple[list[Finding], ReadError | None, bool]:
    """GG109 findings for one Dockerfile, a read error, and whether it was judged (it has a FROM)."""
    text, error = read_dockerfile(path)
    if text is None:
        return [], error, False
    try:
        image = evaluate(text, path, images, settings, platform)
    except (InputError, RecursionError):
        return [], None, False
    return check_dockerfile(image), None, True


def evaluate(text: str, path: str, images: ImageEnv, settings: AuditSettings, platform: str) -> FinalImage:
    """The final stage of Dockerfile ``text``, its bases' env read as the audit reads images."""
    resolved = isinstance(images, ResolvedImages)
    df = parse(text, path, _base_env(images), platform=platform,
               assume_clean=lambda image: not resolved and not settings.is_gpu_image(image))  # fmt: skip
    return final_image(df, images, settings)
