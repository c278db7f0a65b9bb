"""The node's toolkit config as the agent reads it: the audit's TOML source and engine, re-read on change,
never an exception (a file that cannot be read makes the scan degraded and the prediction uses defaults)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuguard.agent.toolkit import MAX_CONFIG_BYTES, ToolkitReader
from gpuguard.model.errors import InputError
from gpuguard.model.version import Version

ENVVAR = "accept-nvidia-visible-devices-envvar-when-unprivileged"

# (config.toml text, envvar accepted as the toolkit reads it, error contains, a note contains)
CASES = [
    (f"{ENVVAR} = false\n", False, None, None),
    (f"{ENVVAR} = true\n[nvidia-container-runtime]\nmode = \"cdi\"\n", True, None, None),
    # Appended under the last table: the toolkit ignores it and keeps its default (true).
    (f"[nvidia-ctk]\npath = \"/usr/bin/nvidia-ctk\"\n{ENVVAR} = false\n", True, None, "[nvidia-ctk]"),
    (f"{ENVVAR} = \"false\"\n", True, "expected a boolean, got string", None),
    ("[nvidia-container-runtime\nmode = 1\n", True, "invalid TOML", None),
    ("", True, None, None),
]


@pytest.mark.parametrize(("text", "accepted", "error", "note"), CASES)
def test_config_as_the_toolkit_reads_it(tmp_path: Path, text: str, accepted: bool, error: str | None,
                                        note: str | None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    got = ToolkitReader(str(path), "1.17.8").read()
    assert got.toolkit.config.accept_envvar_unprivileged is accepted
    assert got.toolkit.version == Version.parse("1.17.8")
    if error is None:
        assert got.error is None
        assert got.source == f"config.toml ({path})"
    else:
        assert got.error is not None and got.error.startswith(f"{path}: ") and error in got.error
        assert got.source == "toolkit defaults (no config.toml)"
    if note is not None:
        assert any(n.startswith(f"{path}: ") and note in n for n in got.notes), got.notes


def test_unreadable_files_are_errors_naming_them(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    assert "cannot read: No such file or directory" in (ToolkitReader(str(missing)).read().error or "")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"mode = \"\xff\xfe\"\n")
    assert "not UTF-8 text: invalid byte at offset 8" in (ToolkitReader(str(binary)).read().error or "")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    assert "larger than" in (ToolkitReader(str(big)).read().error or "")
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    assert (ToolkitReader(str(directory)).read().error or "").startswith(f"{directory}: cannot read: ")


def test_version_unknown_is_assumed_and_said(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"{ENVVAR} = false\n")
    got = ToolkitReader(str(path)).read()
    assert got.version_assumed
    assert any("toolkit release not known on the node: assumed v" in n and "--toolkit-version" in n
               for n in got.notes)
    given_version = ToolkitReader(str(path), "1.10.0").read()
    assert not given_version.version_assumed and given_version.toolkit.version == Version.parse("1.10.0")
    assert not any("not known" in n for n in given_version.notes)


def test_bad_version_is_a_usage_error() -> None:
    with pytest.raises(InputError, match="--toolkit-version"):
        ToolkitReader.check_version("latest")


def test_reread_only_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"{ENVVAR} = false\n")
    reader = ToolkitReader(str(path), "1.17.8")
    first = reader.read()
    assert reader.read() is first  # unchanged: not parsed again
    path.write_text(f"{ENVVAR} = true\n")
    os.utime(path, ns=(10**18, 10**18))
    second = reader.read()
    assert second is not first and second.toolkit.config.accept_envvar_unprivileged is True
    path.unlink()
    assert (reader.read().error or "").endswith("cannot read: No such file or directory")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)))
def test_any_bytes_give_a_toolkit_or_one_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    got = ToolkitReader(str(path), "1.17.8").read()
    assert got.toolkit.version == Version.parse("1.17.8")
    assert got.error is None or got.error.startswith(f"{path}: ")
