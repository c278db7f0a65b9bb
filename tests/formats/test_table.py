"""``--format table``: grouped by object, the header says what was assumed, plain without colour."""

from __future__ import annotations

import re

import pytest

from gpuguard.formats.base import FORMATS
from gpuguard.model.finding import Finding, Location, Severity
from gpuguard.model.report import Report
from tests.formats.sample import ASSUMED_PROFILE, NOTEBOOK, PROFILE, empty_report, full_report

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def _fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")


def text(report: Report, *, color: bool = False) -> str:
    return FORMATS["table"].render(report, color=color).decode()


def test_header_names_the_profile_source_and_versions() -> None:
    out = text(full_report())
    lines = out.splitlines()
    assert lines[0] == "Judged against: ClusterPolicy cluster-policy (deploy/gpu-operator.yaml:1)"
    assert lines[1] == "  GPU Operator 25.3.4, toolkit 1.17.8, device plugin 0.17.0"
    assert "  accept-nvidia-visible-devices-envvar-when-unprivileged = true" in lines
    assert "ASSUMED" not in out


def test_header_says_when_the_most_exposed_configuration_was_assumed() -> None:
    out = text(full_report(ASSUMED_PROFILE))
    assert (
        "ASSUMED: nothing was known about the nodes; judged against the most exposed common configuration"
        in out.splitlines()
    )
    assert "  note: 12 images assumed to set NVIDIA_VISIBLE_DEVICES=all" in out.splitlines()


def test_findings_are_grouped_by_object_in_report_order() -> None:
    out = text(full_report())
    titles = [line for line in out.splitlines() if line and not line[0].isspace() and line[0] not in "┏┃┡│├└"]
    assert titles == [
        "Judged against: ClusterPolicy cluster-policy (deploy/gpu-operator.yaml:1)",
        "Deployment research/notebook  deploy/research.yaml:12",
        "Job ml/trainer  jobs/train job.yaml:3",
        "ClusterPolicy cluster-policy  deploy/gpu-operator.yaml:1",
        "node settings  --operator-version",
        "node settings",  # no object and no location: a group of its own
        "Exempt (2): reach GPUs legitimately",
        "Input errors (1): these inputs were not judged",
        "Not judged (kinds gpuguard does not check): ConfigMap (1), Service (2)",
    ]


def test_settings_read_from_files_group_by_file() -> None:
    findings = (
        Finding("GG204", Severity.MEDIUM, "key under [table]", "move it", location=Location("node/config.toml", 1)),
        Finding("GG205", Severity.HIGH, "strategy overwritten", "upgrade", location=Location("values.yaml", 5)),
        Finding("GG201", Severity.HIGH, "env accepted", "refuse it", location=Location("node/config.toml", 1)),
    )
    out = text(Report(profile=PROFILE, findings=findings))
    titles = [line for line in out.splitlines() if line.startswith(("node/", "values"))]
    assert titles == ["node/config.toml  line 1", "values.yaml  line 5"]


def test_rows_show_severity_container_message_why_and_fix() -> None:
    out = text(full_report())
    block = out[out.index("Deployment research/notebook") : out.index("Job ml/trainer")]
    assert "CRITICAL" in block and "GG101" in block and "jupyter" in block
    assert "Container sees all GPUs without requesting one." in block
    assert "why: NVIDIA_VISIBLE_DEVICES=all (image) => all" in block
    assert "Set NVIDIA_VISIBLE_DEVICES=void" in block
    assert block.index("CRITICAL") < block.index("HIGH")  # most severe first within an object


def test_exempt_errors_and_skipped_kinds_are_listed() -> None:
    lines = text(full_report()).splitlines()
    assert "Exempt (2): reach GPUs legitimately" in lines
    assert (
        "  DaemonSet gpu-operator/nvidia-device-plugin-daemonset container nvidia-device-plugin: "
        "GPU Operator component [GG101, GG102]"
    ) in lines
    assert "  Pod ops/nvidia-smi: allow-listed tool" in lines
    assert "Input errors (1): these inputs were not judged" in lines
    assert "  deploy/broken.yaml:7: deploy/broken.yaml:7: mapping values are not allowed here" in lines
    assert "Not judged (kinds gpuguard does not check): ConfigMap (1), Service (2)" in lines


def test_plain_without_colour_and_coloured_with_it() -> None:
    plain = text(full_report(), color=False)
    assert not ANSI.search(plain)
    coloured = text(full_report(), color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain


def test_clean_run() -> None:
    assert "No findings." in text(empty_report()).splitlines()


def test_manifest_text_is_not_read_as_markup() -> None:
    odd = Finding("GG101", Severity.HIGH, "value [bold]x[/bold] kept", "fix [red]", resource=NOTEBOOK)
    out = text(Report(profile=PROFILE, findings=(odd,)))
    assert "[bold]x[/bold]" in out
    assert "fix [red]" in out
