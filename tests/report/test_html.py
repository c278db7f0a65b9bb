"""The HTML page, read back with the stdlib parser: matrix, tables, trend, escaping, nothing fetched."""

from __future__ import annotations

import re

from gpuguard.formats.html import render_page
from gpuguard.model.finding import Severity
from gpuguard.model.history import Change, RunDiff, RunSummary, StoredFinding
from tests.report.dom import read
from tests.report.sample import FINDINGS, HOSTILE_MESSAGE, HOSTILE_POD, MATRIX, NAMESPACES, NODES, finding

STORED = [StoredFinding.of(f) for f in FINDINGS]


def _run(run_id: int, **counts: int) -> RunSummary:
    return RunSummary(id=run_id, started=f"2026-11-2{run_id}T06:00:00Z", cluster="gpu-prod",
                      profile_source="live cluster gpu-prod", counts=counts, objects=210)


def test_matrix_cells_count_findings_coloured_by_the_worst() -> None:
    page = read(render_page(title="t", run=None, findings=STORED))
    for node in NODES:
        for ns in NAMESPACES:
            cell = page.cells[(node, ns)]
            if (node, ns) in MATRIX:
                count, worst = MATRIX[(node, ns)]
                assert (cell["data-count"], cell["data-severity"]) == (str(count), worst)
                assert f"sev-{worst}" in cell["class"].split()
            else:
                assert cell["data-count"] == "0" and "empty" in cell["class"].split()
    assert len(page.cells) == 9
    html = render_page(title="t", run=None, findings=STORED)
    header = re.search(r'<table class="matrix"><thead><tr>(.*?)</tr>', html)
    assert header is not None
    assert re.findall(r'<th scope="col">([^<]*)</th>', header.group(1)) == NAMESPACES
    assert re.findall(r'<th scope="row">([^<]*)</th>', html) == NODES


def test_hostile_names_stay_text() -> None:
    html = render_page(title="<b>title</b>", run=None, findings=STORED)
    page = read(html)
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags
    assert "onerror" not in page.attributes
    assert "<script" not in html and "<img" not in html
    rows = page.tables["findings"]
    assert [HOSTILE_POD in " ".join(r) for r in rows].count(True) == 1  # shown once, as text
    assert [HOSTILE_MESSAGE in r for r in rows].count(True) == 1
    assert page.title == "<b>title</b>"


def test_self_contained() -> None:
    html = render_page(title="t", run=_run(2, high=3), findings=STORED, trend=[_run(1, high=2), _run(2, high=3)])
    page = read(html)
    assert not page.tags & {"script", "link", "iframe", "img", "object", "embed", "base", "form"}
    assert not page.attributes & {"src", "href", "srcset", "action", "onload", "onerror"}
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style
    assert {"style", "svg", "rect"} <= page.tags


def test_findings_table_worst_first() -> None:
    rows = read(render_page(title="t", run=None, findings=STORED)).tables["findings"]
    assert rows[0] == ["severity", "rule", "namespace", "object", "container", "node", "message"]
    assert [r[0] for r in rows[1:]] == ["critical", "high", "high", "high", "medium", "low"]
    assert rows[1][1:6] == ["GG101", "ml-notebooks", "Pod batch-report-0", "main", "gpu-h100-1"]


def test_trend_bars_per_run_and_severity() -> None:
    trend = [_run(1, critical=1, high=2), _run(2, high=4, low=1), _run(3)]
    page = read(render_page(title="t", run=trend[-1], findings=[], trend=trend))
    assert [(b["data-run"], b["data-severity"], b["data-count"]) for b in page.bars] == [
        ("1", "critical", "1"), ("1", "high", "2"), ("2", "high", "4"), ("2", "low", "1")]
    heights = {(b["data-run"], b["data-severity"]): float(b["height"]) for b in page.bars}
    assert heights[("2", "high")] == 4 * heights[("1", "critical")]  # one scale for every bar


def test_new_and_fixed_since_the_previous_run() -> None:
    gone = StoredFinding.of(finding("old-notebook", "ml-notebooks", "gpu-a100-2", Severity.HIGH))
    moved_before = StoredFinding.of(finding("jupyter-bob", "ml-notebooks", "gpu-a100-1", Severity.HIGH))
    diff = RunDiff(base=_run(1), head=_run(2), new=(STORED[1],), fixed=(gone,), still_open=(STORED[0],),
                   changed=(Change(moved_before, STORED[0]),))
    html = render_page(title="t", run=_run(2), findings=STORED, diff=diff)
    page = read(html)
    assert [r[3] for r in page.tables["new"][1:]] == ["Pod batch-report-0"]
    assert [(r[3], r[5]) for r in page.tables["fixed"][1:]] == [("Pod old-notebook", "gpu-a100-2")]
    assert "1 new, 1 fixed, 1 still open, 1 changed severity or node." in html
    assert "Since run 1 (2026-11-21T06:00:00Z)" in html


def test_empty_history_page() -> None:
    page = read(render_page(title="t", run=_run(1), findings=[], trend=[_run(1)],
                            diff=RunDiff(base=None, head=_run(1))))
    assert page.cells == {} and "findings" not in page.tables


def test_hostile_cluster_and_profile_stay_text() -> None:
    run = RunSummary(id=1, started="2026-11-29T06:00:00Z", cluster="<script>alert(3)</script>",
                     profile_source="<img src=x onerror=alert(4)>", counts={"high": 1})
    page = read(render_page(title=run.cluster, run=run, findings=STORED[:1], trend=[run],
                            diff=RunDiff(base=None, head=run, new=tuple(STORED[:1]))))
    assert "script" not in page.tags and "img" not in page.tags and "onerror" not in page.attributes
    assert page.title == "<script>alert(3)</script>"
