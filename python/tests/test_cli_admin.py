"""``homing stats``, ``homing dead`` and ``homing conformance`` through click's CliRunner.

Against the private servers of conftest.py; each test has a prefix of its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from homing import Client
from homing.cli import main
from homing.clistats import FLOW, MORE
from homing.manifest import global_key, service_key


def make_dead(client: Client, service: str, n: int, reason: str = "boom") -> list[str]:
    """n dead letters, oldest first (each event leased once and failed with dead=True)."""
    ids: list[str] = []
    for start in range(0, n, 1000):
        ids += client.enqueue_many(service, [{"n": i} for i in range(start, min(n, start + 1000))])
    done = 0
    while done < n:
        events = client.dequeue(service, min(1000, n - done))
        for ev in events:
            client.fail(service, ev.id, ev.token, reason, dead=True)
        done += len(events)
    return ids


# -- stats and dead letters -----------------------------------------------------------


def test_stats_table_and_json(cli, client: Client) -> None:
    client.enqueue_many("alpha", [1, 2, 3])
    client.create_timer("beta", "x", delay_ms=600000)
    client.dequeue("alpha")
    r = cli("stats")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "READY", "IN", "FLIGHT", "TIMERS", "RETRYING",
                                "EXPIRED", "DEAD"]
    assert lines[1].split() == ["alpha", "2", "1", "0", "0", "0", "0"]
    assert lines[2].split() == ["beta", "0", "0", "1", "0", "0", "0"]
    assert "ENQUEUED" in r.stdout and "DELIVERED" in r.stdout
    r = cli("stats", "--json", "beta")
    data = json.loads(r.stdout)["services"]
    assert list(data) == ["beta"] and data["beta"]["timers"] == 1


def test_stats_without_services(cli, prefix: str) -> None:
    r = cli("stats")
    assert r.exit_code == 0 and f"no services registered under prefix {prefix!r}" in r.stdout


def test_configure_sets_resets_and_shows_policy(cli, client: Client) -> None:
    r = cli("configure", "svc", "--lease-ms", "2000", "--backoff-jitter", "0.25")
    assert r.exit_code == 0, r.output
    shown = dict(line.split() for line in r.stdout.splitlines())
    assert shown["lease_ms"] == "2000" and shown["backoff_jitter"] == "0.25"
    assert client.stats("svc")["policy.lease_ms"] == 2000
    r = cli("configure", "svc", "--reset", "lease_ms")
    assert "lease_ms         30000" in r.stdout
    r = cli("configure", "svc")  # no options: read only
    assert r.exit_code == 0 and "backoff_jitter   0.25" in r.stdout


def test_dead_list_requeue_and_purge_by_id(cli, client: Client) -> None:
    ids = make_dead(client, "jobs", 3, reason="ValueError: bad input")
    r = cli("dead", "list", "jobs")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].split() == ["ID", "DIED", "AT", "ATTEMPT", "REASON",
                                                "PAYLOAD"]
    for i, event_id in enumerate(ids):
        row = next(line for line in r.stdout.splitlines() if line.startswith(event_id))
        assert "ValueError: bad input" in row and f'{{"n": {i}}}' in row
    assert "3 shown (from 0) of 3 dead letters" in r.stdout
    order = [d.id for d in client.dead_list("jobs").letters]  # same-ms ties: by id
    r = cli("dead", "list", "jobs", "--offset", "1", "--count", "1")
    assert order[1] in r.stdout and order[0] not in r.stdout and order[2] not in r.stdout
    r = cli("dead", "requeue", "jobs", ids[0], ids[2])
    assert r.exit_code == 0 and "requeued 2 dead letters of jobs; 1 remain" in r.stdout
    assert client.stats("jobs")["ready"] == 2
    r = cli("dead", "purge", "jobs", ids[1], "--yes")
    assert r.exit_code == 0 and "purged 1 dead letters of jobs; 0 remain" in r.stdout
    assert client.status("jobs", ids[1]).state == "unknown"


def test_dead_selection_is_required(cli) -> None:
    for args in (["dead", "requeue", "jobs"], ["dead", "purge", "jobs", "x", "--all"]):
        r = cli(*args)
        assert r.exit_code == 2 and "--all" in r.output


def test_dead_requeue_all_loops_over_batches(cli, client: Client) -> None:
    make_dead(client, "jobs", 1005)
    r = cli("dead", "requeue", "jobs", "--all")
    assert r.exit_code == 0, r.output
    assert "requeued 1005 dead letters of jobs; 0 remain" in r.stdout
    assert r.stderr == ""  # no progress bar (nor its label) unless stderr is a terminal
    st = client.stats("jobs")
    assert (st["dead"], st["ready"]) == (0, 1005)
    assert client.dequeue("jobs")[0].attempt == 1  # attempts start again


def test_dead_purge_all_asks_first(cli, client: Client) -> None:
    make_dead(client, "jobs", 1005)
    r = cli("dead", "purge", "jobs", "--all", input="n\n")
    assert r.exit_code == 1 and "Delete 1005 dead letters of jobs for good?" in r.output
    assert client.stats("jobs")["dead"] == 1005
    r = cli("dead", "purge", "jobs", "--all", input="y\n")
    assert r.exit_code == 0, r.output
    assert "purged 1005 dead letters of jobs; 0 remain" in r.stdout
    assert client.stats("jobs")["dead"] == 0


def test_stats_totals_have_fixed_columns(cli, client: Client) -> None:
    client.enqueue("fresh", 1)  # only 'enqueued' is non-zero: every column is still there
    r = cli("stats", "fresh")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    flow = lines.index("totals since the service was created") + 1
    assert lines[flow].split() == ["SERVICE", *(t.upper() for t in FLOW)]
    assert lines[flow + 1].split() == ["fresh", "1"] + ["0"] * (len(FLOW) - 1)
    more = lines.index("timers, scheduler and housekeeping totals") + 1
    assert lines[more].split() == ["SERVICE", *" ".join(MORE).upper().replace("_", " ").split()]
    assert lines[more + 1].split() == ["fresh"] + ["0"] * len(MORE)
    fresh = json.loads(cli("stats", "--json", "fresh").stdout)["services"]["fresh"]
    assert "test_clock" not in fresh


def test_every_counter_the_scripts_increment_has_a_column() -> None:
    lua = Path(__file__).resolve().parents[2] / "lua"
    source = "\n".join(p.read_text() for p in lua.rglob("*.lua"))
    named = set(re.findall(r"count\('(\w+)'", source))
    named |= set(re.findall(r"promote_due\(K\.\w+, '(\w+)'", source))  # count(counter, n)
    # Counted without count() where a full Redis must not turn the write into an error.
    named |= set(re.findall(r"'HINCRBY', K\.counters, '(\w+)'", source))
    # late_*: promote's timer lateness histogram, exported by homing.metrics, not a column.
    named = {n for n in named if not n.startswith("late_")}
    assert {"timers_fired", "dead", "stale_acks"} <= named
    assert named == set(FLOW) | set(MORE)
    doc = (lua.parent / "docs" / "cli.md").read_text()
    assert all(f"`{name}`" in doc for name in named)  # each one is defined there


def test_stats_of_an_unregistered_service_warns_and_shows_zeros(cli, prefix: str) -> None:
    r = cli("stats", "nosuch")
    assert r.exit_code == 0, r.output
    assert (f"service 'nosuch' is not registered: nothing was ever enqueued to it under prefix "
            f"{prefix!r}") in r.stderr
    assert r.stdout.splitlines()[1].split() == ["nosuch", "0", "0", "0", "0", "0", "0"]
    r = cli("stats", "--json", "nosuch")
    assert json.loads(r.stdout)["services"]["nosuch"]["ready"] == 0
    assert "not registered" in r.stderr


def test_stats_warns_loudly_about_a_test_clock(cli, client: Client, prefix: str) -> None:
    client.enqueue_many("frozen", [1])
    client.enqueue_many("live", [1])
    client.redis.hset(service_key(prefix, "frozen", "config"), "test_clock", 1000000)
    r = cli("stats")
    assert r.exit_code == 0, r.output
    assert "A TEST CLOCK IS SET ON SERVICE 'frozen': time is frozen at 1000000 ms" in r.stderr
    assert f"HDEL {service_key(prefix, 'frozen', 'config')} test_clock" in r.stderr
    assert "'live'" not in r.stderr
    data = json.loads(cli("stats", "--json").stdout)["services"]
    assert data["frozen"]["test_clock"] == 1000000 and "test_clock" not in data["live"]


def test_stats_warns_when_no_daemon_runs(cli, client: Client, prefix: str) -> None:
    client.enqueue("svc", 1)
    r = cli("stats")
    assert ("no retry scheduler has run in the last 10 s: timers, retries and expired leases "
            "wait until one does (run `homing daemon`)") in r.stderr
    assert "no retry distributor has run in the last 10 s" in r.stderr
    client.beat("scheduler:host:1")
    r = cli("stats")
    assert "scheduler" not in r.stderr and "no retry distributor" in r.stderr
    sec, usec = client.redis.time()  # a distributor that stopped a minute ago
    client.redis.hset(global_key(prefix, "daemons"), "distributor:host:2",
                      sec * 1000 + usec // 1000 - 60000)
    r = cli("stats")
    assert re.search(r"no retry distributor has run in the last 10 s \(the last one beat "
                     r"6\d s ago\)", r.stderr), r.stderr
    client.beat("distributor:host:3")
    r = cli("stats")
    assert r.exit_code == 0 and r.stderr == ""


def test_dead_all_with_nothing_to_do(cli, client: Client) -> None:
    client.enqueue("jobs", 1)
    for verb in ("requeue", "purge"):
        r = cli("dead", verb, "jobs", "--all")  # no input: a prompt would abort with 1
        assert r.exit_code == 0, r.output
        assert r.stdout == "no dead letters in jobs\n" and r.stderr == ""
    assert client.stats("jobs")["ready"] == 1


def test_dead_requeue_names_ids_that_are_not_dead_letters(cli, client: Client) -> None:
    (dead_id,) = make_dead(client, "jobs", 1)
    live = client.enqueue("jobs", "live")
    r = cli("dead", "requeue", "jobs", dead_id, live, "nosuchid")
    assert r.exit_code == 1, r.output
    assert "requeued 1 dead letters of jobs; 0 remain" in r.stdout
    assert (f"not dead letters of jobs, not requeued: {live} (pending: ready), nosuchid "
            "(no such event)") in r.stderr
    assert client.stats("jobs")["ready"] == 2
    r = cli("dead", "purge", "jobs", live, "--yes")
    assert r.exit_code == 1 and "nothing purged" in r.stderr
    assert client.status("jobs", live).state == "pending"


# -- conformance ----------------------------------------------------------------------


def test_conformance_takes_the_url_from_the_environment(redis_url: str) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["conformance", "--help"])
    assert "env var: HOMING_REDIS_URL" in r.output and "required" not in r.output
    r = runner.invoke(main, ["conformance"], env={"HOMING_REDIS_URL": None})
    assert r.exit_code == 2
    assert "give --redis-url URL or set HOMING_REDIS_URL" in r.output
    r = runner.invoke(main, ["conformance", "--filter", "stats"],
                      env={"HOMING_REDIS_URL": redis_url})
    assert r.exit_code == 0, r.output


def test_conformance_reports_a_prefix_in_use_as_code_and_message(cli, client: Client,
                                                                 prefix: str) -> None:
    client.enqueue("live", 1)
    r = cli("conformance", "--prefix", prefix, "--filter", "stats")
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: prefix {prefix!r} is in use"), r.stderr
    assert "Error:" not in r.stderr and len(r.stderr.splitlines()) == 1
    assert client.services() == ["live"]
