"""The Redis settings that bound homing's promises, read when a client connects.

homing is exactly as durable as its Redis (docs/guarantees.md). Under an
eviction policy Redis deletes keys when memory runs out, queued events
included, and says nothing; without persistence a restart loses everything.
A fault run lost half of its acknowledged events under ``allkeys-lru`` while
the worker, the daemon and ``homing stats`` stayed silent. So every client,
worker and daemon reads ``maxmemory-policy``, ``appendonly``, ``appendfsync``
and ``save`` (``CONFIG GET``) when it connects and warns once per process and
server (logger ``homing``); ``require_durable`` turns the warning into a
refusal (``NotDurableError``).

Managed services often refuse ``CONFIG``: the eviction policy and whether
the AOF is on are then read from ``INFO``, and what neither shows is
reported as unknown, never guessed. On a Cluster every master is read (the
masters own the data; a replica's settings matter only after a failover).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ResponseError

from .connection import is_bad_database, translate
from .errors import NotDurableError

log = logging.getLogger("homing")

SETTINGS = ("maxmemory-policy", "appendonly", "appendfsync", "save")
_GUIDE = "see docs/guarantees.md"


@dataclass(frozen=True)
class Finding:
    """One setting that may lose acknowledged events; ``fatal``: require_durable refuses it."""

    setting: str
    value: str | None  # None: it could not be read
    consequence: str
    fatal: bool

    def text(self) -> str:
        have = "could not be read" if self.value is None else f"is {self.value!r}"
        return f"{self.setting} {have}: {self.consequence}"


@dataclass(frozen=True)
class NodeDurability:
    """What one server (the standalone server, or a Cluster master) keeps of its writes."""

    node: str  # host:port
    settings: dict[str, str | None]  # None where neither CONFIG GET nor INFO told
    config_refused: str | None = None  # Redis's reply when CONFIG GET was refused
    findings: tuple[Finding, ...] = field(default=())
    unreachable: str | None = None  # a Cluster master that could not be reached, and why

    @property
    def durable(self) -> bool:
        """No eviction policy and the AOF on (appendfsync is warned about, not refused)."""
        return not any(f.fatal for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"durable": self.durable, "settings": self.settings,
                "config_refused": self.config_refused, "unreachable": self.unreachable,
                "warnings": [f.text() for f in self.findings]}


def assess(settings: dict[str, str | None]) -> tuple[Finding, ...]:
    """The findings for one server's settings (an empty tuple: it keeps what it acknowledges)."""
    out: list[Finding] = []
    policy = settings.get("maxmemory-policy")
    if policy is None:
        out.append(Finding("maxmemory-policy", None,
                           "whether Redis may evict (silently delete) queued events is unknown",
                           True))
    elif policy != "noeviction":
        out.append(Finding("maxmemory-policy", policy,
                           "when memory runs out Redis evicts keys and may silently delete "
                           "queued events; set it to noeviction", True))
    aof, save = settings.get("appendonly"), settings.get("save")
    if aof is None:
        out.append(Finding("appendonly", None,
                           "whether acknowledged events survive a restart is unknown", True))
    elif aof != "yes":
        if save == "":
            why = 'no persistence at all (save ""): a restart loses every queued event'
        elif save is None:
            why = ("without the AOF a restart loses every event acknowledged since the last "
                   "RDB snapshot, or all of them if there is none")
        else:
            why = (f"RDB snapshots only (save {save!r}): a crash loses every event "
                   "acknowledged since the last snapshot")
        out.append(Finding("appendonly", aof, why + "; set appendonly yes", True))
    else:
        fsync = settings.get("appendfsync")
        if fsync is None:
            out.append(Finding("appendfsync", None,
                               "how much a crash may lose is unknown", False))
        elif fsync == "everysec":
            out.append(Finding("appendfsync", fsync,
                               "a crash may lose about the last second of acknowledged events "
                               "(appendfsync always loses none)", False))
        elif fsync != "always":
            out.append(Finding("appendfsync", fsync,
                               "the operating system decides when the AOF reaches the disk: "
                               "a machine crash may lose the last ~30 s of acknowledged events",
                               False))
    return tuple(out)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _from_config(reply: dict[Any, Any]) -> dict[str, str | None]:
    got = {_text(k): _text(v) for k, v in reply.items()}
    return {name: got.get(name) for name in SETTINGS}


def _from_info(memory: dict[str, Any], persistence: dict[str, Any]) -> dict[str, str | None]:
    """What INFO shows of the settings: the eviction policy and whether the AOF is on."""
    settings: dict[str, str | None] = dict.fromkeys(SETTINGS)
    settings["maxmemory-policy"] = _text(memory.get("maxmemory_policy"))
    aof = persistence.get("aof_enabled")
    if aof is not None:
        settings["appendonly"] = "yes" if str(aof) == "1" else "no"
    return settings


def _targets(r: Any) -> list[tuple[str, dict[str, Any]]]:
    """(node name, keyword arguments that send a command to it) for each server to read."""
    if isinstance(r, (redis.RedisCluster, redis.asyncio.RedisCluster)):
        return [(node.name, {"target_nodes": node}) for node in r.get_primaries()]
    kw = r.connection_pool.connection_kwargs
    name = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
    return [(str(name), {})]


def _named(r: Any, name: str) -> str:
    """The node's name once it was read: through Sentinel, the primary it resolved to."""
    address = getattr(getattr(r, "connection_pool", None), "master_address", None)
    return f"{address[0]}:{address[1]}" if address else name


def _refused(exc: ResponseError) -> None:
    """Re-raise a reply that is not CONFIG or INFO being refused (a bad database index)."""
    if is_bad_database(exc):
        raise translate(exc) from exc


def _unreachable(name: str, exc: Exception) -> NodeDurability:
    """A Cluster master that is down: its settings unknown (a client must still start, with
    another seed up; ``require_durable`` refuses it, since durability cannot be shown)."""
    settings: dict[str, str | None] = dict.fromkeys(SETTINGS)
    return NodeDurability(name, settings, None, assess(settings), unreachable=str(exc))


_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)


def read(r: Any) -> list[NodeDurability]:
    """Read every server of a redis-py client (raises redis-py's errors for a lost connection,
    except on a Cluster, where a master that is down is reported unreachable)."""
    out = []
    for name, target in _targets(r):
        refused = None
        try:
            try:
                settings = _from_config(r.config_get(*SETTINGS, **target))
            except ResponseError as exc:
                _refused(exc)
                refused = str(exc)
                try:
                    settings = _from_info(r.info("memory", **target),
                                          r.info("persistence", **target))
                except ResponseError as info_exc:
                    _refused(info_exc)
                    settings = dict.fromkeys(SETTINGS)
        except _DOWN as exc:
            if not target:
                raise
            out.append(_unreachable(name, exc))
            continue
        out.append(NodeDurability(_named(r, name), settings, refused, assess(settings)))
    return out


async def read_async(r: Any) -> list[NodeDurability]:
    """read() for a redis.asyncio client."""
    out = []
    for name, target in _targets(r):
        refused = None
        try:
            try:
                settings = _from_config(await r.config_get(*SETTINGS, **target))
            except ResponseError as exc:
                _refused(exc)
                refused = str(exc)
                try:
                    settings = _from_info(await r.info("memory", **target),
                                          await r.info("persistence", **target))
                except ResponseError as info_exc:
                    _refused(info_exc)
                    settings = dict.fromkeys(SETTINGS)
        except _DOWN as exc:
            if not target:
                raise
            out.append(_unreachable(name, exc))
            continue
        out.append(NodeDurability(_named(r, name), settings, refused, assess(settings)))
    return out


_warned: set[tuple[str, str, str | None]] = set()  # (node, setting, value) told this process
_lock = threading.Lock()


def _first_time(key: tuple[str, str, str | None]) -> bool:
    with _lock:
        if key in _warned:
            return False
        _warned.add(key)
        return True


def warn_once(reports: Iterable[NodeDurability]) -> None:
    """Log each finding once per process, server and value (WARNING on logger ``homing``).

    Once, not per client: a process that opens many clients (or a CLI command)
    must not drown its log; a value changed since is told again.
    """
    for rep in reports:
        if rep.unreachable is not None:
            if _first_time((rep.node, "unreachable", None)):
                log.warning("Redis at %s could not be reached (%s): its durability settings "
                            "are unknown (%s)", rep.node, rep.unreachable, _GUIDE)
            continue
        if rep.config_refused is not None and _first_time((rep.node, "CONFIG", None)):
            log.warning("Redis at %s refused CONFIG GET (%s): its durability settings could "
                        "not all be checked; what INFO showed was used (%s)",
                        rep.node, rep.config_refused, _GUIDE)
        for f in rep.findings:
            if _first_time((rep.node, f.setting, f.value)):
                log.warning("Redis at %s: %s (%s)", rep.node, f.text(), _GUIDE)


def forget() -> None:
    """Warn again as if this process had not connected yet (for tests)."""
    with _lock:
        _warned.clear()


def require(reports: Iterable[NodeDurability]) -> None:
    """Raise NotDurableError unless every server is shown to be durable."""
    bad = [f"Redis at {rep.node}: {f.text()}" for rep in reports for f in rep.findings
           if f.fatal]
    if bad:
        unknown = any("could not be read" in line for line in bad)
        tail = " (CONFIG GET or INFO refused: durability cannot be shown)" if unknown else ""
        raise NotDurableError("durability was required and this server may lose acknowledged "
                              f"events{tail}: " + "; ".join(bad))


def summary(reports: list[NodeDurability]) -> str:
    """One line for ``homing stats``: durable or not, and why not."""
    nodes = ", ".join(rep.node for rep in reports)
    worst = [f"{rep.node}: {f.text()}" for rep in reports for f in rep.findings]
    if not worst:
        return f"durability: ok ({nodes}: noeviction, appendonly yes, appendfsync always)"
    verdict = ("ok, with a warning" if all(rep.durable for rep in reports)
               else "NOT DURABLE, acknowledged events may be lost")
    return f"durability: {verdict}: " + "; ".join(worst)
