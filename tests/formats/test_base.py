"""The format interface: names on the CLI, the protocol, and the stderr summary line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuguard.formats.base import DEFAULT_FORMAT, FORMATS, ReportFormat, summary_line
from gpuguard.model.report import Report
from tests.formats.sample import ASSUMED_PROFILE, PROFILE, empty_report, full_report


def test_formats_are_chosen_by_these_names() -> None:
    assert list(FORMATS) == ["table", "json", "sarif", "junit", "policyreport", "html"]
    assert DEFAULT_FORMAT == "table"
    for name, fmt in FORMATS.items():
        assert fmt.name == name
        assert fmt.description


@pytest.mark.parametrize("name", ["table", "json", "sarif", "junit", "policyreport"])
@pytest.mark.parametrize("color", [False, True])
def test_every_format_renders_bytes_ending_in_a_newline(name: str, color: bool) -> None:
    fmt: ReportFormat = FORMATS[name]
    for report in (full_report(), empty_report()):
        out = fmt.render(report, color=color)
        assert isinstance(out, bytes)
        assert out.endswith(b"\n")
        out.decode("utf-8")


def test_summary_line_counts_by_severity_most_severe_first() -> None:
    assert summary_line(full_report()) == (
        "6 findings (1 critical, 2 high, 1 medium, 1 low, 1 info), 2 exempt, 2 suppressed, 1 input error; "
        "judged against ClusterPolicy cluster-policy (deploy/gpu-operator.yaml:1)"
    )


def test_summary_line_of_a_clean_run() -> None:
    assert summary_line(empty_report()) == (
        "0 findings; judged against ClusterPolicy cluster-policy (deploy/gpu-operator.yaml:1)"
    )


def test_summary_line_says_when_the_profile_was_assumed() -> None:
    report = Report(profile=ASSUMED_PROFILE, findings=full_report().findings[:1])
    assert summary_line(report) == (
        "1 finding (1 critical); judged against nothing given: most exposed common configuration"
        " (assumed, not measured)"
    )


def test_summary_line_singular_error() -> None:
    report = Report(profile=PROFILE, errors=full_report().errors)
    assert summary_line(report).startswith("0 findings, 1 input error; ")


def test_machine_formats_do_not_import_rich() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gpuguard.formats.base import FORMATS\n"
        "from tests.formats.sample import full_report\n"
        "for name in ('json', 'sarif', 'junit', 'policyreport'):\n"
        "    FORMATS[name].render(full_report())\n"
        "assert 'rich' not in sys.modules, 'rich was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
