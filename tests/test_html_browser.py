"""The HTML leaderboard in a real browser: headless Chromium loads the page, a click sorts, a box filters.

Skipped where no Chromium is installed (``.ci/run`` installs Debian's). The
screenshot lands in ``test-artifacts/`` for a person to look at.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from eegkd_bench.leaderboard import render
from test_leaderboard import fixture_records

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (apt-get install chromium)")

# what a reader does: click the first dataset's header of the headline table, untick the method 'kd'
CLICKS = """<script>
document.querySelector('#headline th[data-col="2"]').click();
document.querySelector('input[data-filter="method"][value="kd"]').click();
</script>"""


def _browser(tmp_path: Path, *args: str) -> str:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _headline_rows(dom: str) -> list[dict[str, str]]:
    """(method, student, class, first dataset's sort value) of each headline row, in DOM order."""
    table = re.search(r'<table class="board" id="headline">.*?</table>', dom, re.S).group(0)
    body = table.split("<tbody>", 1)[1]
    rows = []
    for attrs, inner in re.findall(r"<tr([^>]*)>(.*?)</tr>", body, re.S):
        cell = re.findall(r"<td([^>]*)>", inner)[2]
        rows.append({"method": re.search(r'data-method="([^"]*)"', attrs).group(1),
                     "student": re.search(r'data-student="([^"]*)"', attrs).group(1),
                     "hidden": "hidden" in (re.search(r'class="([^"]*)"', attrs) or [None, ""])[1],
                     "sort": float(re.search(r'data-sort="([^"]*)"', cell).group(1))})
    return rows


def test_html_page_in_chromium(tmp_path: Path) -> None:
    page = render(fixture_records(), "html", command="eegkd-bench leaderboard --results r")
    plain = tmp_path / "leaderboard.html"
    plain.write_text(page, encoding="utf-8")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", CLICKS + "</body>"), encoding="utf-8")

    dom = _browser(tmp_path, "--dump-dom", plain.as_uri())
    before = _headline_rows(dom)
    assert [(r["method"], r["student"]) for r in before] == [
        ("teacher", "cbramod-mini"), ("none", "eegnet"), ("none", "shallowconvnet"), ("kd", "eegnet"),
        ("kd", "shallowconvnet"), ("dlink", "eegnet"), ("dlink", "shallowconvnet")]
    assert "SIMULATED DATA" in re.search(r'<div class="banner"[^>]*>(.*?)</div>', dom).group(1)
    # inline plots: accuracy vs FLOPs and router weights for each of the 2 datasets, the meta-analysis
    # for each of the 2 students, and the critical-difference diagram
    assert dom.count("<svg") == 7 and "eegkd-bench leaderboard --results r" in dom
    assert "Meta-analysis across datasets (eegnet)" in dom and "Critical-difference diagram" in dom

    after = _headline_rows(_browser(tmp_path, "--dump-dom", clicked.as_uri()))
    assert [r["sort"] for r in after] == sorted(r["sort"] for r in before) != [r["sort"] for r in before]
    assert {r["method"] for r in after if r["hidden"]} == {"kd"}

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "leaderboard.png"
    shot.unlink(missing_ok=True)
    _browser(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars", plain.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
