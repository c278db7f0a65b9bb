"""How a toolkit decision is classified for rules and summaries."""

from __future__ import annotations

import pytest

from gpuguard.model.decision import Decision, Exposure


@pytest.mark.parametrize(
    ("decision", "exposure", "devices_json"),
    [
        (Decision(devices=None, mode="legacy"), Exposure.NONE, None),
        (Decision(devices=("",), mode="legacy"), Exposure.LIBRARIES, "none"),
        (Decision(devices=("all",), mode="legacy"), Exposure.ALL, "all"),
        (Decision(devices=("GPU-1",), mode="legacy"), Exposure.DEVICES, ["GPU-1"]),
        (Decision(devices=("", "GPU-1"), mode="legacy"), Exposure.DEVICES, ["", "GPU-1"]),
        # nvidia-container-cli matches "all" case-insensitively
        (Decision(devices=("ALL",), mode="legacy"), Exposure.ALL, ["ALL"]),
        # in cdi modes the name decides
        (Decision(devices=("ALL",), mode="cdi", cdi_devices=("nvidia.com/gpu=ALL",)), Exposure.DEVICES, ["ALL"]),
        (Decision(devices=("GPU-1",), mode="cdi", cdi_devices=("management.nvidia.com/gpu=all",)),
         Exposure.ALL, ["GPU-1"]),
        (Decision(devices=("all",), mode="legacy", error="boom"), Exposure.FAILS, "all"),
        (Decision(devices=None, mode="legacy", unknown=("image not inspected",)), Exposure.UNKNOWN, None),
    ],
)
def test_exposure(decision: Decision, exposure: Exposure, devices_json: object) -> None:
    assert decision.exposure is exposure
    assert decision.devices_json == devices_json
