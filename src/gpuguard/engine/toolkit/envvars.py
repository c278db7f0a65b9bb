"""The toolkit's environment handling: the OCI env list and device-list values.

Parsing is split the way the toolkit splits it: first the whole ``process.env``
list becomes a map (later duplicates win), then a device-list value is read
either as one string (before v1.12) or as tokens (v1.12+). Token parsing is
cached per value, because the same few values recur in every pod.
"""

from __future__ import annotations

from functools import lru_cache

from gpuguard.engine.toolkit.versions import Behaviour

NVD = "NVIDIA_VISIBLE_DEVICES"
IMEX = "NVIDIA_IMEX_CHANNELS"
# Go's strings.TrimSpace set (unicode.IsSpace); Python's str.strip() would also strip \x1c-\x1f.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def parse_env(env: tuple[str, ...]) -> tuple[dict[str, str], str | None]:
    """Map ``K=V`` entries (split at the first ``=``, later duplicates win).

    Returns the map and the first entry without ``=``, which makes the toolkit
    fail (v1.0.5:nvidia-container-toolkit/container_config.go getEnvMap panics;
    v1.10.0+:internal/config/image NewCUDAImageFromEnv returns an error).
    """
    out: dict[str, str] = {}
    for entry in env:
        key, sep, value = entry.partition("=")
        if not sep:
            return out, entry
        out[key] = value
    return out, None


def env_error(b: Behaviour, entry: str) -> str:
    """The toolkit's message for an env entry without ``=``."""
    # v1.0.5..v1.9.x: log.Panicln("environment error");
    # v1.10.0+: fmt.Errorf("invalid environment variable: %v").
    if b.semver_cuda_version:
        return f"invalid environment variable: {entry}"
    return "environment error"


def is_legacy_image(env: dict[str, str]) -> bool:
    """CUDA_VERSION non-empty and NVIDIA_REQUIRE_CUDA empty (every version)."""
    return bool(env.get("CUDA_VERSION")) and not env.get("NVIDIA_REQUIRE_CUDA")


def whole_string(value: str | None, legacy: bool) -> tuple[str, ...] | None:
    """Pre-1.12 semantics: the value is used whole; the result is what goes to ``--device=``.

    v1.3.0:pkg/container_config.go getDevicesFromEnvvar (same rules in v1.0.5):
    unset + legacy image → "all"; unset, "" or "void" → not a GPU container;
    exactly "none" → ""; anything else is passed verbatim (so "GPU0,void" is a
    device list containing "void"). We split on "," only to list the ids that
    nvidia-container-cli will see; nothing is trimmed or dropped.
    """
    if value is None:
        return ("all",) if legacy else None
    if value in {"", "void"}:
        return None
    if value == "none":
        return ("",)
    return tuple(value.split(","))


@lru_cache(maxsize=4096)
def _tokens(values: tuple[str, ...]) -> tuple[str, ...] | None:
    # v1.12.0:internal/config/image/cuda_image.go DevicesFromEnvvars: split, trim, drop empty;
    # "void" anywhere wins.
    pieces: list[str] = []
    for value in values:
        for raw in value.split(","):
            piece = raw.strip(GO_SPACE)
            if piece:
                if piece == "void":
                    return None
                pieces.append(piece)
    if not pieces:
        return None
    # v1.12.0:internal/config/image/devices.go NewVisibleDevices: first "all" or "none" wins.
    for piece in pieces:
        if piece == "all":
            return ("all",)
        if piece == "none":
            return ("",)
    # devices.List(): each id sits at the index of its LAST occurrence; earlier slots stay "".
    last = {piece: i for i, piece in enumerate(pieces)}
    if len(last) == len(pieces):
        return tuple(pieces)
    slots = [""] * len(pieces)
    for piece, i in last.items():
        slots[i] = piece
    return tuple(slots)


def tokens(values: tuple[str, ...], any_set: bool, legacy: bool) -> tuple[str, ...] | None:
    """v1.12+ device list from the values of the chosen variables.

    ``any_set`` says whether at least one chosen variable is present; only when
    none is does a legacy image default to ``all``.
    """
    if not any_set:
        return ("all",) if legacy else None
    return _tokens(values)
