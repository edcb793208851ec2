// The flattened Lua manifest that every homing client loads, and the key
// layout it defines.
//
// All queue semantics live in the scripts of lua/; lua/build.py flattens them
// into manifest.json at the package root (a byte-for-byte copy of the one the
// Python package ships, checked by a test). This module only reads it: script
// sources and sha1s, the ordered key names each script takes, the schema
// version, the name patterns, the status letters, the policy table, the limits
// and the error-reply format, all from lua/keys.json. It is the one place
// where key names are made, as python/homing/manifest.py is for Python.

import { readFileSync } from "node:fs";

import { InvalidNameError } from "./errors.js";

/**
 * @typedef {object} Script one operation of the manifest
 * @property {string} name
 * @property {number} version
 * @property {string} sha1 of the flattened source, for EVALSHA
 * @property {string} source the flattened Lua source, for EVAL after NOSCRIPT
 * @property {readonly string[]} keys the key names the script takes, in KEYS order
 * @property {string} memory its memory class: grows (refused by a full Redis),
 * level, none or checked (lua/build.py)
 */

// Read once at import: a JSON import attribute would need Node 20.10+ and
// reading the file works on every Node 20.
/** The whole manifest, as lua/build.py wrote it. */
export const MANIFEST = JSON.parse(
  readFileSync(new URL("../manifest.json", import.meta.url), "utf8"),
);
export const LAYOUT = MANIFEST.layout;
/** @type {number} */
export const SCHEMA = LAYOUT.schema;
/** @type {string} */
export const DEFAULT_PREFIX = LAYOUT.default_prefix;
/** @type {number} */
export const DEFAULT_MAX_PAYLOAD = LAYOUT.default_max_payload_bytes;
/** @type {Readonly<Record<string, number>>} */
export const POLICY_DEFAULTS = Object.freeze({ ...LAYOUT.policy_defaults });

/**
 * The policy fields with their range: default, min, max, whole (lua/keys.json policy).
 * @type {Readonly<Record<string, {default: number, min: number, max: number, whole: boolean, doc: string}>>}
 */
export const POLICY = Object.freeze({ ...LAYOUT.policy });
/** The names of the global keys (`<prefix>:<name>`): services, hints, daemons. */
export const GLOBAL_KEYS = Object.freeze(new Set(Object.keys(LAYOUT.global_keys)));
/**
 * Status name -> the letter of a meta record (lua/keys.json statuses: ready -> r, reserved -> v...).
 * @type {Readonly<Record<string, string>>}
 */
export const STATUSES = Object.freeze({ ...LAYOUT.statuses });
/**
 * Status letter of a record -> its name, as keys.json defines them (r -> ready, v -> reserved...).
 * @type {Readonly<Record<string, string>>}
 */
export const STATUS_NAMES = Object.freeze(
  Object.fromEntries(Object.entries(LAYOUT.statuses).map(([name, letter]) => [letter, name])),
);
/**
 * The limits of lua/keys.json: batch (items per call), reason_bytes (a fail
 * reason is cut there), nesting (levels of arrays and maps in a payload).
 * @type {Readonly<{batch: number, reason_bytes: number, nesting: number}>}
 */
export const LIMITS = Object.freeze({ ...LAYOUT.limits });
/** Most items one batch call takes. */
export const MAX_BATCH = LIMITS.batch;
/** Most levels of arrays and maps a payload nests. */
export const MAX_NESTING = LIMITS.nesting;
/** Most bytes of a fail reason that are kept (fail.lua cuts the rest). */
export const MAX_REASON = LIMITS.reason_bytes;
/**
 * A script's error reply (lua/keys.json error_reply), matched against the whole
 * reply text: group 1 is the code of lua/errors.json, group 2 the message.
 * @type {RegExp}
 */
export const ERROR_REPLY_RE = new RegExp(LAYOUT.error_reply.pattern);

/** @type {Readonly<Record<string, Script>>} */
export const SCRIPTS = Object.freeze(
  Object.fromEntries(
    Object.entries(MANIFEST.scripts).map(([name, s]) => [
      name,
      Object.freeze({
        name,
        version: s.version,
        sha1: s.sha1,
        source: s.source,
        keys: Object.freeze([...s.keys]),
        memory: s.memory ?? "level",
      }),
    ]),
  ),
);

// JavaScript's `$` (without the m flag) matches only at the very end, so a
// trailing newline is refused, as the pattern intends.
const SERVICE_RE = new RegExp(LAYOUT.service_pattern);
const ID_RE = new RegExp(LAYOUT.id_pattern);
const PREFIX_RE = new RegExp(LAYOUT.prefix_pattern);

/** @param {unknown} v */
function show(v) {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/**
 * A name outside its layout pattern, refused in the table's words (the manifest's
 * refusals: the same text in every port).
 * @param {string} what @param {unknown} v @param {"service" | "id"} kind
 */
const invalidName = (what, v, kind) => new InvalidNameError(/** @type {string} */ (MANIFEST.refusals.pattern)
  .replace("{what}", () => what).replace("{value}", () => show(v)).replace("{pattern}", () => LAYOUT[`${kind}_pattern`]));

/**
 * Refuse a service name that would break the key layout: `{`, `}` would
 * change the hash tag and `:` the key structure, so only the documented
 * pattern is accepted.
 * @param {unknown} service
 * @returns {string}
 */
export function checkService(service) {
  if (typeof service !== "string" || !SERVICE_RE.test(service)) throw invalidName("service name", service, "service");
  return service;
}

/**
 * Refuse an event id outside the documented pattern (same as service names).
 * @param {unknown} eventId
 * @returns {string}
 */
export function checkId(eventId) {
  if (typeof eventId !== "string" || !ID_RE.test(eventId)) throw invalidName("event id", eventId, "id");
  return eventId;
}

/**
 * Refuse a key prefix that could collide with the hash tag or key structure.
 * @param {unknown} prefix
 * @returns {string}
 */
export function checkPrefix(prefix) {
  if (typeof prefix !== "string" || !PREFIX_RE.test(prefix)) {
    throw new InvalidNameError(
      `invalid key prefix ${show(prefix)}: use 1-64 of [A-Za-z0-9_.-] (pattern ${LAYOUT.prefix_pattern})`,
    );
  }
  return prefix;
}

/**
 * `<prefix>:{<service>}:<name>`: the hash tag keeps a service in one slot.
 * @param {string} prefix
 * @param {string} service
 * @param {string} name
 */
export function serviceKey(prefix, service, name) {
  return `${prefix}:{${service}}:${name}`;
}

/**
 * `<prefix>:<name>` for the global keys: the registry and hints (plain
 * commands) and the daemons' beats (the beat script).
 * @param {string} prefix
 * @param {string} name
 */
export function globalKey(prefix, name) {
  return `${prefix}:${name}`;
}
