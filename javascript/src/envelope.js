// The msgpack envelope that carries payloads and results: the map
// {"v": 1, "p": <payload>}, byte for byte what the Python client writes.
//
// Lua never decodes an envelope, so its bytes are the contract between the
// clients. Encoding (payload -> msgpack), chosen to match Python's
// msgpack.packb(use_bin_type=True, datetime=False):
//   null, undefined  -> nil
//   boolean          -> true / false
//   string           -> str (fixstr/str8/16/32); a lone surrogate is refused,
//                       as Python refuses one
//   number           -> the smallest int form when Number.isSafeInteger,
//                       else float64 (fractions, NaN, +-Infinity, and
//                       integers beyond 2^53 that a number cannot hold exactly)
//   bigint           -> the smallest int form when it fits 53 bits, else
//                       int64 / uint64; outside [-2^63, 2^64-1] it is refused
//   Uint8Array       -> bin (Buffer is a Uint8Array)
//   Array            -> array
//   plain object     -> map with string keys, in insertion order (a symbol
//                       key, which msgpack would drop without a word, is
//                       refused: map keys are text, as in Python's check)
//   anything else (Map, Set, Date, class instances, other typed arrays,
//   functions, symbols) is refused with PayloadNotEncodableError, as Python
//   refuses sets, datetimes and objects; arrays and maps nested deeper than
//   lua/keys.json limits.nesting (100 levels inside the payload; [[1]] is 2)
//   are refused too, as in Python, before the recursion could overflow.
// Decoding: str -> string (invalid UTF-8 is a CorruptEnvelopeError, as in
// Python), bin -> Uint8Array, int -> number when it is a safe integer and
// bigint otherwise, float -> number, map -> plain object (numeric keys
// become strings; a map key that is neither string nor number is refused),
// ext -1 (timestamp) -> Date, other ext -> ExtData. Unknown envelope fields
// are ignored so a later version can add some. The version must be the
// integer 1 (not true, not the float 1.0, as Python checks). Nothing here can
// run code. A payload nested deeper than the limit is a CorruptEnvelopeError
// on decode too (the decoder keeps its own stack, so it cannot overflow).
//
// Envelope revision 1.1 adds one optional field after "p": "t", the W3C
// Trace Context of the producer's span ({traceparent, tracestate}; tracestate
// only when non-empty). Older decoders ignore it; a malformed one is ignored
// here too (traceOf gives null): a trace must never make an event undeliverable.

import { isUtf8 } from "node:buffer";

import { Decoder, DecodeError, Encoder } from "@msgpack/msgpack";

import { CorruptEnvelopeError, PayloadNotEncodableError } from "./errors.js";
import { MAX_NESTING } from "./manifest.js";

export const VERSION = 1;
// W3C Trace Context: version 00's fields; a later version may append fields.
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$/;
const MAX_TRACESTATE = 512;

/** @typedef {{traceparent: string, tracestate?: string}} TraceCarrier */

/**
 * The trace context the next payloads encoded carry: set by tracing.js only
 * around the synchronous part of a producer call (where the envelopes are
 * built), so results and other envelopes never pick it up.
 * @type {{current: TraceCarrier | null}}
 */
export const outgoingTrace = { current: null };

/**
 * The t field for a carrier: only a valid traceparent travels, in a fixed order.
 * @param {unknown} trace
 * @returns {TraceCarrier | null}
 */
function traceField(trace) {
  if (typeof trace !== "object" || trace === null) return null;
  const t = /** @type {Record<string, unknown>} */ (trace);
  if (typeof t.traceparent !== "string" || !TRACEPARENT.test(t.traceparent)) return null;
  /** @type {TraceCarrier} */
  const out = { traceparent: t.traceparent };
  if (typeof t.tracestate === "string" && t.tracestate !== "" && t.tracestate.length <= MAX_TRACESTATE) {
    out.tracestate = t.tracestate;
  }
  return out;
}

const MIN_I64 = -(2n ** 63n);
const MAX_U64 = 2n ** 64n - 1n;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
// The library counts the envelope map as depth 1 and the payload as depth 2:
// a container of the payload's level k is at depth k + 1.
const DEEPEST_CONTAINER = MAX_NESTING + 1;
const TOO_DEEP = `payload is nested deeper than the limit of ${MAX_NESTING} levels of arrays and maps`;

/**
 * Whether v is an array or map the encoder walks into.
 * @param {unknown} v
 */
const isContainer = (v) =>
  typeof v === "object" && v !== null && !(v instanceof Uint8Array);

/** @param {unknown} v */
function describe(v) {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  return Object.getPrototypeOf(v)?.constructor?.name ?? "object";
}

// The library types these hooks as private; they are stable in practice, and
// the byte-exact vectors in test/envelope.test.js catch any drift.
const BaseEncoder = /** @type {any} */ (Encoder);
const BaseDecoder = /** @type {any} */ (Decoder);

/**
 * The library's encoder, held to the types Python can read back the same.
 * It overrides two of the library's hooks.
 */
class EnvelopeEncoder extends BaseEncoder {
  /** @param {import("@msgpack/msgpack").EncoderOptions} options */
  constructor(options) {
    super(options);
  }

  /**
   * @param {unknown} object
   * @param {number} depth
   */
  doEncode(object, depth) {
    switch (typeof object) {
      case "bigint":
        if (object >= MIN_SAFE && object <= MAX_SAFE) {
          return super.doEncode(Number(object), depth);
        }
        if (object < MIN_I64 || object > MAX_U64) {
          throw new RangeError(`integer ${object} is outside the 64-bit range`);
        }
        return this.encodeBigInt64(object);
      case "object":
        // Checked before the library recurses: a payload nested 10,000 levels
        // (or one that contains itself) ends here, not in a stack overflow.
        if (depth > DEEPEST_CONTAINER && isContainer(object)) throw new RangeError(TOO_DEEP);
        if (object !== null && !Array.isArray(object) && !(object instanceof Uint8Array)) {
          const proto = Object.getPrototypeOf(object);
          if (proto !== Object.prototype && proto !== null) {
            throw new TypeError(`can not serialize ${describe(object)} object`);
          }
          // msgpack would drop a symbol key without a word, as JSON does.
          for (const key of Object.getOwnPropertySymbols(object)) {
            if (Object.prototype.propertyIsEnumerable.call(object, key)) {
              throw new TypeError(`map key ${String(key)} of type symbol: map keys must be strings`);
            }
          }
        }
        break;
      case "function":
      case "symbol":
        throw new TypeError(`can not serialize a ${typeof object}`);
      default:
        break;
    }
    return super.doEncode(object, depth);
  }

  /** @param {string} s */
  encodeString(s) {
    if (!s.isWellFormed()) {
      throw new TypeError("string holds a lone surrogate, which UTF-8 cannot carry");
    }
    return super.encodeString(s);
  }
}

/** The library's decoder, with Python's integer and UTF-8 rules. */
class EnvelopeDecoder extends BaseDecoder {
  /**
   * Set when the envelope map's "v" was a float: 1.0 decodes to the number 1,
   * but the version is the integer 1, and Python (which can tell) refuses it.
   */
  floatVersion = false;
  /** The most containers open at once in this decode (the envelope map counts). */
  deepest = 0;

  /** @param {import("@msgpack/msgpack").DecoderOptions} options */
  constructor(options) {
    super(options);
  }

  // The library decodes with a stack of its own, not by recursion; a
  // container opened below the limit is refused as it opens.
  /** @param {number} size */
  pushMapState(size) {
    this.#open();
    super.pushMapState(size);
  }

  /** @param {number} size */
  pushArrayState(size) {
    this.#open();
    super.pushArrayState(size);
  }

  #open() {
    const open = this.stack.length;
    if (open >= DEEPEST_CONTAINER) throw new DecodeError(TOO_DEEP);
    if (open + 1 > this.deepest) this.deepest = open + 1;
  }

  readF32() {
    this.#noteVersionFloat();
    return super.readF32();
  }

  readF64() {
    this.#noteVersionFloat();
    return super.readF64();
  }

  // A value read while the only open container is the top-level map, under
  // the key "v", is the envelope's version.
  #noteVersionFloat() {
    if (this.stack.length === 1) {
      const state = this.stack.top();
      if (state.type === "map_value" && state.key === "v") this.floatVersion = true;
    }
  }

  readU64AsBigInt() {
    const v = super.readU64AsBigInt();
    return v <= MAX_SAFE ? Number(v) : v;
  }

  readI64AsBigInt() {
    const v = super.readI64AsBigInt();
    return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
  }

  /**
   * @param {number} byteLength
   * @param {number} headerOffset
   */
  decodeUtf8String(byteLength, headerOffset) {
    const start = this.pos + headerOffset;
    const bytes = /** @type {Uint8Array} */ (this.bytes);
    // A short input is the library's to report (it needs more data).
    if (start + byteLength <= bytes.byteLength && !isUtf8(bytes.subarray(start, start + byteLength))) {
      throw new DecodeError(`string at byte ${start} is not valid UTF-8`);
    }
    return super.decodeUtf8String(byteLength, headerOffset);
  }
}

/** @param {unknown} key */
function mapKey(key) {
  if (typeof key === "string" || typeof key === "number") return key;
  if (typeof key === "bigint") return String(key);
  throw new DecodeError(`a map key of type ${describe(key)} cannot be an object key`);
}

/**
 * A decoded map (not a Date, ExtData or bytes).
 * @param {unknown} v
 */
const isPlainMap = (v) =>
  typeof v === "object" && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v));

/**
 * Whether a decoded value holds an (empty) array or map below the limit: the
 * library opens no stack state for an empty one, so only a walk sees it. Run
 * only when a decode reached the limit. No recursion.
 * @param {unknown} root the envelope map (depth 1)
 */
function tooDeep(root) {
  /** @type {[unknown, number][]} */
  const stack = [[root, 1]];
  while (stack.length) {
    const [v, depth] = /** @type {[unknown, number]} */ (stack.pop());
    if (depth > DEEPEST_CONTAINER) return true;
    for (const child of Array.isArray(v) ? v : Object.values(/** @type {object} */ (v))) {
      if (Array.isArray(child) || isPlainMap(child)) stack.push([child, depth + 1]);
    }
  }
  return false;
}

// Scalars inside the deepest container allowed are one level further.
const encoder = new EnvelopeEncoder({ useBigInt64: false, maxDepth: DEEPEST_CONTAINER + 1 });
const decoder = new EnvelopeDecoder({ useBigInt64: true, mapKeyConverter: mapKey });

/**
 * Encode a payload as an envelope.
 * @param {unknown} payload
 * @param {TraceCarrier | null} [trace] a W3C carrier for field t; by default the
 *   producer span's (outgoingTrace); null or none: the revision 1.0 map, byte for byte
 * @returns {Buffer} the envelope's bytes
 * @throws {PayloadNotEncodableError} for what msgpack (as Python reads it) cannot carry
 */
export function encode(payload, trace) {
  let bytes;
  const t = traceField(trace === undefined ? outgoingTrace.current : trace);
  try {
    bytes = encoder.encode(t ? { v: VERSION, p: payload, t } : { v: VERSION, p: payload });
  } catch (exc) {
    const msg = exc instanceof Error ? exc.message : String(exc);
    throw new PayloadNotEncodableError(`payload cannot be encoded as msgpack: ${msg}`, {
      cause: exc,
    });
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decode an envelope and return its payload.
 * @param {Uint8Array} data
 * @returns {unknown}
 * @throws {CorruptEnvelopeError} for anything that is not a version 1 envelope
 */
export function decode(data) {
  return decodeMap(data).p;
}

/**
 * The trace context an envelope carries (field t), or null: none for an
 * envelope without one (revision 1.0) and for a malformed one.
 * @param {Uint8Array} data
 * @returns {TraceCarrier | null}
 * @throws {CorruptEnvelopeError} only when the envelope itself is not one
 */
export function traceOf(data) {
  return traceField(decodeMap(data).t);
}

/**
 * The envelope map, checked: version 1 with a payload.
 * @param {Uint8Array} data
 * @returns {any}
 */
function decodeMap(data) {
  /** @type {any} */
  let env;
  decoder.floatVersion = false;
  decoder.deepest = 0;
  try {
    env = decoder.decode(data);
  } catch (exc) {
    const msg = exc instanceof Error ? exc.message : String(exc);
    if (msg === TOO_DEEP) throw new CorruptEnvelopeError(`${TOO_DEEP} (${data.length} bytes)`, { cause: exc });
    throw new CorruptEnvelopeError(`not msgpack (${data.length} bytes): ${msg}`, { cause: exc });
  }
  if (decoder.deepest >= DEEPEST_CONTAINER && tooDeep(env)) {
    throw new CorruptEnvelopeError(`${TOO_DEEP} (${data.length} bytes)`);
  }
  const plain =
    typeof env === "object" &&
    env !== null &&
    Object.getPrototypeOf(env) === Object.prototype;
  if (!plain || env.v !== VERSION || decoder.floatVersion || !Object.hasOwn(env, "p")) {
    let shown;
    try {
      shown = JSON.stringify(env, (_, v) => (typeof v === "bigint" ? String(v) : v));
    } catch {
      shown = String(env);
    }
    throw new CorruptEnvelopeError(
      `not a version ${VERSION} homing envelope: ${describe(env)} ${String(shown).slice(0, 80)}`,
    );
  }
  return env;
}
