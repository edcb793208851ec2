"""ACL users and TLS, as docs/security.md prescribes them, on a private TLS-only redis-server.

The server (tls_servers.py) listens on TLS only, requires a client certificate
signed by a CA this module makes with openssl, and has its ``default`` user
switched off. The users are made with the very ``ACL SETUSER`` lines of
docs/security.md, so these tests prove that the lists suffice (a producer, a
Worker, the daemons as a ``homing daemon`` process and the admin CLI, each as
its own user, move events end to end without one refused command), and that
they are exact: each list is compared with what the clients and the manifest's
scripts call (a script's inner commands are ACL-checked as the caller), and a
user missing one listed command fails with Redis's NOPERM reason.

Run ``python python/tests/test_security.py`` to print the lines the code needs
now (to update docs/security.md after a script starts calling a new command).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import homing

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"
MANIFEST = REPO / "python" / "homing" / "manifest.json"
PASSWORD = "test-password-1"
PLACEHOLDER = ">CHANGE-ME"

# What each role runs: the scripts (their inner commands count as the caller's)
# and the commands the clients send themselves (python/homing/client.py, aio.py,
# daemons.py, worker.py, connection.py; javascript/src/client.js, connection.js).
CONNECT = {"info", "ping"}  # INFO cluster: the Cluster probe; PING: the health checks
SCRIPTS = {"evalsha", "eval"}  # EVALSHA, and EVAL once after NOSCRIPT
ROLES: dict[str, tuple[set[str], set[str]]] = {
    # enqueue / enqueue_many, create_timer, cancel_timer, status / result, the group
    # calls (enqueue_group, group_status, group_result / wait_group, group_forget); the
    # due-time index's hint after a timer (ZADD, and PUBLISH on <prefix>:wake when it
    # lowered it)
    "homing-producer": ({"enqueue", "schedule", "cancel", "result", "group_enqueue",
                         "group_status", "group_result", "group_forget"},
                        {"sadd", "sismember", "zadd", "publish"}),  # SISMEMBER: a full Redis
    # dequeue, start, complete(_many), extend_many, fail, release; stats (lease policy);
    # the due-time hint after a dequeue or a retry; BLMOVE: the idle wait on its queue
    # and worker_beat (the dashboard's view of it)
    "homing-worker": ({"dequeue", "start", "complete", "extend", "fail", "release", "stats",
                       "worker_beat"}, {"sadd", "sismember", "zadd", "publish", "blmove"}),
    # the scheduler and distributor: the due-time index (its scripts, the wake channel,
    # the backstop's SSCAN, ZRANGE, LLEN and ZADD), registry, hints, beats
    "homing-daemon": ({"promote", "distribute", "beat", "due_take", "due_settle"},
                      {"smembers", "sadd", "spop", "sscan", "zrange", "llen", "zadd",
                       "publish", "subscribe"}),
    # homing stats / configure / dead / services: registry (configure registers, as a
    # write may create the service), daemons' beats (read and pruned); services reads
    # each service's traces of activity, forget removes it (SREM, ZREM, EXISTS)
    "homing-admin": ({"stats", "configure", "dead_list", "dead_requeue", "dead_purge",
                      "forget"},
                     {"smembers", "sadd", "sismember", "time", "hgetall", "hdel", "srem",
                      "zrem", "exists", "get", "zrange", "lindex", "hget"}),
    # homing dashboard (homing/web/data.py): the admin scripts and result (an event by id),
    # then bounded reads: the oldest ready event (LINDEX, HGET), a lease or due time
    # (ZSCORE), lag (ZRANGE 0 0, LLEN), the daemons' beats (HGETALL; never pruned here)
    # and the workers' (HSCAN)
    "homing-dashboard": ({"stats", "result", "configure", "dead_list", "dead_requeue",
                          "dead_purge"},
                         {"smembers", "sadd", "sismember", "time", "lindex", "hget", "zscore",
                          "zrange", "llen", "hgetall", "hscan"}),
}
ALL_ROLES = "homing-all"
NO_CHANNEL = {"homing-admin", "homing-dashboard"}  # they add no due work: no wake-up
_CALL = re.compile(r"redis\.p?call\(\s*(['\"]?)([A-Za-z_|]*)")
# base.lua's on(cmd, key, ...) sends a command its callers name: on('HMGET', ...).
_ON = re.compile(r"\bon\(\s*'([A-Za-z]+)'")
_ON_HELPER = "local r = redis.pcall(cmd, key, ...)"


def script_commands(manifest: dict[str, Any], name: str) -> set[str]:
    """The commands a flattened script calls (its generated type guard included)."""
    source = manifest["scripts"][name]["source"]
    found = _CALL.findall(source.replace(_ON_HELPER, ""))
    dynamic = [cmd for quote, cmd in found if not quote]
    assert not dynamic, f"script {name} calls a command named at run time: {dynamic}"
    return {cmd.lower() for _, cmd in found} | {cmd.lower() for cmd in _ON.findall(source)}


def needed() -> dict[str, set[str]]:
    """Per ACL user, the commands the code calls now."""
    manifest = json.loads(MANIFEST.read_text())
    out = {}
    for user, (scripts, direct) in ROLES.items():
        inner = set().union(*(script_commands(manifest, s) for s in scripts))
        out[user] = CONNECT | SCRIPTS | direct | inner
    out[ALL_ROLES] = set().union(*out.values())
    return out


def doc_users() -> dict[str, list[str]]:
    """The ``ACL SETUSER`` lines of docs/security.md: user -> rules, password in place."""
    users = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("ACL SETUSER "):
            words = shlex.split(line)
            users[words[2]] = [PLACEHOLDER.replace("CHANGE-ME", PASSWORD) if w == PLACEHOLDER
                               else w for w in words[3:]]
    return users


def granted(rules: list[str]) -> set[str]:
    return {r[1:].lower() for r in rules if r.startswith("+")}


def acl_line(user: str, commands: set[str], prefix: str = "homing") -> str:
    cmds = " ".join(f"+{c}" for c in sorted(commands))
    wake = "" if user in NO_CHANNEL else f" &{prefix}:wake"
    return f"ACL SETUSER {user} reset on {PLACEHOLDER} ~{prefix}:*{wake} {cmds}"


# -- the lists, checked against the code -----------------------------------------------


def test_doc_lists_are_exactly_what_the_code_calls() -> None:
    users, want = doc_users(), needed()
    assert set(users) == set(want), "docs/security.md must have one line per role and one for all"
    for user, commands in want.items():
        rules = users[user]
        assert rules[:2] == ["reset", "on"], f"{user}: start from reset, then on"
        assert "~homing:*" in rules and not any(r.startswith(("%", "allkeys", "allcommands"))
                                                for r in rules), user
        # One channel: the schedulers' wake-up (homing.due), which a producer or worker
        # publishes on and the scheduler subscribes to; none for the admin.
        channels = [r for r in rules if r.startswith("&")]
        assert channels == ([] if user in NO_CHANNEL else ["&homing:wake"]), user
        assert not [r for r in rules if r.startswith(("+@", "-"))], f"{user}: commands, by name"
        have = granted(rules)
        assert have == commands, (
            f"{user}: docs/security.md lists {sorted(have - commands)} that the code does not "
            f"call and lacks {sorted(commands - have)} that it does:\n{acl_line(user, commands)}")


def test_every_key_is_under_the_prefix() -> None:
    """``~<prefix>:*`` covers every key homing touches, global keys included."""
    from homing.manifest import LAYOUT, global_key, service_key

    for name in LAYOUT["service_keys"]:
        assert service_key("homing", "svc", name).startswith("homing:")
    for name in LAYOUT["global_keys"]:
        assert global_key("homing", name).startswith("homing:")


# -- a TLS-only server with the documented users ------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tls_servers import TlsRedisServer, make_certs, tls_supported

    why = tls_supported()
    if why:
        pytest.skip(why)
    base = tmp_path_factory.mktemp("redis-tls")
    certs = make_certs(base / "certs")
    # Durable (AOF, fsync always), so that require_durable can pass without CONFIG GET.
    with TlsRedisServer(base / "server", certs, appendonly=True,
                        appendfsync="always") as server:
        admin = server.admin()
        for user, rules in doc_users().items():
            admin.execute_command("ACL", "SETUSER", user, *rules)
        admin.execute_command("ACL", "LOG", "RESET")
        server.admin_client = admin
        yield server
        admin.close()


def _client(tls: Any, user: str, password: str = PASSWORD) -> Any:
    return homing.Client.from_url(tls.url_for(user, password), **tls.certs.redis_kwargs())


# Refusals the clients expect and cope with: CLIENT SETINFO (Redis 7.2+; ignored by both
# client libraries) and CONFIG GET (durability settings: optional, INFO is used instead).
OPTIONAL = ("client|setinfo", "client", "config|get")


def _refusals(tls: Any) -> list[dict[str, Any]]:
    """ACL LOG entries, but for the optional commands."""
    return [e for e in tls.admin_client.acl_log() if e.get("object") not in OPTIONAL]


def refused(command: str) -> str:
    """Redis's reason for a refused command: named at the top level (and, from 7.2 on, in a
    script); Redis 7.0 does not name a command refused inside a script (ACL LOG does)."""
    return f"no permissions to run the '{command}'|can't run this command or subcommand"


def _cli(tls: Any, user: str, *args: str) -> list[str]:
    c = tls.certs
    return [sys.executable, "-m", "homing", "--redis-url", tls.url_for(user, PASSWORD),
            "--tls-ca", str(c.ca), "--tls-cert", str(c.client_cert), "--tls-key",
            str(c.client_key), *args]


class Echo(homing.Consumer):
    """Completes each event with its payload and attempt; fails payloads {"fail": n} n times."""

    def handle_event(self, event: homing.Event, state: Any) -> Any:
        if isinstance(event.payload, dict) and event.attempt <= event.payload.get("fail", 0):
            raise RuntimeError(f"failing attempt {event.attempt} on purpose")
        self.complete(event.service, event.id, {"echo": event.payload, "attempt": event.attempt})
        return state


def test_every_role_over_tls_end_to_end(tls: Any) -> None:
    """Producer, Worker, daemon process and admin CLI, each its own minimal user, over TLS."""
    service, slow = "sec-py", "sec-py-lease"
    admin = subprocess.run(_cli(tls, "homing-admin", "configure", service, "--backoff-base-ms",
                                "10"), capture_output=True, text=True, timeout=30)
    assert admin.returncode == 0, admin.stderr
    subprocess.run(_cli(tls, "homing-admin", "configure", slow, "--backoff-base-ms", "10"),
                   check=True, capture_output=True, timeout=30)
    daemon = subprocess.Popen(_cli(tls, "homing-daemon", "daemon", "--interval", "0.02"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer = _client(tls, "homing-producer")
    worker_client = _client(tls, "homing-worker")
    worker = homing.Worker(worker_client, service, Echo, grace=2.0)
    try:
        worker.start()
        plain = producer.enqueue(service, {"city": "Oslo"})
        retried = producer.enqueue(service, {"fail": 1})
        timer = producer.create_timer(service, "later", delay_ms=100)
        assert producer.result(service, plain, timeout=10) == {"echo": {"city": "Oslo"},
                                                              "attempt": 1}
        # fail -> retry backoff -> the scheduler promotes it -> attempt 2
        assert producer.result(service, retried, timeout=10)["attempt"] == 2
        assert producer.result(service, timer, timeout=10) == {"echo": "later", "attempt": 1}
        cancelled = producer.create_timer(service, "never", delay_ms=60_000)
        assert producer.cancel_timer(service, cancelled)

        # A cancel leaves a dead copy, which the worker's dequeue skips (LRANGE,
        # LTRIM, DEL of void: in the worker's list).
        gone = producer.enqueue(slow, "cancelled")
        assert producer.cancel(slow, gone) == (True, "ready")
        # A lease that runs out: the scheduler reclaims it, the distributor routes it back.
        first = producer.enqueue(slow, "expires")
        [ev] = worker_client.dequeue(slow, 1, lease_ms=50)
        deadline = time.monotonic() + 10
        again: list[Any] = []
        while not again and time.monotonic() < deadline:
            time.sleep(0.05)
            again = worker_client.dequeue(slow, 1, lease_ms=5000)
        assert [e.id for e in again] == [first] and again[0].attempt == 2
        worker_client.complete(slow, first, again[0].token, "done late")
        assert producer.result(slow, first, timeout=5) == "done late"
        assert ev.token != again[0].token

        stats = subprocess.run(_cli(tls, "homing-admin", "stats", "--json"),
                               capture_output=True, text=True, timeout=30)
        assert stats.returncode == 0, stats.stderr
        report = json.loads(stats.stdout)
        assert report["services"][service]["total.completed"] == 3
        assert "no retry" not in stats.stderr  # both daemons beat, and stats could read it
        assert "cannot tell whether the daemons run" not in stats.stderr
    finally:
        worker.stop()
        worker.shutdown()
        daemon.terminate()
        out, err = daemon.communicate(timeout=15)
        producer.close()
        worker_client.close()
    assert daemon.returncode == 0, err
    assert "Traceback" not in err and "retrying" not in err, err
    assert _refusals(tls) == []


@pytest.mark.parametrize(("user", "dropped", "call"), [
    ("homing-producer", "time", "enqueue"),      # inside the enqueue script
    ("homing-producer", "sismember", "enqueue"),  # the registry check, before the script
    ("homing-worker", "evalsha", "dequeue"),
    ("homing-worker", "sadd", "register"),       # what a Worker does first
    ("homing-daemon", "spop", "take_hints"),
])
def test_a_user_lacking_one_listed_command_is_refused(tls: Any, user: str, dropped: str,
                                                      call: str) -> None:
    """The lists are not padded: drop one command and the role fails, naming it."""
    name = f"{user}-no-{dropped}"
    rules = doc_users()[user]
    tls.admin_client.execute_command("ACL", "SETUSER", name, *rules, f"-{dropped}")
    client = _client(tls, name)
    try:
        with pytest.raises(homing.PermissionDeniedError, match=refused(dropped)):
            if call == "enqueue":
                client.enqueue("sec-neg", {"n": 1})
            elif call == "dequeue":
                client.dequeue("sec-neg", 1)
            elif call == "register":
                client.register("sec-neg")
            else:
                client.take_hints(10)
        assert [(e["username"], e["object"]) for e in _refusals(tls)] == [(name, dropped)]
    finally:
        client.close()
        tls.admin_client.execute_command("ACL", "DELUSER", name)
        tls.admin_client.execute_command("ACL", "LOG", "RESET")


def test_a_producer_lacking_sadd_is_told(tls: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The event is written before the SADD, so that refusal is a warning, not an error."""
    name = "homing-producer-no-sadd"
    tls.admin_client.execute_command("ACL", "SETUSER", name, *doc_users()["homing-producer"],
                                     "-sadd")
    try:
        with _client(tls, name) as client, caplog.at_level("WARNING", logger="homing"):
            client.enqueue("sec-neg-sadd", 1)
        assert re.search(refused("sadd"), caplog.text), caplog.text
        assert "could not be added to the registry" in caplog.text
    finally:
        tls.admin_client.execute_command("ACL", "DELUSER", name)
        tls.admin_client.execute_command("ACL", "LOG", "RESET")


def test_the_category_acl_of_the_issue_fails_on_time(tls: Any) -> None:
    """+@read +@write +@scripting +@connection is not enough: the scripts call TIME."""
    tls.admin_client.execute_command("ACL", "SETUSER", "by-category", "reset", "on",
                                     f">{PASSWORD}", "~homing:*", "+@read", "+@write",
                                     "+@scripting", "+@connection")
    client = _client(tls, "by-category")
    try:
        with pytest.raises(homing.PermissionDeniedError, match=refused("time")):
            client.enqueue("sec-cat", 1)
        # (and INFO, the Cluster probe, which is in none of those categories either)
        assert ("time", "lua") in [(e["object"], e["context"]) for e in _refusals(tls)]
    finally:
        client.close()
        tls.admin_client.execute_command("ACL", "DELUSER", "by-category")
        tls.admin_client.execute_command("ACL", "LOG", "RESET")


def test_config_get_is_optional(tls: Any) -> None:
    """Without +config|get the settings INFO shows are used; require_durable still passes."""
    rules = doc_users()["homing-producer"]
    admin = tls.admin_client
    admin.execute_command("ACL", "SETUSER", "with-config", *rules, "+config|get")
    admin.execute_command("ACL", "SETUSER", "without-info", *rules, "-info")
    try:
        for user, refused_config in (("homing-producer", True), ("with-config", False)):
            with homing.Client.from_url(tls.url_for(user, PASSWORD), require_durable=True,
                                        **tls.certs.redis_kwargs()) as client:
                [node] = client.check_durability()
                assert (node.config_refused is not None) == refused_config, node
                assert node.settings["maxmemory-policy"] == "noeviction"  # INFO shows it
                assert node.settings["appendonly"] == "yes"
                # appendfsync only through CONFIG GET
                assert node.settings["appendfsync"] == (None if refused_config else "always")
                client.enqueue("sec-config", 1)
        # Neither CONFIG GET nor INFO: it works, but durability cannot be shown.
        with _client(tls, "without-info") as client:
            client.enqueue("sec-config", 2)
            with pytest.raises(homing.NotDurableError, match="cannot be shown"):
                client.check_durability(require=True)
    finally:
        admin.execute_command("ACL", "DELUSER", "with-config", "without-info")
        admin.execute_command("ACL", "LOG", "RESET")


def test_tls_needs_the_ca_and_a_client_certificate(tls: Any) -> None:
    url, c = tls.url_for("homing-producer", PASSWORD), tls.certs
    with pytest.raises(homing.ConnectionLostError):  # the server asks for a client certificate
        homing.Client.from_url(url, ssl_ca_certs=str(c.ca)).enqueue("sec-tls", 1)
    with pytest.raises(homing.ConnectionLostError, match="certificate verify failed"):
        homing.Client.from_url(url, ssl_certfile=str(c.client_cert),
                               ssl_keyfile=str(c.client_key)).enqueue("sec-tls", 1)
    plain = url.replace("rediss://", "redis://")
    with pytest.raises(homing.ConnectionLostError):
        homing.Client.from_url(plain).enqueue("sec-tls", 1)
    with pytest.raises(homing.PermissionDeniedError, match="WRONGPASS|invalid username-password"):
        _client(tls, "homing-producer", "wrong").enqueue("sec-tls", 1)


def test_async_client_over_tls(tls: Any) -> None:
    import asyncio

    async def main() -> Any:
        c = await homing.AsyncClient.from_url(tls.url_for("homing-producer", PASSWORD),
                                              **tls.certs.redis_kwargs())
        try:
            event_id = await c.enqueue("sec-async", {"a": 1})
            return (await c.status("sec-async", event_id)).state
        finally:
            await c.close()

    assert asyncio.run(main()) == "pending"


def test_cli_tls_options_need_a_rediss_url(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from homing.cli import main

    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    out = CliRunner().invoke(main, ["--redis-url", "redis://127.0.0.1:1/0", "--tls-ca", str(ca),
                                    "enqueue", "svc", "1"])
    assert out.exit_code == 2
    assert "need a rediss:// URL" in out.output


if __name__ == "__main__":
    for user, commands in needed().items():
        print(acl_line(user, commands))


def test_health_checks_and_wait_are_allowed(tls: Any) -> None:
    """The documented users may PING (homing's health check of an idle connection) and,
    with the WAIT option's optional ``+wait``, WAIT."""
    with homing.Client.from_url(tls.url_for("homing-producer", PASSWORD),
                                health_check_interval=0.01, **tls.certs.redis_kwargs()) as c:
        c.enqueue("sec-ping", 1)
        time.sleep(0.05)  # idle past the interval: the next command is preceded by a PING
        c.enqueue("sec-ping", 2)
    def waiting() -> homing.Client:
        return homing.Client.from_url(tls.url_for("homing-producer", PASSWORD), wait_replicas=1,
                                      wait_timeout_ms=10, **tls.certs.redis_kwargs())

    with pytest.raises(homing.PermissionDeniedError, match=r"\+wait"):
        waiting()  # WAIT is an optional addition: refused when connecting, nothing written
    tls.admin_client.execute_command("ACL", "SETUSER", "homing-producer", "+wait")
    try:
        with waiting() as c, pytest.raises(homing.NotReplicatedError):  # no replica at all
            c.enqueue("sec-ping", 4)
    finally:
        tls.admin_client.execute_command("ACL", "SETUSER", "homing-producer", "-wait")
        tls.admin_client.execute_command("ACL", "LOG", "RESET")
