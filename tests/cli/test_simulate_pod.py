"""`gpuguard simulate` form 2: a workload on a GPU Operator node, every container.

Expected answers are typed from the documented behaviour of each release
(shared research notes, gpu_operator §4 rows A, D, G), not computed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gpuguard.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulate" / "pod-on-operator-node.yaml"
CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
CUDA_ENV = ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "CUDA_VERSION=12.4.1",
            "NVIDIA_REQUIRE_CUDA=cuda>=12.4"]
HARDENED_VALUES = {
    "toolkit": {"env": [
        {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"},
        {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "value": "true"},
    ]},
    "devicePlugin": {"env": [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}]},
}


def simulate(doc: dict) -> list[dict]:
    result = CliRunner().invoke(cli, ["simulate", "--format", "json", "-"], input=json.dumps(doc))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def pod(*containers: dict, runtime_class: str | None = None, annotations: dict | None = None) -> dict:
    spec: dict = {"containers": list(containers)}
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "team", "annotations": annotations or {}}, "spec": spec}


def by_name(results: list[dict]) -> dict[str, dict]:
    return {r["container"]: r for r in results}


def test_bundled_example() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    got = by_name(simulate(doc))
    assert got["jupyter"]["sees"] == "all" and got["jupyter"]["overreach"] is True
    assert got["trainer"]["allocated"] == ["GPU-5c1e0a5d"]
    assert got["trainer"]["sees"] == "all" and got["trainer"]["overreach"] is True
    assert got["exporter"]["sees"] == [] and got["exporter"]["exposure"] == "none"
    assert got["logs"]["sees"] == []
    assert got["proxy"]["exposure"] == "unknown" and got["proxy"]["sees"] is None
    assert any("registry.example.com/team/proxy:2.1" in reason for reason in got["proxy"]["unknown"])


@pytest.mark.parametrize(
    ("node", "runtime_class", "idle_sees", "worker_sees"),
    [
        # Row A: 25.3.4 chart defaults: nvidia is the default runtime, envvar strategy, env accepted.
        ({"operator": {"version": "25.3.4", "values": {}}}, None, "all", ["GPU-0"]),
        # Row A hardened: env refused from unprivileged containers, allocation passed as volume mounts.
        ({"operator": {"version": "25.3.4", "values": HARDENED_VALUES}}, None, [], ["GPU-0"]),
        # Row D: 25.10 defaults, CDI on: nvidia is not the default runtime, so a plain pod sees nothing.
        ({"operator": {"version": "25.10.1", "values": {}}}, None, [], ["GPU-0"]),
        # Row D through runtimeClassName: nvidia: the image's NVIDIA_VISIBLE_DEVICES=all reaches the toolkit.
        ({"operator": {"version": "25.10.1", "values": {}}}, "nvidia", "all", None),
    ],
)
def test_operator_rows(node: dict, runtime_class: str | None, idle_sees: object, worker_sees: object) -> None:
    node = {**node, "gpus": 2}
    doc = {
        "node": node,
        "images": {CUDA: CUDA_ENV},
        "pod": pod(
            {"name": "idle", "image": CUDA},
            {"name": "worker", "image": CUDA, "resources": {"limits": {"nvidia.com/gpu": 1}}},
            runtime_class=runtime_class,
        ),
    }
    got = by_name(simulate(doc))
    assert got["idle"]["sees"] == idle_sees
    assert got["worker"]["allocated"] == ["GPU-0"]
    if worker_sees is not None:
        assert got["worker"]["sees"] == worker_sees


def test_sys_admin_passes_the_gate_on_a_hardened_node() -> None:
    doc = {
        "node": {"operator": {"version": "25.3.4", "values": HARDENED_VALUES}, "gpus": 2},
        "images": {CUDA: CUDA_ENV},
        "pod": pod({"name": "admin", "image": CUDA, "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}),
    }
    assert by_name(simulate(doc))["admin"]["sees"] == "all"


def test_no_node_means_the_most_exposed_common_setup() -> None:
    doc = {"images": {CUDA: CUDA_ENV}, "pod": pod({"name": "idle", "image": CUDA})}
    assert by_name(simulate(doc))["idle"]["sees"] == "all"


def test_env_from_an_unknown_config_map_is_unknown_not_safe() -> None:
    doc = {
        "node": {"operator": {"version": "25.3.4", "values": {}}, "gpus": 1},
        "images": {"busybox": []},
        "pod": pod({"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {"name": "settings"}}]}),
    }
    got = by_name(simulate(doc))["c"]
    assert got["exposure"] == "unknown"
    assert got["sees"] is None


def test_the_config_map_once_known_decides() -> None:
    doc = {
        "node": {"operator": {"version": "25.3.4", "values": {}}, "gpus": 1},
        "images": {"busybox": []},
        "objects": [{"kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "team"},
                     "data": {"NVIDIA_VISIBLE_DEVICES": "all"}}],
        "pod": pod({"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {"name": "settings"}}]}),
    }
    assert by_name(simulate(doc))["c"]["sees"] == "all"


def test_privileged_gets_every_host_device_node() -> None:
    doc = {
        "node": {"operator": {"version": "25.3.4", "values": HARDENED_VALUES}, "gpus": 1},
        "images": {"busybox": []},
        "pod": pod({"name": "c", "image": "busybox", "securityContext": {"privileged": True}}),
    }
    got = by_name(simulate(doc))["c"]
    assert got["host_devices"] is True
    assert got["sees"] == "all"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"node": {"operator": {"version": "19.1.0"}}, "pod": pod({"name": "c"})}, "operator.version"),
        ({"node": {"operator": {"version": "25.3.4"}, "toolkit": {}}, "pod": pod({"name": "c"})}, "node.toolkit"),
        ({"node": {"gpus": "four"}, "pod": pod({"name": "c"})}, "node.gpus"),
        ({"node": {}, "pod": {"kind": "ConfigMap", "metadata": {"name": "x"}}}, "pod.kind"),
        ({"node": {}}, "pod"),
        ({"pod": pod({"name": "c", "env": [{"name": "A", "value": 3}]})}, "env[0].value"),
        ({"node": {"operator": {"version": "25.3.4", "values": {"cdi": {"enabled": "yes"}}}},
          "pod": pod({"name": "c"})}, "cdi.enabled"),
    ],
)
def test_bad_pod_questions(doc: dict, field: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "-"], input=json.dumps(doc))
    assert result.exit_code == 2
    assert field in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
