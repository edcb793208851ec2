"""Redis URLs homing takes beyond redis-py's own: several hosts, and Sentinel.

redis-py parses one host per URL. homing also takes

- ``redis://h1:p1,h2:p2/0`` (or ``rediss://``): the seed nodes of a Cluster,
  tried in turn, so that a client still starts while one seed is down;
- ``redis+sentinel://[user:password@]h1:p1[,h2:p2...]/<master-name>[/db]``
  (``rediss+sentinel://`` for TLS, to the sentinels and the data nodes
  alike), with ``?sentinel_password=...`` when the sentinels themselves
  require a password. The user and password are the data nodes' (the
  primary's); the JavaScript client reads the same URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from .errors import InvalidArgumentError

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
REDIS_PORT = 6379


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: list[tuple[str, int]]
    master: str
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None
    tls: bool


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme, userinfo, hosts, rest): rest is the path and query, from the first '/' or '?'."""
    scheme, sep, tail = url.partition("://")
    if not sep:
        raise InvalidArgumentError(f"invalid Redis URL {url!r}: no scheme (redis://...)")
    cut = min((i for i in (tail.find("/"), tail.find("?")) if i >= 0), default=len(tail))
    netloc, rest = tail[:cut], tail[cut:]
    userinfo, at, hosts = netloc.rpartition("@")
    return scheme.lower(), userinfo + at, hosts, rest


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port``."""
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise InvalidArgumentError(f"a host is missing in {text!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise InvalidArgumentError(f"the port of {text!r} is not a number") from None
    if not 0 < port < 65536:
        raise InvalidArgumentError(f"the port of {text!r} is out of range")
    return host, port


def seed_urls(url: str) -> list[str]:
    """One redis-py URL per host of a ``redis://h1:p1,h2:p2/0`` URL (a list of one otherwise)."""
    scheme, userinfo, hosts, rest = _split(url)
    if "," not in hosts:
        return [url]
    out = []
    for part in hosts.split(","):
        host, port = _host_port(part.strip(), REDIS_PORT)
        shown = f"[{host}]" if ":" in host else host
        out.append(f"{scheme}://{userinfo}{shown}:{port}{rest}")
    return out


def parse_sentinel(url: str) -> SentinelUrl:
    """Parse a ``redis+sentinel://`` URL; InvalidArgumentError for anything malformed."""
    scheme, userinfo, hosts, rest = _split(url)
    if scheme not in SENTINEL_SCHEMES:
        raise InvalidArgumentError(f"not a Sentinel URL: {scheme}://")
    path, _, query = rest.partition("?")
    parts = [p for p in path.split("/") if p]
    if not 1 <= len(parts) <= 2:
        raise InvalidArgumentError(
            "a Sentinel URL names the master after the hosts: "
            "redis+sentinel://host:26379[,host:port...]/<master-name>[/db]")
    try:
        db = int(parts[1]) if len(parts) == 2 else 0
    except ValueError:
        raise InvalidArgumentError(f"the database of a Sentinel URL is a number, got "
                                   f"{parts[1]!r}") from None
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"sentinel_password"})
    if unknown:
        raise InvalidArgumentError(f"unknown option(s) in a Sentinel URL: {', '.join(unknown)} "
                                   "(only sentinel_password)")
    user, colon, password = userinfo.rstrip("@").partition(":")
    sentinels = [_host_port(h.strip(), SENTINEL_PORT) for h in hosts.split(",")]
    return SentinelUrl(
        sentinels=sentinels, master=unquote(parts[0]), db=db,
        username=unquote(user) or None, password=unquote(password) if colon else None,
        sentinel_password=options.get("sentinel_password", [None])[-1],
        tls=scheme == "rediss+sentinel")
