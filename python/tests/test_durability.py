"""`homing conformance` reports the settings that bound homing's promises."""

from __future__ import annotations

import redis
from click.testing import CliRunner

from homing.cli import main
from homing.conformance import durability


def test_a_durable_node_reads_ok(aof_server) -> None:  # noqa: ANN001 - fixture
    settings = durability.read_settings(aof_server.url)
    assert settings == {"appendonly": "yes", "appendfsync": "always",
                        "maxmemory-policy": "noeviction"}
    assert all(line.startswith("  ok") for line in durability.notes(settings))


def test_each_risky_setting_is_named_with_why(standalone_server) -> None:  # noqa: ANN001
    r = redis.Redis.from_url(standalone_server.url)
    try:
        r.config_set("maxmemory-policy", "allkeys-lru")
        text = durability.render(standalone_server.url)
    finally:
        r.config_set("maxmemory-policy", "noeviction")
        r.close()
    assert "WARN appendonly no" in text and "WARN maxmemory-policy allkeys-lru" in text
    assert "does not make this server durable" in text


def test_refused_config_is_unknown_not_guessed() -> None:
    lines = durability.notes({"appendonly": None, "appendfsync": "always",
                              "maxmemory-policy": "noeviction"})
    assert lines[0].startswith("  ?    appendonly: unknown")


def test_the_command_prints_the_section_and_still_passes(aof_server) -> None:  # noqa: ANN001
    result = CliRunner().invoke(main, ["conformance", "--redis-url", aof_server.url,
                                       "--filter", "enqueue"])
    assert result.exit_code == 0, result.output
    assert "durability (this node" in result.output
    assert "this node is set up to keep what it acknowledges" in result.output
