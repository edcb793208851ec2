"""The demo's weather page in a real headless Chromium (Playwright driving Debian's chromium).

It shows reports, forecasts marked as coming from timers, and then, after the demo
killed a consumer half-way through an event, that event's redelivery, highlighted
with its attempt. The demo runs as `homing demo` in a subprocess against the
private redis-server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("HOMING_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def demo(standalone_server, prefix: str) -> Iterator[tuple[str, list[str]]]:
    """A running demo: (the site's URL, its output lines so far)."""
    argv = [sys.executable, "-m", "homing", "--redis-url", standalone_server.url,
            "--prefix", prefix, "demo", "--duration", "40", "--port", "0", "--rate", "10",
            "--kill-every", "12"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "weather site: http" in line:
                found.set()
    threading.Thread(target=read, daemon=True).start()
    try:
        assert found.wait(30), "\n".join(lines)
        url = re.search(r"weather site: (http://\S+)", "\n".join(lines)).group(1)
        yield url, lines
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def page() -> Iterator:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 900})
        finally:
            browser.close()


def test_page_shows_reports_then_a_redelivered_one(demo, page, tmp_path: Path) -> None:
    url, lines = demo
    page.goto(url)
    # Reports arrive: city rows with a temperature and attempt 1 (the page refreshes itself).
    page.wait_for_selector("#weather tr[data-city] td.attempt", timeout=30_000)
    first = page.locator("#weather tr[data-city]").first
    assert re.fullmatch(r"-?\d+(\.\d+)?", first.locator("td").nth(1).inner_text().strip())
    assert page.locator("#redelivered tr.none").count() == 1 or \
        page.locator("#redelivered tr.redelivered").count() >= 1
    # Forecasts come from timers and say so.
    page.wait_for_selector("#weather td.forecast .timer", timeout=30_000)
    timer_text = page.locator("#weather td.forecast .timer").first.inner_text()
    assert re.search(r"timer, \d+\.\d s after its report", timer_text), timer_text
    # A consumer is killed mid-event; its event comes back and is shown, highlighted.
    # (Events it had prefetched come back too, marked as redelivered: the row looked
    # for is the one it was killed on.)
    def killed() -> list[str]:
        return re.findall(r"killed consumer pid \d+ half-way through posting event (\w+)",
                          "\n".join(lines))
    wait_for(lambda: killed(), timeout=60)
    event = killed()[0][:8]
    row = page.locator("#redelivered tr.redelivered", has=page.locator(f"code:text-is('{event}')"))
    row.wait_for(timeout=60_000)
    assert row.locator(".badge").inner_text() == "redelivered"
    assert int(row.locator("td.attempt").inner_text().split()[0]) >= 1
    background = row.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 243, 196)"  # the highlight, really rendered
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    docs = os.environ.get("HOMING_DOCS_SCREENSHOTS")
    if docs:  # `HOMING_DOCS_SCREENSHOTS=docs/images pytest ...` refreshes the docs' picture
        page.screenshot(path=str(Path(docs) / "demo.png"), full_page=True)
