"""The flattened Lua manifest that both clients load, and the key layout it defines.

All queue semantics live in the scripts of ``lua/``; ``lua/build.py`` flattens
them into ``manifest.json`` beside this file. This module only reads it:
script sources and sha1s, the ordered key names each script takes, the schema
version, the name patterns, the status letters, the policy table, the limits
and the error-reply format, all from ``lua/keys.json``. Like arq's constants
module, it is the one place where key names are made.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .errors import InvalidNameError


@dataclass(frozen=True)
class Script:
    """One operation: its flattened source, sha1 and the key names it takes in order."""

    name: str
    version: int
    sha1: str
    source: str
    keys: tuple[str, ...]
    memory: str = "level"


def _load() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("manifest.json").read_text(encoding="utf-8")
    return json.loads(text)


MANIFEST: dict[str, Any] = _load()
LAYOUT: dict[str, Any] = MANIFEST["layout"]
SCHEMA: int = LAYOUT["schema"]
DEFAULT_PREFIX: str = LAYOUT["default_prefix"]
DEFAULT_MAX_PAYLOAD: int = LAYOUT["default_max_payload_bytes"]
POLICY_DEFAULTS: dict[str, float] = LAYOUT["policy_defaults"]
SCRIPTS: dict[str, Script] = {
    name: Script(name, s["version"], s["sha1"], s["source"], tuple(s["keys"]), s["memory"])
    for name, s in MANIFEST["scripts"].items()
}
_SERVICE_RE = re.compile(LAYOUT["service_pattern"])
_ID_RE = re.compile(LAYOUT["id_pattern"])
_PREFIX_RE = re.compile(LAYOUT["prefix_pattern"])
GLOBAL_KEYS: frozenset[str] = frozenset(LAYOUT["global_keys"])
# status name -> letter of the meta record (keys.json statuses), and the reverse
STATUSES: dict[str, str] = LAYOUT["statuses"]
STATUS_NAMES: dict[str, str] = {v: k for k, v in STATUSES.items()}
# The policy fields with their range: default, min, max, whole (keys.json policy).
POLICY: dict[str, dict[str, Any]] = LAYOUT["policy"]
# A script's error reply (keys.json error_reply): match the whole reply text;
# group 1 is the code of lua/errors.json, group 2 the message.
ERROR_REPLY_RE: re.Pattern[str] = re.compile(LAYOUT["error_reply"]["pattern"])
LIMITS: dict[str, int] = LAYOUT["limits"]  # batch, reason_bytes, nesting (lua/keys.json)
MAX_BATCH: int = LIMITS["batch"]
MAX_REASON: int = LIMITS["reason_bytes"]


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidNameError(MANIFEST["refusals"]["pattern"].format(
            what=what, value=repr(value), pattern=pattern.pattern))
    return value


def check_service(service: str) -> str:
    """Refuse a service name that would break the key layout.

    ``{``, ``}`` would change the hash tag and ``:`` the key structure (the
    original system's parser broke on ``:``), so only the documented pattern
    is accepted, matched against the whole name.
    """
    return _check(service, _SERVICE_RE, "service name")


def check_id(event_id: str) -> str:
    """Refuse an event id outside the documented pattern (the same as service names)."""
    return _check(event_id, _ID_RE, "event id")


def check_prefix(prefix: str) -> str:
    """Refuse a key prefix that could collide with the hash tag or key structure."""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise InvalidNameError(f"invalid key prefix {prefix!r}: use 1-64 of [A-Za-z0-9_.-] "
                               f"(pattern {_PREFIX_RE.pattern})")
    return prefix


def service_key(prefix: str, service: str, name: str) -> str:
    """``<prefix>:{<service>}:<name>``: the hash tag keeps a service in one slot."""
    return f"{prefix}:{{{service}}}:{name}"


def global_key(prefix: str, name: str) -> str:
    """``<prefix>:<name>`` for the registry and hints, which no script touches."""
    return f"{prefix}:{name}"
