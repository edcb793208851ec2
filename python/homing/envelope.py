"""The msgpack envelope that carries payloads and results (see docs/protocol.md).

An envelope is a msgpack map ``{"v": 1, "p": <payload>}``: any msgpack value,
bytes included (bin type), strings as str type. Lua never decodes it, so
integers keep their full 64 bits. Unknown map keys are ignored on decode so a
later version can add fields. No pickle anywhere: decoding stored bytes can
never run code.

Envelope revision 1.1 adds one optional field, ``"t"``: the W3C Trace Context
of the producer's span, a map ``{"traceparent": ..., "tracestate": ...}``
(tracestate only when non-empty), written after ``"p"``. Decoders that predate
it ignore it; a malformed one is ignored too (see ``trace_of``): a trace must
never make an event undeliverable.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

import msgpack

from .errors import CorruptEnvelopeError, PayloadNotEncodableError
from .manifest import LIMITS

VERSION = 1
# The trace context the next payloads encoded in this context carry (set only
# around a producer span, by homing.tracing): results are encoded outside it.
OUTGOING_TRACE: ContextVar[dict[str, str] | None] = ContextVar("homing_trace", default=None)
# W3C Trace Context: version 00's fields; a later version may append fields.
TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$")
MAX_TRACESTATE = 512  # W3C: 32 members; anything longer is not worth carrying
# The deepest nesting of arrays and maps a payload may have (lua/keys.json
# limits.nesting, read by both clients): deeper payloads end in a
# RecursionError somewhere (here, msgpack, json, the JavaScript decoder), so
# they are refused where it is cheap, with the error the caller expects.
MAX_NESTING: int = LIMITS["nesting"]
_packer_opts = {"use_bin_type": True, "datetime": False}
# The bytes that open a msgpack array or map: a message holding no more of them
# than the limit allows cannot be nested too deep, which spares most decodes the walk.
_CONTAINER_BYTES = bytes([*range(0x80, 0xA0), *range(0xDC, 0xE0)])


# Values that hold nothing to check: a payload of these, or a map with str keys
# and values of these, skips the walk (exact types: a subclass takes the walk).
_FLAT = frozenset({str, int, float, bool, bytes, type(None)})


def _check(payload: Any) -> None:
    """Refuse what msgpack would encode but no client could read back, and deep nesting.

    msgpack packs a tuple key as an array, which no decoder can use as a key
    (and JavaScript objects take only text and numbers), and it packs ExtType
    values the protocol does not define. Refused here, before anything is
    written, rather than dead-lettered later as a corrupt envelope. The walk
    keeps its own stack: a payload nested 10,000 levels (or one that contains
    itself) is refused by the nesting limit, not by a RecursionError.

    The common payload, a scalar or a flat map of scalars with text keys, is
    taken without the walk: the walk was most of a bulk enqueue's client time
    per event.
    """
    t = type(payload)
    if t in _FLAT:
        return
    if t is dict and all(type(k) is str for k in payload) \
            and all(type(v) in _FLAT for v in payload.values()):
        return
    stack: list[tuple[Any, int]] = [(payload, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
            for key in value:
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise PayloadNotEncodableError(
                        f"map key {key!r:.80} of type {type(key).__name__}: "
                        "map keys must be str or int")
        elif isinstance(value, msgpack.ExtType):  # before tuple: ExtType is a namedtuple
            raise PayloadNotEncodableError("msgpack extension types are not part of the protocol")
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth == MAX_NESTING:
            raise PayloadNotEncodableError(
                f"payload is nested deeper than {MAX_NESTING} levels of arrays and maps")
        stack.extend((child, depth + 1) for child in children)


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether value holds arrays and maps nested more than ``limit`` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth == limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return False


def _trace_field(trace: dict[str, str] | None) -> dict[str, str] | None:
    """The ``t`` field for a carrier: only a valid traceparent travels, in a fixed order."""
    if not trace or not isinstance(trace.get("traceparent"), str) \
            or not TRACEPARENT_RE.match(trace["traceparent"]):
        return None
    out = {"traceparent": trace["traceparent"]}
    state = trace.get("tracestate")
    if isinstance(state, str) and state and len(state) <= MAX_TRACESTATE:
        out["tracestate"] = state
    return out


def encode(payload: Any, trace: dict[str, str] | None = None) -> bytes:
    """Encode a payload; raise PayloadNotEncodableError for what msgpack cannot carry.

    ``trace`` (a W3C carrier: traceparent, tracestate) defaults to the producer
    span's context in ``OUTGOING_TRACE``; without one the envelope is the
    revision 1.0 map, byte for byte.
    """
    _check(payload)
    env: dict[str, Any] = {"v": VERSION, "p": payload}
    t = _trace_field(OUTGOING_TRACE.get() if trace is None else trace)
    if t is not None:
        env["t"] = t
    try:
        return msgpack.packb(env, **_packer_opts)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadNotEncodableError(f"payload cannot be encoded as msgpack: {exc}") from exc


def decode(data: bytes) -> Any:
    """Decode an envelope; raise CorruptEnvelopeError for anything that is not one."""
    return _decode_map(data)["p"]


def trace_of(data: bytes) -> dict[str, str] | None:
    """The trace context an envelope carries (field ``t``), or None.

    None for an envelope without one (revision 1.0), and for a malformed one: a
    trace context is advice, never a reason to refuse an event. Raises
    CorruptEnvelopeError only when the envelope itself is not one.
    """
    t = _decode_map(data).get("t")
    if not isinstance(t, dict):
        return None
    return _trace_field({k: v for k, v in t.items() if isinstance(k, str)})


def _decode_map(data: bytes) -> dict[Any, Any]:
    """The envelope map, checked: version 1 with a payload."""
    try:
        env = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        why = str(exc) or type(exc).__name__  # msgpack's StackError (too deep) says nothing
        raise CorruptEnvelopeError(f"not msgpack ({len(data)} bytes): {why}") from exc
    # The envelope map is one level more than its payload. Checked before the
    # message below, whose str() of a deep value would recurse.
    if len(data) - len(data.translate(None, _CONTAINER_BYTES)) > MAX_NESTING + 1 \
            and nesting_exceeds(env, MAX_NESTING + 1):
        raise CorruptEnvelopeError(
            f"payload nested deeper than the limit of {MAX_NESTING} levels of arrays and "
            f"maps ({len(data)} bytes)")
    # type() and not ==: True == 1 in Python, and other clients refuse {"v": true}.
    if not isinstance(env, dict) or type(env.get("v")) is not int or env["v"] != VERSION \
            or "p" not in env:
        raise CorruptEnvelopeError(
            f"not a version {VERSION} homing envelope: {type(env).__name__} {str(env)[:80]}"
        )
    return env
