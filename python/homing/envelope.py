"""The msgpack envelope that carries payloads and results (see docs/protocol.md).

An envelope is a msgpack map ``{"v": 1, "p": <payload>}``: any msgpack value,
bytes included (bin type), strings as str type. Lua never decodes it, so
integers keep their full 64 bits. Unknown map keys are ignored on decode so a
later version can add fields. No pickle anywhere: decoding stored bytes can
never run code.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import CorruptEnvelopeError, PayloadNotEncodableError

VERSION = 1
_packer_opts = {"use_bin_type": True, "datetime": False}


def encode(payload: Any) -> bytes:
    """Encode a payload; raise PayloadNotEncodableError for what msgpack cannot carry."""
    try:
        return msgpack.packb({"v": VERSION, "p": payload}, **_packer_opts)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadNotEncodableError(f"payload cannot be encoded as msgpack: {exc}") from exc


def decode(data: bytes) -> Any:
    """Decode an envelope; raise CorruptEnvelopeError for anything that is not one."""
    try:
        env = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise CorruptEnvelopeError(f"not msgpack ({len(data)} bytes): {exc}") from exc
    # type() and not ==: True == 1 in Python, and other clients refuse {"v": true}.
    if not isinstance(env, dict) or type(env.get("v")) is not int or env["v"] != VERSION \
            or "p" not in env:
        raise CorruptEnvelopeError(
            f"not a version {VERSION} homing envelope: {type(env).__name__} {str(env)[:80]}"
        )
    return env["p"]
