"""A service stays callable while its Cluster slot migrates: scripts declare only keys they use.

While a slot is MIGRATING, its node runs a multi-key call only when all of the
call's keys are there; with some present and some missing it answers TRYAGAIN
(it cannot tell a missing key from one already moved). Scripts used to declare
the test-clock key, which never exists in production, so every such call
failed for the whole migration. The test clock is now the config field
``test_clock`` (lua/include/clock.lua), and lua/build.py refuses a script that
declares a key its body never uses. The static checks here need no Redis; the
migration test needs the private Cluster.
"""

from __future__ import annotations

import importlib.util
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

import homing
from homing.manifest import LAYOUT, MANIFEST, SCRIPTS, service_key

LUA = Path(__file__).resolve().parents[2] / "lua"


def _lua_build() -> Any:
    spec = importlib.util.spec_from_file_location("lua_build", LUA / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- static: what each script declares ----------------------------------------------

def test_no_clock_key() -> None:
    assert "clock" not in LAYOUT["service_keys"]
    for script in SCRIPTS.values():
        assert "clock" not in script.keys, script.name
    assert "test_clock" in LAYOUT["service_keys"]["config"]["doc"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_declared_key_is_used(name: str) -> None:
    lines = MANIFEST["scripts"][name]["source"].splitlines()
    # The generated prologue names every key in expected_type (kept only where
    # on() may need it, lua/deadcode.py), and the guarded ones in the type guard
    # (absent when every key is unguarded). The build reads K.name in place as
    # KEYS[i] (deadcode.fold), so the K table itself is gone.
    prologue = ("local K = {", "for _, kt in ipairs({", "local function expected_type(")
    assert sum(line.startswith(prologue[0]) for line in lines) == 0, name
    assert sum(line.startswith(prologue[2]) for line in lines) <= 1, name
    body = "\n".join(line for line in lines if not line.startswith(prologue))
    used = {SCRIPTS[name].keys[int(i) - 1] for i in re.findall(r"\bKEYS\[(\d+)\]", body)}
    assert set(SCRIPTS[name].keys) == used, name


def test_scripts_that_read_now_declare_config() -> None:
    # now_ms(p) reads the clock from what load_policy read out of config.
    for name, entry in MANIFEST["scripts"].items():
        if "local function now_ms" in entry["source"]:
            assert "config" in entry["keys"], name
            assert "now_ms(p)" in entry["source"].split("local function now_ms", 1)[1], name


def test_build_refuses_an_unused_key(tmp_path: Path) -> None:
    build = _lua_build()
    layout, errors = build.load_json("keys.json"), build.load_json("errors.json")["errors"]
    probe = tmp_path / "probe.lua"
    probe.write_text("--[[\n@script probe\n@version 1\n@memory none\n@summary p\n"
                     "@key meta\n@key dead\n@return value(int) r\n]]\n"
                     "return redis.call('HLEN', K.meta)\n")
    with pytest.raises(build.BuildError, match=r"declares keys \['dead'\]"):
        build.build_script(probe, layout, errors)
    probe.write_text(probe.read_text().replace("@key dead\n", ""))
    assert build.build_script(probe, layout, errors)["keys"] == ["meta"]


def test_the_type_guard_checks_only_the_keys_not_marked_unguarded(tmp_path: Path) -> None:
    build = _lua_build()
    layout, errors = build.load_json("keys.json"), build.load_json("errors.json")["errors"]
    probe = tmp_path / "probe.lua"
    probe.write_text("--[[\n@script probe\n@version 1\n@memory none\n@summary p\n"
                     "@key meta unguarded: HLEN first\n@key dead\n@return value(int) r\n]]\n"
                     "return on('HLEN', K.meta) + redis.call('ZCARD', K.dead)\n")
    source = build.build_script(probe, layout, errors)["source"]
    [guard] = [line for line in source.splitlines() if line.startswith("for _, kt in ipairs")]
    assert "KEYS[2]" in guard and "KEYS[1]" not in guard  # dead, not meta
    # Unguarded needs its why: the command that touches the key first.
    probe.write_text(probe.read_text().replace("unguarded: HLEN first", "unguarded"))
    with pytest.raises(build.BuildError, match="unguarded needs a reason"):
        build.build_script(probe, layout, errors)


def test_an_unguarded_key_of_the_wrong_type_is_refused_by_name(
        client: homing.Client, service: str) -> None:
    # enqueue checks no key up front: data is refused by its first read (HMGET)
    # with the same typed error the guard gives, and nothing is written.
    client.redis.set(service_key(client.prefix, service, "data"), "foreign")
    with pytest.raises(homing.WrongTypeError, match="data holds a string, expected a hash"):
        client.enqueue(service, 1)
    assert not client.redis.exists(service_key(client.prefix, service, "ready"))
    assert client.redis.get(service_key(client.prefix, service, "data")) == b"foreign"


def test_configure_refuses_test_clock(client: homing.Client, service: str) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.configure(service, test_clock=5)


# -- a slot that migrates ------------------------------------------------------------

def _owner_and_other(nodes: list[redis.Redis], slot: int) -> tuple[redis.Redis, redis.Redis]:
    ids = {n.execute_command("CLUSTER", "MYID"): n for n in nodes}
    for start, end, master, *_ in nodes[0].execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            owner = ids[master[2]]
            return owner, next(n for n in nodes if n is not owner)
    raise AssertionError(f"slot {slot} is not served")


@pytest.fixture
def node_clients(cluster_servers: Any) -> Iterator[list[redis.Redis]]:
    clients = [redis.Redis(host="127.0.0.1", port=n.port, socket_timeout=10,
                           decode_responses=True) for n in cluster_servers.nodes]
    try:
        yield clients
    finally:
        for c in clients:
            c.close()


@pytest.mark.cluster
def test_calls_work_while_the_slot_migrates(cluster_servers: Any, prefix: str,
                                            node_clients: list[redis.Redis]) -> None:
    service = "mig-" + uuid.uuid4().hex[:8]
    client = homing.Client.from_url(cluster_servers.url, prefix=prefix)
    try:
        # A busy service: one event done (its result kept), two in flight.
        client.enqueue_many(service, ["a", "b", "c"], ids=["e1", "e2", "e3"])
        leased = {e.id: e for e in client.dequeue(service, 3)}
        client.complete(service, "e1", leased["e1"].token, result="ok")

        def keys(script: str) -> list[str]:
            return [service_key(prefix, service, k) for k in SCRIPTS[script].keys]

        for script in ("extend", "complete"):
            missing = [k for k in keys(script) if not client.redis.exists(k)]
            assert missing == [], f"{script}: the setup should leave every key present"
        slot = key_slot(keys("extend")[0].encode())
        source, target = _owner_and_other(node_clients, slot)
        source_id = source.execute_command("CLUSTER", "MYID")
        target_id = target.execute_command("CLUSTER", "MYID")
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        try:
            ext = SCRIPTS["extend"]
            args = [0, 1, "e2", leased["e2"].token]
            # What the old declaration did: one absent declared key (the old clock key)
            # and the node refuses the whole call while the slot migrates.
            old_keys = [*keys("extend"), service_key(prefix, service, "clock")]
            with pytest.raises(redis.exceptions.TryAgainError):
                source.eval(ext.source, len(old_keys), *old_keys, *args)
            # Now every declared key exists on the node: the call runs.
            [deadline] = source.eval(ext.source, len(keys("extend")), *keys("extend"), *args)
            assert isinstance(deadline, int) and deadline > 0
            # And through the homing client (a Cluster client) as a user calls it.
            assert client.extend_lease(service, "e3", leased["e3"].token) > 0
            client.complete(service, "e2", leased["e2"].token, result="ok")
        finally:
            for node in (source, target):
                node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        assert client.stats(service)["total.completed"] == 2
    finally:
        client.close()
