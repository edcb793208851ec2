"""The dashboard at the HTTP level: auth, CSRF, read-only, the bind rule, the Host check.

Against a real redis-server and the real app served by uvicorn; every refusal is
checked in Redis too (nothing was written), and each has a twin that is accepted,
so that a test which refuses everything could not pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the web extra: homing[web]")
httpx = pytest.importorskip("httpx", reason="the HTTP tests use httpx (the test extra)")

from dashboard_helpers import Holding, scene, serving, worker  # noqa: E402
from helpers import wait_for  # noqa: E402

import homing  # noqa: E402
from homing.cli import main  # noqa: E402
from homing.web import Auth, SetupError  # noqa: E402
from homing.web.security import check_bind, is_loopback  # noqa: E402

TOKEN = "t0ken-for-the-tests-only"


@pytest.fixture
def dclient(standalone_server, prefix: str) -> Iterator[homing.Client]:
    c = homing.Client.from_url(standalone_server.url, prefix=prefix)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def scened(dclient: homing.Client, service: str) -> dict:
    return scene(dclient, service)


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert m, "no CSRF token in the page"
    return m.group(1)


def state(client: homing.Client, service: str, event_id: str) -> str:
    return client.status(service, event_id).state


# -- the bind rule and the settings ----------------------------------------------------


def test_no_auth_refuses_a_non_loopback_bind(standalone_server, prefix: str) -> None:
    from click.testing import CliRunner

    env = {"HOMING_DASHBOARD_TOKEN": "", "HOMING_DASHBOARD_USER": "",
           "HOMING_DASHBOARD_PASSWORD": ""}
    out = CliRunner().invoke(main, ["--redis-url", standalone_server.url, "--prefix", prefix,
                                    "dashboard", "--bind", "0.0.0.0", "--port", "1"], env=env)
    assert out.exit_code == 2, out.output
    assert "refusing to listen on 0.0.0.0 without auth" in out.output
    with pytest.raises(SetupError):
        check_bind("192.168.1.10", Auth())
    check_bind("0.0.0.0", Auth(token=TOKEN))  # with auth it may
    check_bind("127.0.0.1", Auth())
    check_bind("::1", Auth())
    assert is_loopback("127.0.0.2") and not is_loopback("10.0.0.1")


def test_settings_from_the_environment_are_checked() -> None:
    assert not Auth.from_env({}).enabled
    assert Auth.from_env({"HOMING_DASHBOARD_TOKEN": TOKEN}).token == TOKEN
    with pytest.raises(SetupError, match="at least 16"):
        Auth.from_env({"HOMING_DASHBOARD_TOKEN": "short"})
    with pytest.raises(SetupError, match="both"):
        Auth.from_env({"HOMING_DASHBOARD_USER": "ops"})
    basic = Auth.from_env({"HOMING_DASHBOARD_USER": "ops", "HOMING_DASHBOARD_PASSWORD": "pw"})
    assert basic.basic and basic.enabled


def test_without_auth_only_a_loopback_host_is_answered(dclient: homing.Client,
                                                       scened: dict) -> None:
    with serving(dclient) as url:
        assert httpx.get(url + "/").status_code == 200
        # DNS rebinding: a page on evil.example whose name now points at 127.0.0.1.
        r = httpx.get(url + "/", headers={"Host": "evil.example:8377"})
        assert r.status_code == 403 and "Oslo" not in r.text


# -- auth ---------------------------------------------------------------------------------


def test_token_auth(dclient: homing.Client, service: str, scened: dict) -> None:
    with serving(dclient, auth=Auth(token=TOKEN)) as url:
        r = httpx.get(f"{url}/service/{service}")
        assert r.status_code == 401 and "Sign in" in r.text and "Oslo" not in r.text
        assert httpx.get(url + "/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/metrics").status_code == 401
        ok = httpx.get(f"{url}/service/{service}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "Oslo" in ok.text
        with httpx.Client(base_url=url) as browser:
            login = browser.get("/")
            wrong = browser.post("/login", data={"csrf": csrf_of(login.text), "token": "nope",
                                                 "next": "/"})
            assert wrong.status_code == 401 and "homing_session" not in browser.cookies
            right = browser.post("/login", data={"csrf": csrf_of(login.text), "token": TOKEN,
                                                 "next": f"/service/{service}"})
            assert right.status_code == 303 and right.headers["location"] == f"/service/{service}"
            assert "Oslo" in browser.get(f"/service/{service}").text
            # A login without its CSRF token is refused too (login CSRF).
            assert browser.post("/login", data={"token": TOKEN}).status_code == 403


def test_basic_auth(dclient: homing.Client, scened: dict) -> None:
    with serving(dclient, auth=Auth(user="ops", password="s3cret")) as url:
        r = httpx.get(url + "/")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(url + "/", auth=("ops", "wrong")).status_code == 401
        assert httpx.get(url + "/", auth=("other", "s3cret")).status_code == 401
        assert httpx.get(url + "/", auth=("ops", "s3cret")).status_code == 200


# -- CSRF and actions -----------------------------------------------------------------


def test_an_action_without_its_csrf_token_is_refused(dclient: homing.Client, service: str,
                                                     scened: dict) -> None:
    target = scened["dead"][0]
    with serving(dclient) as url, httpx.Client(base_url=url) as browser:
        page = browser.get(f"/service/{service}").text
        token = csrf_of(page)
        action = f"/service/{service}/dead/requeue"
        form = {"id": target, "confirm": "yes"}
        assert browser.post(action, data=form).status_code == 403
        assert browser.post(action, data={**form, "csrf": "0" * 64}).status_code == 403
        # A token is bound to its cookie: another client's cookie does not carry it.
        with httpx.Client(base_url=url) as other:
            other.get("/")
            assert other.post(action, data={**form, "csrf": token}).status_code == 403
        # A right token from a foreign page (Origin) is refused too.
        r = browser.post(action, data={**form, "csrf": token},
                         headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        assert state(dclient, service, target) == "dead"
        # The same request with its token goes through: the refusals above were the token's.
        r = browser.post(action, data={**form, "csrf": token})
        assert r.status_code == 303, r.text
        assert state(dclient, service, target) == "pending"


def test_requeue_and_purge_ask_first(dclient: homing.Client, service: str,
                                     scened: dict) -> None:
    with serving(dclient) as url, httpx.Client(base_url=url) as browser:
        token = csrf_of(browser.get(f"/service/{service}").text)
        ask = browser.post(f"/service/{service}/dead/purge", data={"csrf": token, "all": "1"})
        assert ask.status_code == 200 and "Purge all 4 dead letters" in ask.text
        assert dclient.dead_list(service, 0, 1).total == 4  # asked, not done
        done = browser.post(f"/service/{service}/dead/purge",
                            data={"csrf": token, "all": "1", "confirm": "yes"})
        assert done.status_code == 303
        assert "purged 4 dead letters; 0 remain" in browser.get(done.headers["location"]).text
        assert dclient.dead_list(service, 0, 1).total == 0


def test_read_only_hides_and_refuses_actions(dclient: homing.Client, service: str,
                                             scened: dict) -> None:
    with serving(dclient, read_only=True) as url, httpx.Client(base_url=url) as browser:
        page = browser.get(f"/service/{service}").text
        assert "read-only" in page and "Requeue" not in page and "Save policy" not in page
        # No form, so no token on the page: make the right one, as a forged form would need.
        token = url.dashboard.keys.csrf_for(browser.cookies["homing_csrf"])
        for action, form in ((f"/service/{service}/dead/requeue",
                              {"id": scened["dead"][0], "confirm": "yes"}),
                             (f"/service/{service}/dead/purge", {"all": "1", "confirm": "yes"}),
                             (f"/service/{service}/policy", {"lease_ms": "1234"})):
            r = browser.post(action, data={**form, "csrf": token})
            assert r.status_code == 403 and "read-only" in r.text
        assert dclient.dead_list(service, 0, 1).total == 4
        assert dclient.stats(service)["policy.lease_ms"] == 30000


def test_policy_is_edited_through_configure(dclient: homing.Client, service: str,
                                            scened: dict) -> None:
    with serving(dclient) as url, httpx.Client(base_url=url) as browser:
        token = csrf_of(browser.get(f"/service/{service}").text)
        r = browser.post(f"/service/{service}/policy",
                         data={"csrf": token, "lease_ms": "12345", "backoff_jitter": "0.25"})
        assert r.status_code == 303
        st = dclient.stats(service)
        assert st["policy.lease_ms"] == 12345 and st["policy.backoff_jitter"] == 0.25
        bad = browser.post(f"/service/{service}/policy", data={"csrf": token, "lease_ms": "0"})
        assert bad.status_code == 400 and "lease_ms" in bad.text
        assert dclient.stats(service)["policy.lease_ms"] == 12345  # nothing written
        r = browser.post(f"/service/{service}/policy", data={"csrf": token, "reset": "lease_ms"})
        assert r.status_code == 303 and dclient.stats(service)["policy.lease_ms"] == 30000


# -- what the pages show --------------------------------------------------------------------


def test_event_view_names_the_lease_and_its_holder(dclient: homing.Client,
                                                   service: str) -> None:
    Holding.release.clear()
    dclient.configure(service, done_ttl_ms=600_000)  # result() below reads a None result
    event_id = dclient.enqueue(service, {"job": 1})
    try:
        with worker(dclient, service, Holding) as w, serving(dclient) as url:
            # Reserved: a worker's prefetch is charged only once it is known to have started.
            wait_for(lambda: dclient.status(service, event_id).detail in ("reserved", "leased"))
            # The worker's next beat names what it holds (it beats every lease_ms / 3).
            wait_for(lambda: w._presence.name in httpx.get(
                f"{url}/service/{service}/event/{event_id}").text, timeout=15)
            page = httpx.get(f"{url}/service/{service}/event/{event_id}").text
            assert "reserved" in page or "leased" in page
            assert 'id="ev-deadline">–' not in page  # a lease deadline is shown
            workers = httpx.get(url + "/workers").text
            assert w._presence.name in workers and "alive" in workers
            Holding.release.set()
            assert dclient.result(service, event_id, timeout=10) is None
    finally:
        Holding.release.set()
    with serving(dclient) as url:
        page = httpx.get(f"{url}/service/{service}/event/{event_id}").text
        assert "done" in page
        assert "stopped" in httpx.get(url + "/workers").text  # its last beat said so


def test_event_view_shows_progress_and_snoozes(dclient: homing.Client, service: str) -> None:
    event_id = dclient.enqueue(service, {"job": 1})
    (ev,) = dclient.dequeue(service)
    dclient.progress(service, event_id, ev.token, 42)
    dclient.snooze(service, event_id, ev.token, 600_000)
    with serving(dclient) as url:
        page = httpx.get(f"{url}/service/{service}/event/{event_id}").text
    assert re.search(r'id="ev-progress"><progress max="100" value="42"></progress> 42%', page)
    assert 'id="ev-snoozes">1<' in page


def test_the_command_serves_with_auth_on_any_address(standalone_server, prefix: str,
                                                     dclient: homing.Client,
                                                     service: str) -> None:
    """`homing dashboard` itself, as a process: with a token it may bind 0.0.0.0."""
    import os
    import subprocess
    import sys
    import time

    from servers import free_port

    dclient.enqueue(service, {"n": 1})
    port = free_port()
    env = {**os.environ, "HOMING_DASHBOARD_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "homing", "--redis-url", standalone_server.url,
                             "--prefix", prefix, "dashboard", "--bind", "0.0.0.0", "--port",
                             str(port), "--sample-every", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(url + "/")
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < end, "the dashboard did not start listening"
                time.sleep(0.1)
        assert r.status_code == 401
        ok = httpx.get(url + "/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and service in ok.text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert f"homing dashboard on http://0.0.0.0:{port}/ (prefix {prefix}, token or " in err
    assert "Traceback" not in err, err


def test_the_reads_work_on_both_topologies(client: homing.Client, service: str) -> None:
    """What the pages read (homing.web.data), on standalone and Cluster alike."""
    from homing.web import data

    ids = scene(client, service)
    client.beat("scheduler:topology-test:1")
    history = data.History(every=1.0)
    data.sample_all(client, history)
    rows, total = data.overview(client, history)
    [row] = [r for r in rows if r.name == service]
    assert total == 1 and row.error == ""
    assert (row.stats["ready"], row.stats["timers"], row.stats["dead"]) == (5, 1, 4)
    assert row.oldest is not None and row.oldest >= 0
    assert history.series(service, "ready") == [5.0]
    dead = data.event(client, service, ids["xss"])
    assert dead.state == "dead" and dead.payload is not None and "<script>" in dead.payload
    timer = data.event(client, service, ids["timer"])
    assert timer.detail == "timer" and timer.due_ms is not None
    assert data.event(client, service, "no-such-event").state == "unknown"
    beats, lags = data.daemons(client, [service])
    assert [d.name for d in beats] == ["scheduler:topology-test:1"]
    assert [(lag.service, lag.expired) for lag in lags] == [(service, 0)]
    ws = data.workers(client)
    assert ws and all(w.stopped and w.service == service for w in ws)  # the scene's, stopped


def test_a_redis_that_is_away_is_a_page_that_says_so() -> None:
    import redis
    from servers import free_port

    away = homing.Client(redis.Redis(port=free_port(), socket_connect_timeout=1))
    with serving(away) as url:
        r = httpx.get(url + "/")
        assert r.status_code == 503 and "CONNECTION" in r.text and "Traceback" not in r.text
