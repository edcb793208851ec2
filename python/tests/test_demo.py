"""The weather-station demo: a consumer process is killed mid-event and nothing is lost."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from homing import Client
from homing.cli import main
from homing.demo import run as demo_run
from homing.demo.site import WeatherSite


def test_demo_kills_a_consumer_and_loses_nothing(standalone_server, prefix: str) -> None:
    argv = [sys.executable, "-m", "homing", "--redis-url", standalone_server.url,
            "--prefix", prefix, "demo", "--duration", "8", "--port", "0", "--rate", "10",
            "--kill-every", "15"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    # The first line names the Redis and the (explicit) prefix the demo works in.
    first = proc.stdout.splitlines()[0]
    assert f"key prefix {prefix!r}" in first and standalone_server.url in first, report
    m = re.search(r"^summary: sent=(\d+) delivered=(\d+) redelivered=(\d+) lost=(\d+)$",
                  proc.stdout, re.M)
    assert m, report
    sent, delivered, redelivered, lost = map(int, m.groups())
    assert sent > 0 and delivered == sent and lost == 0, report
    assert redelivered >= 1, report
    killed = re.findall(r"killed consumer pid \d+ half-way through posting event (\w+)",
                        proc.stdout)
    assert killed, report
    # The first killed event came back with a higher attempt and reached the site.
    assert re.search(rf"event {killed[0]} redelivered and posted \(attempt \d+\)",
                     proc.stdout), report
    assert "Traceback" not in proc.stderr, report


def _post(url: str, report: dict) -> int:
    req = urllib.request.Request(url + "report", data=json.dumps(report).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


def test_site_keeps_the_newest_report_per_city() -> None:
    site = WeatherSite("127.0.0.1", 0, run="r1").start()
    try:
        base = {"kind": "report", "run": "r1", "city": "Oslo", "attempt": 1}
        assert _post(site.url, {**base, "event_id": "a", "seq": 7, "temp_c": -3}) == 200
        # A redelivery of an older report arrives late: it is recorded, not shown.
        assert _post(site.url, {**base, "event_id": "b", "seq": 3, "attempt": 2,
                                "redelivered": True, "temp_c": 20}) == 200
        # A report from an earlier demo run on the same prefix is ignored.
        assert _post(site.url, {**base, "run": "r0", "event_id": "c", "seq": 99}) == 200
        # A POST cut off half-way (its sender was killed) stores nothing.
        body = json.dumps({**base, "event_id": "d", "seq": 50}).encode()
        host, port = site._server.server_address[:2]
        with socket.create_connection((host, port)) as s:
            s.sendall(b"POST /report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        deadline = time.monotonic() + 5
        while site.snapshot()["broken"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with urllib.request.urlopen(site.url + "api/reports", timeout=5) as resp:
            snap = json.loads(resp.read())
        with urllib.request.urlopen(site.url, timeout=5) as resp:
            page = resp.read().decode()
    finally:
        site.stop()
    assert snap["reports"]["Oslo"]["seq"] == 7 and snap["reports"]["Oslo"]["temp_c"] == -3
    assert (snap["events"], snap["redelivered"], snap["stale"], snap["broken"]) == (2, 1, 1, 1)
    assert site.delivered(["a", "b", "c", "d"]) == 2
    assert "Oslo" in page and "-3" in page


@pytest.mark.parametrize(("before", "after", "env", "expected"), [
    ([], [], {}, "homing-demo"),  # the demo's own prefix by default, not 'homing'
    (["--prefix", "mine"], [], {}, "mine"),
    ([], ["--prefix", "after"], {}, "after"),
    ([], [], {"HOMING_PREFIX": "from-env"}, "from-env"),
])
def test_demo_prefix(standalone_server, monkeypatch, before: list[str], after: list[str],
                     env: dict, expected: str) -> None:
    seen = {}

    def fake_run_demo(client, url, prefix, **kw) -> int:
        seen.update(client_prefix=client.prefix, prefix=prefix)
        return 0

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    r = CliRunner().invoke(main, ["--redis-url", standalone_server.url, *before, "demo", *after],
                           env={"HOMING_PREFIX": None, **env})
    assert r.exit_code == 0, r.output
    assert seen == {"client_prefix": expected, "prefix": expected}


def test_demo_on_a_taken_port_suggests_port_0(standalone_server, prefix: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(main, ["--redis-url", standalone_server.url, "--prefix", prefix,
                                      "demo", "--port", str(port), "--duration", "1"])
    assert r.exit_code == 2, r.output
    assert f"port {port} is in use; --port 0 picks a free one" in r.stderr
    assert r.stdout.startswith("[demo ") and f"key prefix {prefix!r}" in r.stdout
    with Client.from_url(standalone_server.url, prefix=prefix) as client:
        assert client.services() == []  # nothing was configured before the port failed
