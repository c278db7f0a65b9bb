"""Platforms ("os/arch[/variant]") and choosing one from an image index, as containerd does.

Architecture aliases (``x86_64``, ``aarch64``) are normalised and the default variants
(``arm64`` is ``v8``, ``arm`` is ``v7``) are filled in, so ``linux/arm64`` matches an entry
written ``linux/arm64/v8`` and the other way round. An ``arm`` host runs older variants, so
``linux/arm/v7`` falls back to ``v6`` then ``v5`` when there is no ``v7`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuguard.model.errors import InputError

__all__ = ["Platform", "parse_platform"]

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", ""),
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True, slots=True)
class Platform:
    """A normalised platform; ``str()`` writes it as containerd does (``linux/arm64``, ``linux/arm/v7``)."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def of(cls, os_name: str, architecture: str, variant: str = "") -> Platform:
        """Normalise names and fill in the default variant."""
        arch = architecture.lower()
        alias_arch, alias_variant = _ARCH_ALIASES.get(arch, (arch, ""))
        variant = (variant or alias_variant).lower()
        if not variant:
            variant = _DEFAULT_VARIANT.get(alias_arch, "")
        return cls(os_name.lower(), alias_arch, variant)

    def __str__(self) -> str:
        if self.variant and not (self.architecture == "arm64" and self.variant == "v8"):
            return f"{self.os}/{self.architecture}/{self.variant}"
        return f"{self.os}/{self.architecture}"

    def rank(self, other: Platform) -> int | None:
        """How well ``other`` (an index entry) serves this platform: 0 best, None not at all."""
        if other.os != self.os or other.architecture != self.architecture:
            return None
        if other.variant == self.variant:
            return 0
        if self.architecture == "arm" and other.variant[:1] == "v" and self.variant[:1] == "v":
            try:
                want, have = int(self.variant[1:]), int(other.variant[1:])
            except ValueError:
                return None
            return want - have if have < want else None
        return None


def parse_platform(text: str) -> Platform:
    """``"linux/amd64"``, ``"linux/arm64/v8"``; raise :class:`InputError` otherwise."""
    parts = text.strip().split("/") if isinstance(text, str) else []
    if len(parts) not in (2, 3) or not all(parts):
        raise InputError("platform", f"expected os/arch[/variant], got {text!r}")
    return Platform.of(*parts)
