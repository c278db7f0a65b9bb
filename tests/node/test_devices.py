"""Device nodes a container holds (a /proc tree built from real mknod'd nodes) and the driver's GPU list."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuguard.model.observed import DeviceNode, HeldDevices, NodeGpu
from gpuguard.sources.node import NodeSourceError
from gpuguard.sources.node.devices import classify, held_devices, node_gpus, node_majors, parse_information

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod of device nodes needs root")

# path under /dev, major, minor, the node's /proc/devices majors -> expected kind (None: not NVIDIA's)
CLASSIFY = [
    ("nvidia0", 195, 0, None, "gpu"),
    ("nvidia7", 195, 7, None, "gpu"),
    ("nvidia253", 195, 253, None, "gpu"),
    ("nvidia-modeset", 195, 254, None, "modeset"),
    ("nvidiactl", 195, 255, None, "control"),
    ("renamed-gpu", 195, 3, None, "gpu"),  # the numbers grant the GPU, not the name
    ("dri/nvidia-hidden", 195, 1, None, "gpu"),
    ("nvidia-uvm", 510, 0, None, "uvm"),
    ("nvidia-uvm-tools", 510, 1, None, "uvm"),
    ("uvm-elsewhere", 510, 0, {"nvidia-uvm": 510}, "uvm"),
    ("nvidia-caps/nvidia-cap1", 508, 1, None, "caps"),
    ("nvidia-caps-imex-channels/channel0", 507, 0, None, "caps"),
    ("cap-elsewhere", 508, 2, {"nvidia-caps": 508}, "caps"),
    ("nvidia-nvswitchctl", 506, 255, None, "other"),
    ("null", 1, 3, None, None),
    ("fuse", 10, 229, None, None),
    ("dri/card0", 226, 0, None, None),
    ("uvm-elsewhere", 510, 0, {"nvidia-uvm": 509}, None),
]


@pytest.mark.parametrize(("path", "major", "minor", "majors", "kind"), CLASSIFY)
def test_classify(path: str, major: int, minor: int, majors: dict[str, int] | None, kind: str | None) -> None:
    node = classify(path, major, minor, majors)
    assert node == (None if kind is None else DeviceNode(path, major, minor, kind))


def test_gpu_minor_only_for_gpu_nodes() -> None:
    assert classify("nvidia2", 195, 2).gpu_minor == 2  # type: ignore[union-attr]
    assert classify("nvidiactl", 195, 255).gpu_minor is None  # type: ignore[union-attr]


def test_node_majors_reads_character_devices_only(tmp_path: Path) -> None:
    (tmp_path / "devices").write_text(
        "Character devices:\n  1 mem\n195 nvidia-frontend\n505 nvidia-caps-imex-channels\n"
        "508 nvidia-caps\n510 nvidia-uvm\n\nBlock devices:\n259 nvidia-fake-block\n"
    )
    assert node_majors(str(tmp_path)) == {
        "nvidia-frontend": 195, "nvidia-caps-imex-channels": 505, "nvidia-caps": 508, "nvidia-uvm": 510,
    }


def test_node_majors_without_proc_devices(tmp_path: Path) -> None:
    with pytest.raises(NodeSourceError, match="devices"):
        node_majors(str(tmp_path))


def _char(path: Path, major: int, minor: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(major, minor))


def _proc(tmp_path: Path, pid: int, rootfs: Path) -> str:
    """A /proc with ``<pid>/root`` pointing at ``rootfs`` (as the kernel's magic link does)."""
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "root").symlink_to(rootfs)
    return str(proc)


@needs_root
def test_held_devices_reads_nodes_and_only_nodes(tmp_path: Path) -> None:
    dev = tmp_path / "rootfs" / "dev"
    _char(dev / "nvidia0", 195, 0)
    _char(dev / "nvidiactl", 195, 255)
    _char(dev / "nvidia-uvm", 511, 0)
    _char(dev / "null", 1, 3)
    _char(dev / "nvidia-caps" / "nvidia-cap1", 509, 1)
    _char(dev / "deep" / "er" / "gpu", 195, 3)
    (dev / "nvidia9").write_text("a regular file is not a device")
    (dev / "nvidia5").symlink_to("/dev/nvidia0")  # a link is not followed, even to a real node
    host = tmp_path / "host"
    _char(host / "nvidia2", 195, 2)
    (dev / "linked-dir").symlink_to(host)  # nor a link to a directory holding nodes
    held = held_devices("c1", 4242, _proc(tmp_path, 4242, tmp_path / "rootfs"))
    assert held.error is None
    assert held.nodes == (
        DeviceNode("deep/er/gpu", 195, 3, "gpu"),
        DeviceNode("nvidia-caps/nvidia-cap1", 509, 1, "caps"),
        DeviceNode("nvidia-uvm", 511, 0, "uvm"),
        DeviceNode("nvidia0", 195, 0, "gpu"),
        DeviceNode("nvidiactl", 195, 255, "control"),
    )
    assert held.gpu_minors == frozenset({0, 3})


@needs_root
def test_held_devices_refuses_a_dev_symlink(tmp_path: Path) -> None:
    host = tmp_path / "host"
    _char(host / "nvidia0", 195, 0)
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "dev").symlink_to(host)
    held = held_devices("c1", 77, _proc(tmp_path, 77, tmp_path / "rootfs"))
    assert held.nodes == ()
    assert held.error is not None and "symlink" in held.error and "/77/root/dev" in held.error


def test_held_devices_of_a_vanished_process(tmp_path: Path) -> None:
    held = held_devices("gone", 999_999, str(tmp_path))
    assert held.container_id == "gone"
    assert held.nodes == ()
    assert held.error is not None and "gone" in held.error


def test_held_devices_of_this_process_has_no_nvidia_nodes_without_a_driver() -> None:
    if os.path.exists("/proc/driver/nvidia") or any(n.startswith("nvidia") for n in os.listdir("/dev")):
        pytest.skip("the host has NVIDIA device nodes")
    assert held_devices("self", os.getpid()) == HeldDevices("self", ())


INFORMATION = (
    "Model: \t\t NVIDIA A100-SXM4-80GB\nIRQ:   \t\t 0\nGPU UUID: \t GPU-5ae4c0e5-3c63-5cba-0b4a-30f6e4ad6c4d\n"
    "Video BIOS: \t 92.00.45.00.06\nBus Type: \t PCIe\nDMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\n"
    "Bus Location: \t 0000:07:00.0\nDevice Minor: \t 0\nGPU Excluded:\t No\n"
)


def test_parse_information_as_the_driver_writes_it() -> None:
    assert parse_information(INFORMATION) == {
        "Model": "NVIDIA A100-SXM4-80GB", "IRQ": "0", "GPU UUID": "GPU-5ae4c0e5-3c63-5cba-0b4a-30f6e4ad6c4d",
        "Video BIOS": "92.00.45.00.06", "Bus Type": "PCIe", "DMA Size": "47 bits", "DMA Mask": "0x7fffffffffff",
        "Bus Location": "0000:07:00.0", "Device Minor": "0", "GPU Excluded": "No",
    }


def _driver(tmp_path: Path, files: dict[str, str]) -> str:
    for bus, text in files.items():
        (tmp_path / "gpus" / bus).mkdir(parents=True)
        (tmp_path / "gpus" / bus / "information").write_text(text)
    return str(tmp_path)


def test_node_gpus_sorted_by_minor(tmp_path: Path) -> None:
    second = INFORMATION.replace("0000:07:00.0", "0000:0f:00.0").replace("Minor: \t 0", "Minor: \t 1")
    second = second.replace("GPU-5ae4c0e5-3c63-5cba-0b4a-30f6e4ad6c4d", "GPU-11111111-2222-3333-4444-555555555555")
    root = _driver(tmp_path, {"0000:0f:00.0": second, "0000:07:00.0": INFORMATION})
    assert node_gpus(root) == (
        NodeGpu(0, "GPU-5ae4c0e5-3c63-5cba-0b4a-30f6e4ad6c4d", "0000:07:00.0", "NVIDIA A100-SXM4-80GB"),
        NodeGpu(1, "GPU-11111111-2222-3333-4444-555555555555", "0000:0f:00.0", "NVIDIA A100-SXM4-80GB"),
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (INFORMATION.replace("Device Minor: \t 0\n", ""), "'Device Minor' is ''"),
        (INFORMATION.replace("Minor: \t 0", "Minor: \t zero"), "'Device Minor' is 'zero'"),
        (INFORMATION.replace("Minor: \t 0", "Minor: \t 255"), "not a GPU minor"),
        (INFORMATION.replace("GPU-5ae4c0e5", "5ae4c0e5"), "'GPU UUID' is '5ae4c0e5"),
    ],
)
def test_node_gpus_names_the_bad_file(tmp_path: Path, text: str, says: str) -> None:
    root = _driver(tmp_path, {"0000:07:00.0": text})
    with pytest.raises(NodeSourceError) as caught:
        node_gpus(root)
    assert caught.value.source == "driver"
    assert "0000:07:00.0/information" in caught.value.message and says in caught.value.message


def test_node_gpus_without_a_driver(tmp_path: Path) -> None:
    with pytest.raises(NodeSourceError, match="gpus"):
        node_gpus(str(tmp_path))


@given(st.text(max_size=400))
def test_parse_information_never_crashes(text: str) -> None:
    fields = parse_information(text)
    assert all(isinstance(k, str) and isinstance(v, str) and ":" not in k for k, v in fields.items())


_KEY = st.text(st.characters(blacklist_characters=":\n\r", blacklist_categories=["Cs"]), min_size=1, max_size=20)
_VALUE = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=["Cs"]), max_size=40)
_GAP = st.text(st.sampled_from(" \t"), max_size=4)


@given(st.dictionaries(_KEY.map(str.strip).filter(bool), _VALUE.map(lambda v: v.strip(" \t")), max_size=12), _GAP)
def test_parse_information_round_trips_fields(fields: dict[str, str], gap: str) -> None:
    text = "".join(f"{key}{gap}:{gap}{value}\n" for key, value in fields.items())
    assert parse_information(text) == fields


@given(st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=12),
       st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=50))
def test_node_gpus_takes_any_minor_and_uuid_text(minor: str, gpu_uuid: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        text = f"Model: \t\t X\nGPU UUID: \t {gpu_uuid}\nDevice Minor: \t {minor}\n"
        _driver(Path(root), {"0000:01:00.0": text})
        try:
            gpus = node_gpus(root)
        except NodeSourceError as e:
            assert e.source == "driver" and "0000:01:00.0/information" in e.message
        else:
            assert gpus == (NodeGpu(int(minor.strip(" \t\r")), gpu_uuid.strip(" \t\r"), "", "X"),)
