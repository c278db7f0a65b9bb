"""The page as a browser shows it: headless Chromium's DOM and its screenshot (kept in .cache/screenshots)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from gpuguard.cli.main import cli
from tests.report import chromium
from tests.report.dom import read
from tests.report.sample import HOSTILE_MESSAGE, HOSTILE_POD, MATRIX
from tests.report.test_cli import record_three_runs

ROOT = Path(__file__).resolve().parents[2]
KEPT = ROOT / ".cache" / "screenshots" / "report.png"
PAINT = {  # the severity colours of formats/html.py, as sRGB bytes
    "critical": (0xB9, 0x1C, 0x1C),
    "high": (0xEA, 0x58, 0x0C),
    "medium": (0xA1, 0x62, 0x07),
    "low": (0x25, 0x63, 0xEB),
}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = chromium.missing_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("page")
    url = str(tmp / "history.db")
    ids = record_three_runs(url)
    out = tmp / "report.html"
    result = CliRunner().invoke(cli, ["report", "--html", "--db", url, "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert ids[-1] == 3
    return out


def test_the_browser_builds_the_matrix_and_runs_nothing(page: Path) -> None:
    dom = chromium.dump_dom(page)
    seen = read(dom)
    assert {k: (int(v["data-count"]), v["data-severity"]) for k, v in seen.cells.items() if v["data-count"] != "0"} \
        == MATRIX
    assert "script" not in seen.tags and "img" not in seen.tags
    assert seen.title == "gpuguard: cluster gpu-prod, run 3"  # the hostile pod's script did not set it
    rows = seen.tables["findings"]
    assert any(HOSTILE_POD in cell for r in rows for cell in r)
    assert any(r[-1] == HOSTILE_MESSAGE for r in rows)
    assert len(seen.bars) == 8


def test_the_severity_colours_are_painted(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    chromium.screenshot(page, png)
    KEPT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, KEPT)
    with Image.open(png) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1400, 1000)
        counts = dict.fromkeys(PAINT.values(), 0)
        for colour, n in ((c, n) for n, c in rgb.getcolors(maxcolors=1 << 20) or ()):
            for want in PAINT.values():
                if all(abs(a - b) <= 2 for a, b in zip(colour, want, strict=True)):
                    counts[want] += n
    # a matrix cell alone is at least 56 x 25 px; badges, bars and table cells add more
    for name, colour in PAINT.items():
        assert counts[colour] >= 1000, f"{name} {colour}: {counts[colour]} pixels"
    white = sum(n for n, c in rgb.getcolors(maxcolors=1 << 20) or () if c == (255, 255, 255))
    assert white > 1400 * 1000 // 2  # a light page, not an error screen
