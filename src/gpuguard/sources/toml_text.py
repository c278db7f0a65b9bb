"""Reading TOML text (the toolkit's ``config.toml``) with a Rust-backed parser.

Only syntax is handled here. Which keys the toolkit reads, and where, is the
engine's business (``gpuguard.engine.toolkit.config``): a key placed under the
wrong table must survive parsing so that the engine can say it is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

import rtoml

from gpuguard.model.errors import InputError


def parse_toml(text: str, where: str) -> Mapping[str, object]:
    """Parse TOML text; a syntax error becomes one ``InputError`` naming line and column."""
    if not isinstance(text, str):
        raise InputError(where, f"expected TOML text (a string), got {type(text).__name__}")
    if "\x00" in text:
        raise InputError(where, "binary data, not TOML text")
    try:
        doc = rtoml.loads(text)
    except rtoml.TomlParsingError as exc:
        raise InputError(where, f"invalid TOML: {exc}") from None
    return doc
