"""Reading homing's stored values directly, for the few readers that do not go
through a script (the dashboard's event view and lag, ``homing services``).

The format is the Lua's (lua/include/record.lua and fresh.lua, docs/protocol.md
section 5); this module is its one Python reader, so the dashboard and the CLI
cannot drift apart. An event enqueued ready and never delivered has no record
in ``meta``: its ``data`` value is ``#<created_ms>#`` then its envelope, and its
first lease writes the record.
"""

from __future__ import annotations

import re

_FRESH = re.compile(rb"^#(\d+)#")


def _b(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw


def data_envelope(raw: bytes | str | None) -> tuple[bytes | None, int | None]:
    """A data value as its envelope and the creation time its fresh prefix carries
    (None when it has none: an event enqueued with a priority, in a group or as a
    timer, whose record holds its creation time)."""
    if raw is None:
        return None, None
    b = _b(raw)
    m = _FRESH.match(b)
    if m is None:
        return b, None
    return b[m.end():], int(m.group(1))


def record_fields(raw: bytes | str | None) -> list[str]:
    """A stored record split into its fields ('status|attempt|token|created_ms|...');
    [] when absent."""
    if raw is None:
        return []
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).split("|")


def created_ms(record: bytes | str | None, data: bytes | str | None) -> int | None:
    """When an event was created: its record's created_ms, else its fresh data value's
    prefix; None when neither says (no such event, or unreadable)."""
    fields = record_fields(record)
    if fields:
        return int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None
    return data_envelope(data)[1]
