"""The toolkit's logs: which container each line is about and whether its device request was honoured.

Lines are typed after the toolkit's own wording (nvidia-container-toolkit
internal/config/image/cuda_image.go, internal/modifier/cdi*.go, internal/oci/spec.go,
libnvidia-container's glog-style CLI log) in each of the formats it writes.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuguard.model.observed import ToolkitLogEntry
from gpuguard.sources.node import NodeSourceError
from gpuguard.sources.node.toolkit_log import journal_entries, parse_lines, read_toolkit_log

CID = "4f1c0e9b7a2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6"
OTHER = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
TASKS = "/run/containerd/io.containerd.runtime.v2.task/k8s.io"
BUNDLE = f"{TASKS}/{CID}"
GATE = "Ignoring devices requested by environment variable(s) in unprivileged container: [NVIDIA_VISIBLE_DEVICES]"
T = "2026-11-29T10:00:00Z"

CASES = [
    ("logrus text, privilege gate", [
        f'time="{T}" level=debug msg="Using bundle directory: {BUNDLE}"',
        f'time="{T}" level=info msg="Using OCI specification file path: {BUNDLE}/config.json"',
        f'time="{T}" level=warning msg="{GATE}"',
        f'time="{T}" level=debug msg="Forwarding command to runtime /usr/bin/runc"',
    ], [ToolkitLogEntry(CID, T, GATE, False)]),
    ("logrus JSON, CDI injection", [
        '{"level":"info","msg":"Using OCI specification file path: ' + BUNDLE + '/config.json","time":"' + T + '"}',
        '{"level":"debug","msg":"Creating CDI modifier for devices: [nvidia.com/gpu=0]","time":"' + T + '"}',
        '{"level":"debug","msg":"Injecting devices using CDI: [nvidia.com/gpu=0]","time":"' + T + '"}',
    ], [ToolkitLogEntry(CID, T, "Creating CDI modifier for devices: [nvidia.com/gpu=0]", True),
        ToolkitLogEntry(CID, T, "Injecting devices using CDI: [nvidia.com/gpu=0]", True)]),
    ("no devices requested", [
        f'time="{T}" level=debug msg="Using bundle directory: {BUNDLE}"',
        f'time="{T}" level=info msg="No modification required; no devices requested"',
    ], [ToolkitLogEntry(CID, T, "No modification required; no devices requested", None)]),
    ("unresolvable CDI device", [
        f'time="{T}" level=debug msg="Using bundle directory: {BUNDLE}"',
        f'time="{T}" level=warning msg="could not resolve CDI devices: [management.nvidia.com/gpu=GPU-1]"',
    ], [ToolkitLogEntry(CID, T, "could not resolve CDI devices: [management.nvidia.com/gpu=GPU-1]", False)]),
    ("legacy discover modifier injects device nodes", [
        f'time="{T}" level=info msg="Using OCI specification file path: {BUNDLE}/config.json"',
        f'time="{T}" level=info msg="Injecting /dev/nvidia1"',
        f'time="{T}" level=info msg="Injecting /usr/bin/nvidia-ctk [nvidia-ctk hook update-ldcache]"',
    ], [ToolkitLogEntry(CID, T, "Injecting /dev/nvidia1", True)]),
    ("old runtime: runc argv names the bundle, old gate wording", [
        f"2021/06/01 10:00:00 Running /usr/bin/runc --root /run/containerd/runc/k8s.io create --bundle {BUNDLE} {CID}",
        "2021/06/01 10:00:00 Ignoring devices specified in NVIDIA_VISIBLE_DEVICES (privileged=false, "
        "config.accept-nvidia-visible-devices-envvar-when-unprivileged=false) ",
    ], [ToolkitLogEntry(CID, "2021/06/01 10:00:00", "Ignoring devices specified in NVIDIA_VISIBLE_DEVICES "
        "(privileged=false, config.accept-nvidia-visible-devices-envvar-when-unprivileged=false)", False)]),
    ("CLI log: rootfs names the container, mounts are injections", [
        "I1129 10:00:00.100000 2463 nvc.c:376] initializing library context (version=1.17.8, build=x)",
        f"I1129 10:00:00.200000 2469 nvc_container.c:267] setting rootfs to {BUNDLE}/rootfs",
        "I1129 10:00:00.300000 2469 nvc_mount.c:112] mounting /dev/nvidia2 at /x/rootfs/dev/nvidia2",
        "I1129 10:00:00.400000 2469 nvc_mount.c:134] whitelisting device node 195:2",
    ], [ToolkitLogEntry(CID, "1129 10:00:00.300000", "mounting /dev/nvidia2 at /x/rootfs/dev/nvidia2", True),
        ToolkitLogEntry(CID, "1129 10:00:00.400000", "whitelisting device node 195:2", True)]),
    ("a new CLI invocation forgets the previous container", [
        f"I1129 10:00:00.200000 2469 nvc_container.c:267] setting rootfs to {BUNDLE}/rootfs",
        "I1129 10:00:01.000000 2500 nvc.c:376] initializing library context (version=1.17.8, build=x)",
        "I1129 10:00:01.300000 2500 nvc_mount.c:112] mounting /dev/nvidia0 at /var/lib/docker/m/dev/nvidia0",
    ], [ToolkitLogEntry(None, "1129 10:00:01.300000", "mounting /dev/nvidia0 at /var/lib/docker/m/dev/nvidia0",
                        True)]),
    ("interleaved invocations: each line keeps the last named container", [
        f'time="{T}" level=debug msg="Using bundle directory: {BUNDLE}"',
        f'time="{T}" level=debug msg="Using bundle directory: {TASKS}/{OTHER}"',
        f'time="{T}" level=warning msg="{GATE}"',
    ], [ToolkitLogEntry(OTHER, T, GATE, False)]),
    ("a verdict before any container is named", [f'time="{T}" level=warning msg="{GATE}"'],
     [ToolkitLogEntry(None, T, GATE, False)]),
    ("unrelated lines and noise give nothing", [
        "", "-- WARNING, the following logs are for debugging purposes only --", "{not json", '{"msg": 3}',
        f'time="{T}" level=info msg="Running with config: {{...}}"',
    ], []),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_lines(lines: list[str], expected: list[ToolkitLogEntry]) -> None:
    assert list(parse_lines(lines)) == expected


def test_read_several_files_in_order(tmp_path: Path) -> None:
    runtime, cli = tmp_path / "nvidia-container-runtime.log", tmp_path / "nvidia-container-toolkit.log"
    runtime.write_text("\n".join(CASES[0][1]) + "\n")
    cli.write_text("\n".join(CASES[6][1]) + "\n")
    got = read_toolkit_log([str(runtime), str(tmp_path / "rotated-away.log"), str(cli)])
    assert [(e.container_id, e.honoured) for e in got] == [(CID, False), (CID, True), (CID, True)]


def test_only_the_tail_is_read_and_a_cut_line_is_dropped(tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    old = f'time="{T}" level=warning msg="{GATE}"\n'
    named = f'time="{T}" level=debug msg="Using bundle directory: {BUNDLE}"\n'
    recent = f'time="{T}" level=debug msg="Injecting devices using CDI: [nvidia.com/gpu=1]"\n'
    log.write_text(old * 100 + named + recent)
    got = read_toolkit_log([str(log)], max_bytes=len(named) + len(recent) + 10)
    assert got == (ToolkitLogEntry(CID, T, "Injecting devices using CDI: [nvidia.com/gpu=1]", True),)
    assert read_toolkit_log([str(log)], max_bytes=len(recent) - 1) == ()  # the one line is cut: nothing


def test_missing_files_are_not_errors(tmp_path: Path) -> None:
    assert read_toolkit_log([str(tmp_path / "absent.log"), str(tmp_path / "no" / "dir.log")]) == ()
    assert read_toolkit_log([]) == ()


def test_an_unreadable_path_is_an_error_only_when_nothing_was_read(tmp_path: Path) -> None:
    a_dir = tmp_path / "logdir"
    a_dir.mkdir()
    with pytest.raises(NodeSourceError, match="logdir") as raised:
        read_toolkit_log([str(a_dir)])
    assert raised.value.source == "toolkit-log"
    good = tmp_path / "ok.log"
    good.write_text("\n".join(CASES[0][1]))
    assert len(read_toolkit_log([str(a_dir), str(good)])) == 1


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "runtime.log"
    os.mkfifo(fifo)  # opening a FIFO for reading would wait for a writer
    with pytest.raises(NodeSourceError, match=r"runtime\.log: not a regular file"):
        read_toolkit_log([str(fifo)])
    with pytest.raises(NodeSourceError, match="/dev/zero: not a regular file"):
        read_toolkit_log(["/dev/zero"])


def test_a_truncated_file_is_read_from_its_new_start(tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    log.write_text("\n".join(CASES[0][1]) * 50)
    assert len(read_toolkit_log([str(log)])) == 50
    log.write_text("\n".join(CASES[2][1]))  # logrotate copytruncate: same path, shorter file
    assert [e.honoured for e in read_toolkit_log([str(log)])] == [None]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_binary_garbage_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("garbage") / "runtime.log"
    path.write_bytes(data)
    for entry in read_toolkit_log([str(path)], max_bytes=1024):
        assert isinstance(entry.message, str)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=20), st.sampled_from([line for c in CASES for line in c[1]]))
def test_any_text_around_a_line_never_crashes(noise: list[str], line: str) -> None:
    entries = parse_lines([*noise, line, *noise])
    assert all(e.honoured in (True, False, None) for e in entries)


_FORMATS: dict[str, Callable[[str], str]] = {
    "text": lambda msg: f'time="{T}" level=info msg="{msg}"',
    "json": lambda msg: '{"level":"info","msg":"' + msg + '","time":"' + T + '"}',
    "glog": lambda msg: f"I1129 10:00:00.000001 42 nvc_container.c:267] {msg}",
}


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,63}", fullmatch=True),
    st.sampled_from(sorted(_FORMATS)),
    st.sampled_from(["Using bundle directory: {b}", "Using OCI specification file path: {b}/config.json",
                     "setting rootfs to {b}/rootfs"]),
)  # fmt: skip
def test_the_named_container_carries_to_the_verdict(container_id: str, fmt: str, naming: str) -> None:
    line = _FORMATS[fmt]
    named = line(naming.format(b=f"{TASKS}/{container_id}"))
    assert parse_lines([named, line(GATE)]) == (ToolkitLogEntry(container_id, _time(fmt), GATE, False),)


def _time(fmt: str) -> str:
    return "1129 10:00:00.000001" if fmt == "glog" else T


# --- the journal ----------------------------------------------------------------------------------


def test_journal_without_journalctl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert journal_entries() == ()


def test_journal_on_this_host_does_not_fail() -> None:
    if shutil.which("journalctl") is None:
        pytest.skip("journalctl is not installed")
    assert isinstance(journal_entries("gpuguard-no-such-unit"), tuple)


def _journalctl(tmp_path: Path, body: str) -> None:
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_journal_json_messages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """journalctl --output json: MESSAGE is a string, or an array of bytes when it is not UTF-8."""
    gate = list(f'time="{T}" level=warning msg="{GATE}"\n'.encode())
    records = [
        '{"MESSAGE": "time=\\"' + T + '\\" level=debug msg=\\"Using bundle directory: ' + BUNDLE + '\\""}',
        '{"MESSAGE": ' + str(gate) + "}",
        "not json",
        '{"MESSAGE": null}',
    ]
    _journalctl(tmp_path, 'test "$2" = containerd || exit 3\ncat <<"EOF"\n' + "\n".join(records) + "\nEOF\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    assert journal_entries("containerd", since="-10min") == (ToolkitLogEntry(CID, T, GATE, False),)


def test_journal_failure_names_the_unit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _journalctl(tmp_path, 'echo "Failed to open journal" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    with pytest.raises(NodeSourceError, match="journalctl --unit kubelet exited 1: Failed to open journal"):
        journal_entries("kubelet")
