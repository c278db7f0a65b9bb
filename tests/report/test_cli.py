"""``gpuguard report --html``: from the history on both backends, from a JSON report file, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from gpuguard.formats import report_json
from gpuguard.history import open_store, record_run
from gpuguard.model.finding import Severity
from tests.report.dom import read
from tests.report.sample import FINDINGS, MATRIX, finding, report


def _report(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def record_three_runs(url: str) -> list[int]:
    """Three daily runs of gpu-prod: a notebook fixed, then the FINDINGS of the sample."""
    day = [finding("old-notebook", "ml-notebooks", "gpu-a100-2", Severity.HIGH), *FINDINGS[:2]]
    return [record_run(report(*fs), url=url, cluster="gpu-prod", started=datetime(2026, 11, 27 + i, 6, tzinfo=UTC))
            for i, fs in enumerate([day, day, FINDINGS])]


def test_page_from_the_history(store_url: str, tmp_path: Path) -> None:
    ids = record_three_runs(store_url)
    record_run(report(finding("x", "other", "cpu-1", Severity.LOW)), url=store_url, cluster="gpu-staging")
    out = tmp_path / "report.html"
    code, stdout, err = _report("--html", "-o", str(out), "--db", store_url, "--cluster", "gpu-prod")
    assert code == 0, err
    assert stdout == ""
    assert err == f"run {ids[2]} of cluster gpu-prod: 6 findings, 4 new, 1 fixed; wrote {out}\n"
    page = read(out.read_text())
    assert {k: (int(v["data-count"]), v["data-severity"]) for k, v in page.cells.items() if v["data-count"] != "0"} \
        == MATRIX
    a, b, c = (str(i) for i in ids)
    assert [(b["data-run"], b["data-severity"], b["data-count"]) for b in page.bars] == [
        (a, "critical", "1"), (a, "high", "2"), (b, "critical", "1"), (b, "high", "2"),
        (c, "critical", "1"), (c, "high", "3"), (c, "medium", "1"), (c, "low", "1")]
    assert [r[3] for r in page.tables["fixed"][1:]] == ["Pod old-notebook"]
    assert "s3cret" not in out.read_text() + err


def test_an_older_run_has_the_trend_up_to_it(store_url: str, tmp_path: Path) -> None:
    ids = record_three_runs(store_url)
    out = tmp_path / "r.html"
    code, _, err = _report("--html", "-o", str(out), "--db", store_url, "--run", str(ids[1]), "--trend", "5")
    assert code == 0, err
    page = read(out.read_text())
    assert [b["data-run"] for b in page.bars] == [str(ids[0]), str(ids[0]), str(ids[1]), str(ids[1])]
    assert "findings" in page.tables and len(page.tables["findings"]) == 4  # header + 3
    assert page.tables.get("new") is None and page.tables.get("fixed") is None  # nothing changed from run 1


def test_page_from_a_json_report(tmp_path: Path) -> None:
    src = tmp_path / "audit.json"
    src.write_bytes(report_json.render(report(*FINDINGS)))
    code, stdout, err = _report("--html", "--input", str(src))
    assert code == 0, err
    page = read(stdout)
    assert {k: (int(v["data-count"]), v["data-severity"]) for k, v in page.cells.items() if v["data-count"] != "0"} \
        == MATRIX
    assert page.bars == []
    assert err == f"6 findings from {src} (judged against live cluster gpu-prod: 3 GPU nodes); wrote stdout\n"


@pytest.mark.parametrize(("args", "message"), [
    ([], "gpuguard: error: choose the output: --html"),
    (["--html", "--input", "missing.json"], "gpuguard: error: missing.json: cannot read: No such file or directory"),
    (["--html", "--input", "x.json", "--run", "1"], "gpuguard: error: --input renders one report file: "),
    (["--html", "--db", "mysql://u:hunter2@h/db"], "gpuguard: error: mysql://u:***@h/db: unsupported database URL"),
    (["--html", "--db", "postgresql://u:hunter2@127.0.0.1:1/db"],
     "gpuguard: error: postgresql://u:***@127.0.0.1:1/db: cannot connect: "),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _report(*args)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1 and "hunter2" not in err


def test_unknown_run_and_empty_history(store_url: str) -> None:
    open_store(store_url).close()  # an empty history, schema created
    code, _, err = _report("--html", "--db", store_url)
    assert code == 2 and err.endswith(": no runs recorded\n")
    record_run(report(), url=store_url, cluster="gpu-prod")
    code, _, err = _report("--html", "--db", store_url, "--run", "77")
    assert code == 2 and err.startswith("gpuguard: error: run 77: no such run in ")
