"""Headless Chromium, as a reader's browser: the DOM it builds and the pixels it paints."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium not installed ({CHROMIUM} missing; scripts/test installs the chromium package)"
    return None


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="gpuguard-chromium-")
    try:
        return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=90, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(page: Path) -> str:
    return _run(["--dump-dom", page.resolve().as_uri()]).stdout


def screenshot(page: Path, png: Path, size: str = "1400,1000") -> None:
    _run([f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri()])
    if not png.is_file():
        raise AssertionError(f"chromium wrote no screenshot to {png}")
