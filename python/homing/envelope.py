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


def _check_keys(value: Any) -> None:
    """Refuse what msgpack would encode but no client could read back.

    msgpack packs a tuple key as an array, which no decoder can use as a key
    (and JavaScript objects take only text and numbers), and it packs ExtType
    values the protocol does not define. Refused here, before anything is
    written, rather than dead-lettered later as a corrupt envelope.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise PayloadNotEncodableError(
                    f"map key {key!r} of type {type(key).__name__}: map keys must be str or int")
            _check_keys(item)
    elif isinstance(value, msgpack.ExtType):  # before tuple: ExtType is a namedtuple
        raise PayloadNotEncodableError("msgpack extension types are not part of the protocol")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_keys(item)


def encode(payload: Any) -> bytes:
    """Encode a payload; raise PayloadNotEncodableError for what msgpack cannot carry."""
    _check_keys(payload)
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
