"""The DaemonSet's capabilities (SYS_PTRACE, DAC_READ_SEARCH) are what reading containers' /dev needs.

``gpuguard agent --once`` runs as root with exactly the capability set the chart gives it (``setpriv``
sets the bounding set; root's capabilities after exec are that set; no new privileges), then with less:
without SYS_PTRACE the kernel refuses ``/proc/<pid>/root`` of containers (ptrace access check), without
DAC_READ_SEARCH a container's private ``/dev`` (mode 0700, another uid) cannot be listed.  A container
that cannot be read is "not scanned", never clean and never a finding.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.agent.node import Planned, agent_node, uuid_of
from tests.node.runtime import Runtime

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")

CHART_CAPS = ("sys_ptrace", "dac_read_search")  # deploy/helm/gpuguard/templates/agent-daemonset.yaml
PLAN = [
    Planned("open-dev", namespace="research", gpus=(0,)),
    Planned("private-dev", namespace="research", gpus=(1,), private_dev=True),
    Planned("train", namespace="ml", gpus=(2,), env={"NVIDIA_VISIBLE_DEVICES": uuid_of(2)},
            allocated=(uuid_of(2),)),
]


@pytest.fixture(scope="module")
def node_args(runtime: Runtime) -> Iterator[list[str]]:
    with agent_node(runtime, PLAN, "caps") as n:
        yield n.args()


def agent_with(caps: tuple[str, ...], args: list[str]) -> dict[str, Any]:
    bounding = ",".join(["-all", *(f"+{c}" for c in caps)])
    done = subprocess.run(
        ["setpriv", "--bounding-set", bounding, "--inh-caps", "-all", "--no-new-privs",
         sys.executable, "-m", "gpuguard", "agent", "--once", *args],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode in (0, 1), done.stderr.decode()
    report: dict[str, Any] = orjson.loads(done.stdout)
    assert report["errors"] == []  # the sockets, the driver tree and the config need no capability
    return report


def _unallocated(report: dict[str, Any]) -> set[str]:
    return {f["resource"]["name"] for f in report["findings"] if f["rule_id"] == "GG401"}


def _not_scanned(report: dict[str, Any]) -> dict[str, str]:
    out = {}
    for note in report["profile"]["notes"]:
        if note.startswith("not scanned: "):
            label, why = note.removeprefix("not scanned: ").split(": ", 1)
            out[label.split("/")[1]] = why
    return out


def test_the_charts_capabilities_read_every_container(node_args: list[str]) -> None:
    report = agent_with(CHART_CAPS, node_args)
    assert _unallocated(report) == {PLAN[0].pod_name, PLAN[1].pod_name}
    assert _not_scanned(report) == {}


def test_without_sys_ptrace_no_container_can_be_read_and_none_is_called_clean(node_args: list[str]) -> None:
    report = agent_with(("dac_read_search",), node_args)
    assert report["findings"] == []
    skipped = _not_scanned(report)
    assert set(skipped) == {p.pod_name for p in PLAN}
    assert all("Permission denied" in why or "not permitted" in why for why in skipped.values()), skipped


def test_without_dac_read_search_a_private_dev_cannot_be_listed(node_args: list[str]) -> None:
    report = agent_with(("sys_ptrace",), node_args)
    assert _unallocated(report) == {PLAN[0].pod_name}
    skipped = _not_scanned(report)
    assert set(skipped) == {PLAN[1].pod_name}
    assert "Permission denied" in skipped[PLAN[1].pod_name]
