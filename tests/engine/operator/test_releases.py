"""The release table: one row per GPU Operator tag, checked against version_matrix.json.

``tests/fixtures/operator/version_matrix.json`` is a copy of the research team's
extraction (one record per tag); the asset env rows are typed from the operator's
``assets/state-*/0500_daemonset.yaml`` at each tag.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuguard.engine.operator.releases import RELEASES, release
from gpuguard.model.errors import InputError

MATRIX = json.loads((Path(__file__).parents[2] / "fixtures" / "operator" / "version_matrix.json").read_text())
_BOOL = {"true": True, "false": False, None: None}


def test_every_matrix_tag_has_a_row() -> None:
    assert [r.tag for r in RELEASES] == [row["tag"] for row in MATRIX]


@pytest.mark.parametrize("row", MATRIX, ids=[row["tag"] for row in MATRIX])
def test_row_matches_matrix(row: dict) -> None:
    rel = release(row["tag"])
    assert rel.tag == row["tag"]
    assert rel.date == row["date"]
    assert rel.toolkit.text == row["toolkit_image_version"]
    assert rel.device_plugin.text == row["device_plugin_image_version"]
    assert rel.cdi_field == (row["values_cdi_enabled"] is not None)
    assert rel.chart_cdi_enabled == _BOOL[row["values_cdi_enabled"]]
    assert rel.cdi_default_field == bool(row["values_cdi_default_field"])
    assert rel.nri_field == bool(row["values_cdi_nriPluginEnabled"])
    assert rel.cdi_nil_means == _BOOL[row["crd_cdi_enabled_nil_means"]]
    assert rel.cdi_strategy == row["operator_DLS_when_cdi_enabled"]
    assert rel.cdi_sets_runtime_not_default == row["cdi_sets_NVIDIA_RUNTIME_SET_AS_DEFAULT_false"]
    assert rel.cdi_mode_only_if_default == row["cdi_sets_runtime_mode_cdi_only_if_cdi_default"]
    assert rel.cdi_annotation_prefix == row["cdi_sets_CDI_ANNOTATION_PREFIX"]
    assert rel.precedence == row["device_plugin_env_precedence_when_cdi_enabled"]
    assert rel.precedence == row["toolkit_env_precedence_when_cdi_enabled"]
    assert rel.chart_default_runtime == row["values_operator_defaultRuntime"]
    assert rel.chart_psa_enabled == _BOOL[row["values_psa_enabled"]]
    chart_strategy = dict(rel.chart_device_plugin_env).get("DEVICE_LIST_STRATEGY")
    assert chart_strategy == row["values_devicePlugin_env_DEVICE_LIST_STRATEGY"]


@pytest.mark.parametrize(
    ("asked", "modelled"),
    [
        ("25.3.4", "v25.3.4"),
        ("v25.3.5", "v25.3.4"),  # unknown patch: nearest lower of the line
        ("25.3.9-ubi8", "v25.3.4"),
        ("24.3.1", "v24.3.0"),
        ("26.7.3", "v26.7.0"),
        ("25.10", "v25.10.0"),
        ("25.10.0-rc.2", "v25.10.0"),  # below every known release of its line: the first one
        ("v22.9.1", "v22.9.1"),
        ("23.6.3", "v23.6.2"),
    ],
)
def test_fallback_within_a_line(asked: str, modelled: str) -> None:
    assert release(asked).tag == modelled


@pytest.mark.parametrize("asked", ["22.6.0", "1.11.1", "26.8.0", "27.1.0", "24.1.0", "25.6.0", "latest", "v"])
def test_unknown_release_is_an_input_error(asked: str) -> None:
    with pytest.raises(InputError) as err:
        release(asked)
    assert err.value.where == "operator.version"


TOOLKIT_ASSET_V24_9_2 = (
    ("ROOT", "/usr/local/nvidia"),
    ("RUNTIME_ARGS", ""),
    ("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND", "management.nvidia.com/gpu"),
    ("NVIDIA_VISIBLE_DEVICES", "void"),
    ("TOOLKIT_PID_FILE", "/run/nvidia/toolkit/toolkit.pid"),
)
TOOLKIT_ASSET_V25_3_4 = (
    ("ROOT", "/usr/local/nvidia"),
    ("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND", "management.nvidia.com/gpu"),
    ("NVIDIA_VISIBLE_DEVICES", "void"),
    ("TOOLKIT_PID_FILE", "/run/nvidia/toolkit/toolkit.pid"),
)
DEVICE_PLUGIN_ASSET = (
    ("PASS_DEVICE_SPECS", "true"),
    ("FAIL_ON_INIT_ERROR", "true"),
    ("DEVICE_LIST_STRATEGY", "envvar"),
    ("DEVICE_ID_STRATEGY", "uuid"),
    ("NVIDIA_VISIBLE_DEVICES", "all"),
    ("NVIDIA_DRIVER_CAPABILITIES", "all"),
    ("MPS_ROOT", "/run/nvidia/mps"),
)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v22.9.0", (("RUNTIME_ARGS", ""),)),
        (
            "v23.3.0",
            (
                ("ROOT", "/usr/local/nvidia"),
                ("RUNTIME_ARGS", ""),
                ("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND", "management.nvidia.com/gpu"),
            ),
        ),
        ("v24.9.2", TOOLKIT_ASSET_V24_9_2),
        ("v25.3.4", TOOLKIT_ASSET_V25_3_4),
        ("v26.7.0", (*TOOLKIT_ASSET_V25_3_4, ("NRI_NAMESPACE", "$(metadata.namespace)"))),
    ],
)
def test_toolkit_asset_env(tag: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert release(tag).toolkit_asset_env == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v23.9.2", DEVICE_PLUGIN_ASSET[:6]),
        ("v24.9.2", DEVICE_PLUGIN_ASSET),
        ("v25.3.4", DEVICE_PLUGIN_ASSET),
        ("v26.7.0", DEVICE_PLUGIN_ASSET),
    ],
)
def test_device_plugin_asset_env(tag: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert release(tag).device_plugin_asset_env == expected
