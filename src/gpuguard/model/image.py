"""What an image's config says, as far as GPU exposure goes, and why it could not be read.

Sources (a registry, an OCI layout, a ``docker save`` archive, the cache)
produce these; the audit feeds ``env`` into the engine as the image layer of
the container's environment.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """One platform's image config: its ``config.Env`` in order."""

    reference: str  # as written in the workload, e.g. "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
    digest: str | None  # the manifest digest it resolved to ("sha256:..."), when known
    platform: str  # "linux/amd64"
    env: tuple[str, ...]  # config.Env, KEY=VALUE strings in order
    source: str  # "registry", "cache", "oci-layout:<path>", "archive:<path>"


@dataclass(frozen=True, slots=True)
class ImageProblem:
    """Why an image could not be inspected: never read as "does not set the variable"."""

    reference: str
    reason: str  # "auth denied (401)", "not found (404)", "timeout", "manifest digest mismatch", ...


@dataclass(frozen=True, slots=True)
class ImageResolution:
    """The answer for one reference: configs (one per platform asked for), or a problem."""

    reference: str
    configs: tuple[ImageConfig, ...] = ()
    problem: ImageProblem | None = None

    @property
    def env(self) -> tuple[str, ...] | None:
        """The env when every platform asked for agrees, else None (see ``disagree``)."""
        if self.problem is not None or not self.configs:
            return None
        first = self.configs[0].env
        return first if all(c.env == first for c in self.configs) else None

    @property
    def disagree(self) -> bool:
        """Platforms of one multi-platform image set different env (a finding of its own)."""
        return len({c.env for c in self.configs}) > 1
