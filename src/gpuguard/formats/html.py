"""``gpuguard report --html``: one self-contained page for the people who own the GPU nodes.

Inline CSS and an inline SVG chart, no script and nothing fetched, so the page
can be mailed, archived as a CI artifact or opened offline. Every text that
came from the cluster (pod names, messages) is escaped: a hostile name stays
text. The page shows, top to bottom: the counts, the exposure matrix (GPU node
× namespace, each cell the number of findings coloured by the worst of them),
the trend of the last runs, what is new and fixed since the previous run, and
every finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from html import escape

from gpuguard.model.finding import Severity
from gpuguard.model.history import RunDiff, RunSummary, StoredFinding
from gpuguard.model.report import Report

COLORS = {  # background of a severity (cells, badges, chart); white text reads on each
    Severity.CRITICAL: "#b91c1c",
    Severity.HIGH: "#ea580c",
    Severity.MEDIUM: "#a16207",
    Severity.LOW: "#2563eb",
    Severity.INFO: "#6b7280",
}
NO_NODE = "(no node)"
NO_NAMESPACE = "(no namespace)"
ORDER = sorted(Severity, reverse=True)  # critical first

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin:0 0 12px}
.badge{display:inline-block;padding:2px 10px;margin:0 6px 4px 0;border-radius:10px;color:#fff;font-weight:600}
table{border-collapse:collapse;margin:4px 0}
th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}
table.matrix td.cell{text-align:center;min-width:56px;font-weight:700;color:#fff}
table.matrix td.empty{background:#fff}
table.matrix td.total,table.matrix th.total{background:#f9fafb;color:#111827;text-align:center}
td.msg{max-width:640px}
.none{color:#6b7280;font-style:italic}
""" + "".join(f".sev-{s.label}{{background:{c}}}" for s, c in COLORS.items())


def render_page(*, title: str, run: RunSummary | None, findings: Sequence[StoredFinding],
                trend: Sequence[RunSummary] = (), diff: RunDiff | None = None) -> str:
    """The whole page; ``run`` None and no ``trend`` when rendered from a report file rather than the history."""
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _meta(run),
        _badges(findings),
        "<h2>Exposure by GPU node and namespace</h2>",
        _matrix(findings),
        "<h2>Trend</h2>",
        _trend(trend),
        _changes(diff),
        f"<h2>Findings ({len(findings)})</h2>",
        _findings_table("findings", _sorted(findings)),
        "</body></html>\n",
    ]
    return "".join(parts)


def _meta(run: RunSummary | None) -> str:
    if run is None:
        return ""
    return (f'<p class="meta">Run {run.id} of cluster <b>{escape(run.cluster)}</b>, started {escape(run.started)}; '
            f"judged against {escape(run.profile_source)}; {run.objects} objects read, {run.errors} read errors.</p>")


def _badges(findings: Iterable[StoredFinding]) -> str:
    counts = Counter(f.severity for f in findings)
    return '<p class="counts">' + "".join(
        f'<span class="badge sev-{s.label}" data-severity="{s.label}" data-count="{counts[s]}">'
        f"{counts[s]} {s.label}</span>" for s in ORDER) + "</p>"


def _matrix(findings: Sequence[StoredFinding]) -> str:
    if not findings:
        return '<p class="none">No findings.</p>'
    cells: dict[tuple[str, str], list[Severity]] = {}
    for f in findings:
        cells.setdefault((f.node or NO_NODE, f.namespace or NO_NAMESPACE), []).append(f.severity)
    nodes = _axis(node for node, _ in cells)
    namespaces = _axis(ns for _, ns in cells)
    head = "".join(f'<th scope="col">{escape(ns)}</th>' for ns in namespaces)
    rows = []
    for node in nodes:
        tds = []
        for ns in namespaces:
            found = cells.get((node, ns))
            attrs = f'data-node="{escape(node)}" data-namespace="{escape(ns)}"'
            if not found:
                tds.append(f'<td class="cell empty" {attrs} data-count="0"></td>')
                continue
            worst = max(found).label
            tds.append(f'<td class="cell sev-{worst}" {attrs} data-count="{len(found)}" data-severity="{worst}" '
                       f'title="{len(found)} findings, worst {worst}">{len(found)}</td>')
        row_total = sum(len(cells.get((node, ns), ())) for ns in namespaces)
        rows.append(f'<tr><th scope="row">{escape(node)}</th>{"".join(tds)}'
                    f'<td class="total" data-node="{escape(node)}" data-total="{row_total}">{row_total}</td></tr>')
    col_totals = "".join(f'<td class="total" data-namespace="{escape(ns)}" data-total="{n}">{n}</td>'
                         for ns in namespaces for n in [sum(len(cells.get((node, ns), ())) for node in nodes)])
    return (f'<table class="matrix"><thead><tr><th>GPU node \\ namespace</th>{head}<th class="total">total</th>'
            f'</tr></thead><tbody>{"".join(rows)}<tr><th class="total">total</th>{col_totals}'
            f'<td class="total" data-total="{len(findings)}">{len(findings)}</td></tr></tbody></table>')


def _axis(labels: Iterable[str]) -> list[str]:
    """Sorted names, the "no node" / "no namespace" bucket last."""
    return sorted(set(labels), key=lambda label: (label in (NO_NODE, NO_NAMESPACE), label))


def _trend(runs: Sequence[RunSummary]) -> str:
    if not runs:
        return '<p class="none">No trend: the page was rendered from one report, not from the history.</p>'
    width, height, left, bottom, top = 900, 240, 40, 36, 12
    plot_h = height - bottom - top
    peak = max((r.total for r in runs), default=0) or 1
    slot = (width - left - 10) / len(runs)
    bar = max(4.0, min(48.0, slot * 0.7))
    shapes = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#9ca3af"/>',
              f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
              f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>']
    for i, run in enumerate(runs):
        x = left + i * slot + (slot - bar) / 2
        y = float(top + plot_h)
        for sev in ORDER:  # critical at the bottom of each bar
            n = run.count(sev)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            shapes.append(f'<rect class="bar sev-{sev.label}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                          f'height="{h:.1f}" fill="{COLORS[sev]}" data-run="{run.id}" data-severity="{sev.label}" '
                          f'data-count="{n}"><title>run {run.id} ({escape(run.started)}): {n} {sev.label}</title>'
                          "</rect>")
        shapes.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                      f'font-size="11">{run.id}</text>')
    legend = "".join(f'<span class="badge sev-{s.label}">{s.label}</span>' for s in ORDER)
    return (f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="findings by severity per run">'
            f'{"".join(shapes)}</svg><p>{legend} (x: run id, y: findings)</p>')


def _changes(diff: RunDiff | None) -> str:
    if diff is None:
        return ""
    since = f"run {diff.base.id} ({escape(diff.base.started)})" if diff.base else "nothing (first run)"
    parts = [f"<h2>Since {since}</h2>",
             f'<p class="meta">{len(diff.new)} new, {len(diff.fixed)} fixed, {len(diff.still_open)} still open'
             f"{f', {len(diff.changed)} changed severity or node' if diff.changed else ''}.</p>",
             f"<h2>New ({len(diff.new)})</h2>", _findings_table("new", _sorted(diff.new)),
             f"<h2>Fixed ({len(diff.fixed)})</h2>", _findings_table("fixed", _sorted(diff.fixed))]
    return "".join(parts)


def _sorted(findings: Iterable[StoredFinding]) -> list[StoredFinding]:
    return sorted(findings, key=lambda f: (-f.severity, f.namespace or "", f.kind or "", f.name or "",
                                           f.container or "", f.rule_id))


def _findings_table(kind: str, findings: Sequence[StoredFinding]) -> str:
    if not findings:
        return f'<p class="none" id="{kind}-none">None.</p>'
    rows = [
        f'<tr><td class="sev sev-{f.severity.label}" style="color:#fff">{f.severity.label}</td>'
        f"<td>{escape(f.rule_id)}</td><td>{escape(f.namespace or '')}</td><td>{escape(f.kind or '')} "
        f"{escape(f.name or '')}</td><td>{escape(f.container or '')}</td><td>{escape(f.node or '')}</td>"
        f'<td class="msg">{escape(f.message)}</td></tr>'
        for f in findings
    ]
    return (f'<table class="findings" id="{kind}"><thead><tr><th>severity</th><th>rule</th><th>namespace</th>'
            "<th>object</th><th>container</th><th>node</th><th>message</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def render(report: Report, *, color: bool = False) -> bytes:
    """``--format html``: the page for one report (``gpuguard audit``, ``gpuguard agent``), without a trend.

    The history's ``gpuguard report --html`` adds the trend and what changed since the previous run.
    """
    del color  # the page has its own colours
    title = f"gpuguard: {report.profile.source}" if report.profile.source else "gpuguard report"
    return render_page(title=title, run=None, findings=[StoredFinding.of(f) for f in report.findings]).encode()
