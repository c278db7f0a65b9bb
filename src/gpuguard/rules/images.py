"""The image env the engine is given when images are not inspected.

Images of GPU software families (``AuditSettings.gpu_images``) are known to set
``NVIDIA_VISIBLE_DEVICES``: their env is unknown (absent from the mapping), so
exposure through them is "cannot be decided" (GG108), never safe. Other images
are assumed to set nothing (``()``); the audit counts that assumption in its
report header. Shared by the audit and the webhook so both assume the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gpuguard.rules.settings import AuditSettings


class AssumedImageEnv(Mapping[str, tuple[str, ...]]):
    """Image -> env: absent for GPU-family images (unknown), ``()`` for the others (assumed empty).

    ``memo_limit`` bounds the per-image memo for long-running faces (the webhook): it is cleared when
    full, which keeps memory flat but forgets what :meth:`assumed` would count.
    """

    def __init__(self, settings: AuditSettings, memo_limit: int | None = None) -> None:
        self.settings = settings
        self.memo_limit = memo_limit
        self.seen: dict[str, bool] = {}  # image -> belongs to a GPU family

    def get(self, image: str, default: Any = None) -> Any:
        gpu = self.seen.get(image)
        if gpu is None:
            if self.memo_limit is not None and len(self.seen) >= self.memo_limit:
                self.seen.clear()
            gpu = self.seen[image] = self.settings.is_gpu_image(image)
        return None if gpu else ()

    def __getitem__(self, image: str) -> tuple[str, ...]:
        value = self.get(image)
        if value is None:
            raise KeyError(image)
        return value  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return (image for image, gpu in self.seen.items() if not gpu)

    def __len__(self) -> int:
        return sum(1 for gpu in self.seen.values() if not gpu)

    def assumed(self) -> int:
        """Images seen so far whose env was assumed empty (not inspected)."""
        return len(self)
