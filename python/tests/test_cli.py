"""The ``homing`` command line, mostly through click's CliRunner against private servers.

Workers and daemons run as real subprocesses: they install signal handlers and stop on
SIGTERM, which only a process of their own can show safely.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from homing import Client
from homing.cli import main


@pytest.fixture
def client(redis_url: str, prefix: str):
    with Client.from_url(redis_url, prefix=prefix) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- producing -------------------------------------------------------------------------


def test_enqueue_parses_json_and_falls_back_to_text(cli, client: Client) -> None:
    ids = []
    for text in ['{"city": "Oslo", "temp_c": -3}', "hello world", "42"]:
        r = cli("enqueue", "weather", text)
        assert r.exit_code == 0, r.output
        ids.append(r.stdout.strip())
    events = client.dequeue("weather", 10)
    assert [e.id for e in events] == ids
    assert [e.payload for e in events] == [{"city": "Oslo", "temp_c": -3}, "hello world", 42]


def test_enqueue_refuses_json_that_does_not_parse(cli, client: Client) -> None:
    for text in ['{"city": Oslo}', '  [1, 2', '"unterminated']:
        r = cli("enqueue", "weather", text)
        assert r.exit_code == 2, (text, r.output)
        assert "is not valid JSON" in r.stderr and "add --string" in r.stderr
    r = cli("enqueue", "weather", '{"city": Oslo}')
    assert "Expecting value (column 10):\n    {\"city\": Oslo}\n             ^" in r.stderr
    assert client.stats("weather")["ready"] == 0  # nothing was sent
    r = cli("timer", "weather", "[1,", "--delay-ms", "10")
    assert r.exit_code == 2 and "is not valid JSON" in r.stderr
    r = cli("enqueue", "weather", '{"city": Oslo}', "--string")
    assert r.exit_code == 0, r.output
    r = cli("timer", "weather", "42", "--delay-ms", "0", "--string")
    assert r.exit_code == 0, r.output
    client.promote("weather")
    assert [e.payload for e in client.dequeue("weather", 10)] == ['{"city": Oslo}', "42"]


def test_payload_from_stdin_and_files(cli, client: Client, tmp_path: Path) -> None:
    big = {"readings": list(range(40000))}  # over 128 KiB: too long for one argument
    (tmp_path / "big.json").write_text(json.dumps(big))
    (tmp_path / "note.txt").write_text("[draft] dear Oslo\n")
    assert cli("enqueue", "in", "@" + str(tmp_path / "big.json")).exit_code == 0
    assert cli("enqueue", "in", "-", input='{"from": "stdin"}\n').exit_code == 0
    assert cli("enqueue", "in", "@" + str(tmp_path / "note.txt"), "--string").exit_code == 0
    assert cli("enqueue", "in", "-", "--string", input="plain\n").exit_code == 0
    r = cli("timer", "in", "-", "--delay-ms", "0", input='{"timer": true}')
    assert r.exit_code == 0, r.output
    client.promote("in")
    assert [e.payload for e in client.dequeue("in", 10)] == [
        big, {"from": "stdin"}, "[draft] dear Oslo", "plain", {"timer": True}]
    # From stdin or a file the text must be JSON, whatever it starts with.
    r = cli("enqueue", "in", "@" + str(tmp_path / "note.txt"))
    assert r.exit_code == 2 and f"file '{tmp_path / 'note.txt'}' is not valid JSON" in r.stderr
    r = cli("enqueue", "in", "-", input="hello\n")
    assert r.exit_code == 2 and "stdin is not valid JSON" in r.stderr
    r = cli("enqueue", "in", "-", input="")
    assert r.exit_code == 2 and "stdin is empty" in r.stderr
    r = cli("enqueue", "in", "@" + str(tmp_path / "missing.json"))
    assert r.exit_code == 2 and "cannot read file" in r.stderr
    assert client.stats("in")["ready"] == 0


def test_enqueue_count_over_one_batch(cli, client: Client) -> None:
    r = cli("enqueue", "bulk", "{}", "--count", "1001")
    assert r.exit_code == 0, r.output
    ids = r.stdout.split()
    assert len(ids) == len(set(ids)) == 1001
    assert client.stats("bulk")["ready"] == 1001


def test_enqueue_key_is_idempotent(cli) -> None:
    first = cli("enqueue", "svc", "1", "--key", "order-7")
    again = cli("enqueue", "svc", "2", "--key", "order-7")
    assert first.exit_code == again.exit_code == 0
    assert first.stdout == again.stdout
    r = cli("enqueue", "svc", "1", "--key", "k", "--count", "2")
    assert r.exit_code == 2 and "--key" in r.output


def test_options_after_the_subcommand_and_from_the_environment(redis_url: str, prefix: str,
                                                               client: Client) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["enqueue", "--redis-url", redis_url, "--prefix", prefix, "s", "1"])
    assert r.exit_code == 0, r.output
    # The subcommand's option wins over the group's (here: a wrong prefix).
    r = runner.invoke(main, ["--prefix", "elsewhere", "dead", "list", "--redis-url", redis_url,
                             "--prefix", prefix, "s"])
    assert r.exit_code == 0 and "of 0 dead letters" in r.stdout
    r = runner.invoke(main, ["stats", "--json"],
                      env={"HOMING_REDIS_URL": redis_url, "HOMING_PREFIX": prefix})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["services"]["s"]["ready"] == 1
    assert client.stats("s")["total.enqueued"] == 1


def test_timer_and_cancel_timer(cli, client: Client) -> None:
    r = cli("timer", "alarms", '{"wake": true}', "--delay-ms", "600000")
    assert r.exit_code == 0, r.output
    timer_id = r.stdout.strip()
    r = cli("timer", "alarms", "later", "--at", "2999-01-01T00:00:00Z")
    assert r.exit_code == 0, r.output
    assert client.stats("alarms")["timers"] == 2
    assert client.status("alarms", timer_id).detail == "timer"
    r = cli("cancel-timer", "alarms", timer_id)
    assert r.exit_code == 0 and timer_id in r.stdout
    r = cli("cancel-timer", "alarms", timer_id)
    assert r.exit_code == 1 and "not pending" in r.stderr
    assert client.stats("alarms")["timers"] == 1


def test_timer_needs_exactly_one_due_time(cli) -> None:
    for extra in ([], ["--delay-ms", "5", "--at", "2030-01-01T00:00:00Z"]):
        r = cli("timer", "alarms", "x", *extra)
        assert r.exit_code == 2 and "exactly one of --delay-ms or --at" in r.output
    r = cli("timer", "alarms", "x", "--at", "next tuesday")
    assert r.exit_code == 2 and "ISO 8601" in r.output


def test_result_prints_json_and_times_out(cli, client: Client) -> None:
    event_id = cli("enqueue", "calc", "[1, 2]").stdout.strip()
    (ev,) = client.dequeue("calc")
    client.complete("calc", ev.id, ev.token, {"sum": 3, "parts": ev.payload})
    r = cli("result", "calc", event_id, "--timeout", "5")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"sum": 3, "parts": [1, 2]}
    pending = cli("enqueue", "calc", "0").stdout.strip()
    r = cli("result", "calc", pending, "--timeout", "0.1")
    assert r.exit_code == 2 and r.stderr.startswith("error: TIMEOUT: ")
    r = cli("result", "calc", "nosuchevent", "--timeout", "1")
    assert r.exit_code == 2 and r.stderr.startswith("error: UNKNOWN_EVENT: ")


# -- errors ----------------------------------------------------------------------------


def test_invalid_service_name_exits_2_with_a_clear_message(cli) -> None:
    for args in (["enqueue", "bad{name}", "1"], ["stats", "a:b"], ["dead", "list", ".x"]):
        r = cli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: INVALID_NAME: invalid service name"), r.stderr
        assert "Traceback" not in r.output


def test_invalid_policy_value_exits_2(cli) -> None:
    r = cli("configure", "svc", "--max-attempts", "0")
    assert r.exit_code == 2 and r.stderr.startswith("error: INVALID_ARGUMENT: "), r.output


def test_connection_refused_names_the_url_without_password() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    r = CliRunner().invoke(main, ["--redis-url", url, "stats"])
    assert r.exit_code == 2
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{url.split(':')[-1]}" in r.stderr
    assert "s3cret" not in r.output
    r = CliRunner().invoke(main, ["--redis-url", "nonsense://x", "stats"])
    assert r.exit_code == 2 and "--redis-url" in r.output


# -- running (subprocesses) ------------------------------------------------------------

CONSUMER = """
from homing import Consumer

class Doubler(Consumer):
    def handle_event(self, event, state):
        self.complete(event.service, event.id, result=event.payload * 2)
        return state
"""


def homing_argv(redis_url: str, prefix: str, *args: str) -> list[str]:
    """The installed ``homing`` script (not ``python -m``, which would put the cwd on
    sys.path by itself and hide whether the worker command does)."""
    script = Path(sys.executable).with_name("homing")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "homing"]
    return [*head, "--redis-url", redis_url, "--prefix", prefix, *args]


def stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_worker_runs_a_consumer_from_the_cwd_and_stops_on_sigterm(
        redis_url: str, prefix: str, client: Client, tmp_path: Path) -> None:
    (tmp_path / "doubling.py").write_text(textwrap.dedent(CONSUMER))
    ids = client.enqueue_many("calc", [1, 2, 3, "ab"])
    proc = subprocess.Popen(
        homing_argv(redis_url, prefix, "worker", "doubling:Doubler", "--service", "calc",
                    "--concurrency", "2", "--grace", "5"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        results = [client.result("calc", i, timeout=20) for i in ids]
    finally:
        code, out, err = stop(proc)
    assert results == [2, 4, 6, "abab"]
    assert code == 0, err
    assert "worker calc stopped: received=4 completed=4 failed=0" in out
    assert "doubling:Doubler" in err  # logs go to stderr


SLEEPER = """
import pathlib, time
from homing import Consumer

class Sleeper(Consumer):
    def handle_event(self, event, state):
        pathlib.Path("started").write_text(event.id)  # the test waits for a running handler
        time.sleep(600)  # never finishes: only a second signal ends the worker
        return state
"""


def wait_until(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_second_signal_releases_what_it_holds_and_exits_130(
        redis_url: str, prefix: str, client: Client, tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(textwrap.dedent(SLEEPER))
    client.enqueue_many("slow", [1, 2, 3])
    proc = subprocess.Popen(
        homing_argv(redis_url, prefix, "worker", "sleeper:Sleeper", "--service", "slow"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: client.stats("slow")["in_flight"] == 3)  # 1 running, 2 prefetched
        wait_until((tmp_path / "started").exists)  # running, not only dequeued
        proc.send_signal(signal.SIGTERM)  # graceful: the 2 not started go back at once...
        wait_until(lambda: client.stats("slow")["ready"] == 2)
        assert proc.poll() is None  # ...and the running one gets its 30 s of grace
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "worker slow interrupted: received=3 completed=0 failed=0 released=3 lost=0" in out
    assert "Aborted" not in out + err and "Traceback" not in err
    st = client.stats("slow")
    assert (st["ready"], st["in_flight"], st["expired"]) == (3, 0, 0)  # not left leased
    assert {ev.attempt for ev in client.dequeue("slow", 3)} == {1}  # no attempt counted


def test_worker_refuses_a_non_consumer(cli) -> None:
    r = cli("worker", "json:dumps", "--service", "calc")
    assert r.exit_code == 2 and "not a homing.Consumer" in r.output
    r = cli("worker", "no_such_module_here:X", "--service", "calc")
    assert r.exit_code == 2 and "cannot load" in r.output


def test_daemon_promotes_timers_until_sigterm(redis_url: str, prefix: str,
                                              client: Client) -> None:
    timer_id = client.create_timer("alarms", "ring", delay_ms=0)
    proc = subprocess.Popen(homing_argv(redis_url, prefix, "daemon", "--interval", "0.01"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while client.stats("alarms")["ready"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        code, out, err = stop(proc)
    assert client.status("alarms", timer_id).detail == "ready"
    assert code == 0, err
    assert "scheduler stopped after moving" in out and "distributor stopped" in out


def test_python_dash_m_homing() -> None:
    r = subprocess.run([sys.executable, "-m", "homing", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for command in ("enqueue", "stats", "dead", "worker", "daemon", "demo"):
        assert f"  {command} " in r.stdout
