"""The dashboard end to end in headless Chromium (Playwright driving Debian's chromium).

A real redis-server, real workers making dead letters, the real app over HTTP and a
real browser clicking. Skipped, with the reason, only where no Chromium is installed
(.ci/run installs it). Each test also saves a screenshot of the view it checked: into
pytest's tmp_path normally, into docs/img with HOMING_WRITE_SCREENSHOTS=1
(``make dashboard-screenshots``), which is how docs/dashboard.md's images are made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the web extra: homing[web]")

from dashboard_helpers import (  # noqa: E402
    CHROMIUM,
    XSS,
    Holding,
    chromium_missing,
    scene,
    screenshot_dir,
    serving,
    worker,
)
from helpers import wait_for  # noqa: E402

import homing  # noqa: E402
from homing.web import Auth  # noqa: E402

pytestmark = pytest.mark.skipif(chromium_missing() is not None,
                                reason=chromium_missing() or "")
TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def dclient(standalone_server, prefix: str) -> Iterator[homing.Client]:
    c = homing.Client.from_url(standalone_server.url, prefix=prefix)
    try:
        yield c
    finally:
        c.close()


def shoot(page: Any, name: str, tmp_path: Path) -> Path:
    where = screenshot_dir() or tmp_path
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000  # an image, not an empty file
    return path


def until(page: Any, url: str, check: Any, timeout: float = 15) -> None:
    """Load url until check(page) holds (what a worker's next beat or the next sample adds)."""
    def loaded() -> bool:
        page.goto(url)
        return bool(check(page))
    wait_for(loaded, timeout=timeout, pause=0.3)


def cell(page: Any, service: str, queue: str) -> str:
    return page.inner_text(f'#services tr[data-service="{service}"] td[data-q="{queue}"]')


def test_pages_show_the_numbers_in_redis(dclient: homing.Client, service: str, page: Any,
                                         tmp_path: Path) -> None:
    scene(dclient, service)
    dclient.beat("scheduler:dashboard-test:1")
    Holding.release.clear()
    try:
        with worker(dclient, service, Holding, concurrency=2, prefetch=1) as w, \
                serving(dclient) as url:
            wait_for(lambda: dclient.stats(service)["in_flight"] == 3)  # 2 slots + 1 prefetched
            for n in (3, 8, 2, 5):  # some traffic across the sampler's rounds, for the charts
                dclient.enqueue_many(service, [{"city": "Tromsø", "n": i} for i in range(n)])
                time.sleep(0.6)
            page.goto(url + "/")
            st = dclient.stats(service)
            for q in ("ready", "in_flight", "timers", "dead"):
                assert cell(page, service, q) == str(st[q]), q
            assert st["dead"] == 4 and st["timers"] == 1
            until(page, url + "/", lambda p: p.query_selector(
                f'#services tr[data-service="{service}"] svg.spark'))
            shoot(page, "overview", tmp_path)

            page.click(f'#services a[href="/service/{service}"]')
            assert page.inner_text('#numbers td[data-q="dead"]') == "4"
            assert page.locator("#dead tbody tr").count() == 4
            assert "Reject: cannot handle" in page.inner_text("#dead")
            assert page.input_value("#p-lease_ms") == "30000"
            shoot(page, "service", tmp_path)

            page.goto(url + "/daemons")
            assert "scheduler:dashboard-test:1" in page.inner_text("#daemons")
            assert service in page.inner_text("#lag")
            shoot(page, "daemons", tmp_path)

            until(page, url + "/workers", lambda p: w._presence.name in p.content())
            row = page.locator(f'#workers tr[data-worker="{w._presence.name}"]')
            assert "alive" in row.inner_text() and "2" in row.inner_text()
            shoot(page, "workers", tmp_path)

            held = dclient.redis.zrange(f"{dclient.prefix}:{{{service}}}:leases", 0, 0)[0]
            page.fill('header input[name="service"]', service)
            page.fill('header input[name="id"]', held.decode())
            page.click("header form.lookup button")
            event_url = f"{url}/service/{service}/event/{held.decode()}"
            page.wait_for_url(event_url)
            assert page.inner_text("#ev-deadline") != "–"
            until(page, event_url, lambda p: w._presence.name in p.inner_text("#ev-holder"))
            shoot(page, "event", tmp_path)
            Holding.release.set()
    finally:
        Holding.release.set()


def test_a_requeue_button_works(dclient: homing.Client, service: str, page: Any) -> None:
    ids = scene(dclient, service)
    target = ids["dead"][1]
    with serving(dclient) as url:
        page.goto(f"{url}/service/{service}")
        page.click(f'#dead tr[data-id="{target}"] button.requeue')
        assert target in page.inner_text(".confirm-question")  # asked first
        assert dclient.status(service, target).state == "dead"
        page.click("#confirm")
        assert "requeued 1 dead letters; 3 remain" in page.inner_text("#message")
        assert page.locator(f'#dead tr[data-id="{target}"]').count() == 0
    st = dclient.status(service, target)
    assert (st.state, st.detail, st.attempt) == ("pending", "ready", 0)


def test_an_xss_payload_renders_as_text(dclient: homing.Client, service: str,
                                        page: Any) -> None:
    ids = scene(dclient, service)
    with serving(dclient) as url:
        for path in (f"/service/{service}", f"/service/{service}/event/{ids['xss']}"):
            page.goto(url + path)
            assert "<script>window.__pwned = 1</script>" in page.inner_text("main")
            assert page.evaluate("window.__pwned") is None
            # The only script element is the dashboard's own, and no <img> got in.
            assert page.locator("script").count() == 1
            assert page.locator("main img").count() == 0
        assert XSS in page.inner_text("#ev-payload")


def test_read_only_shows_no_actions(dclient: homing.Client, service: str, page: Any) -> None:
    scene(dclient, service)
    with serving(dclient, read_only=True) as url:
        page.goto(f"{url}/service/{service}")
        assert page.is_visible("#read-only")
        assert page.locator("#dead tbody tr").count() == 4
        assert page.locator("button.requeue, button.purge, #requeue-all, #policy-form").count() == 0


def test_access_without_credentials_is_refused(dclient: homing.Client, service: str,
                                               browser: Any) -> None:
    scene(dclient, service)
    with serving(dclient, auth=Auth(token=TOKEN)) as url:
        context = browser.new_context()
        pg = context.new_page()
        response = pg.goto(f"{url}/service/{service}")
        assert response.status == 401
        assert pg.locator("#dead").count() == 0 and "Sign in" in pg.inner_text("main")
        pg.fill('input[name="token"]', "not-the-token")
        pg.click('form.login button')
        assert "wrong token" in pg.inner_text("main")
        pg.fill('input[name="token"]', TOKEN)
        pg.click('form.login button')
        pg.wait_for_selector("#dead")
        assert pg.url.endswith(f"/service/{service}")
        context.close()
    with serving(dclient, auth=Auth(user="ops", password="pw")) as url:
        anonymous = browser.new_context()
        # Headless Chromium ends a navigation that meets an unanswered Basic challenge
        # with an error page, so the status is read through the context's own requests.
        refused = anonymous.request.get(url + "/")
        assert refused.status == 401 and service not in refused.text()
        anonymous.close()
        known = browser.new_context(http_credentials={"username": "ops", "password": "pw"})
        pg = known.new_page()
        assert pg.goto(url + "/").status == 200
        assert service in pg.inner_text("#services")
        known.close()


def test_the_overview_refreshes_itself(dclient: homing.Client, service: str, page: Any) -> None:
    """dashboard.js swaps in the page's fresh numbers every 5 s, without a reload."""
    dclient.enqueue_many(service, [1, 2])
    with serving(dclient) as url:
        page.goto(url + "/")
        assert cell(page, service, "ready") == "2"
        page.evaluate("window.__same_document = true")
        dclient.enqueue_many(service, [3, 4, 5])
        # Polled from here: the page's CSP (no eval) refuses Playwright's wait_for_function.
        wait_for(lambda: cell(page, service, "ready") == "5", timeout=20, pause=0.2)
        assert page.evaluate("window.__same_document") is True  # not a reload


def test_the_event_view_shows_progress_and_snoozes(dclient: homing.Client, service: str,
                                                    page: Any, tmp_path: Path) -> None:
    """A handler's progress (fenced by its token) and an event's snoozes, as a browser sees them."""
    working = dclient.enqueue(service, {"job": "resize"})
    (ev,) = dclient.dequeue(service)
    dclient.progress(service, working, ev.token, 65)
    snoozed = dclient.enqueue(service, {"job": "later"})
    (ev2,) = dclient.dequeue(service)
    dclient.progress(service, snoozed, ev2.token, 30)
    dclient.snooze(service, snoozed, ev2.token, 600_000)
    with serving(dclient) as url:
        page.goto(f"{url}/service/{service}/event/{working}")
        assert page.inner_text("#ev-progress").strip() == "65%"
        assert page.get_attribute("#ev-progress progress", "value") == "65"
        assert page.inner_text("#ev-snoozes") == "0"
        shoot(page, "event-progress", tmp_path)
        dclient.progress(service, working, ev.token, 90)
        page.reload()
        assert page.inner_text("#ev-progress").strip() == "90%"
        page.goto(f"{url}/service/{service}/event/{snoozed}")
        assert page.inner_text("#ev-status") == "pending: waiting"
        assert page.inner_text("#ev-snoozes") == "1"
        assert page.inner_text("#ev-attempt") == "0"  # the snooze charged nothing
        assert page.inner_text("#ev-progress").strip() == "30%"
