// Rules of the call layer every port keeps alike (issue 9: no drift): an
// argument name the table does not list is refused; an ms argument drops its
// fraction (a whole one refuses it; NaN and the infinities are refused by
// both); text missing or null is refused, never sent as ''; a lease token is
// an integer (a safe-integer number or a bigint), never text. Worded by the
// table (the manifest's refusals). python/tests/test_call_refusals.py pins
// Python's side, Erlang's argv_tests compare Erlang's with Python's; no Redis
// needed here.

import assert from "node:assert/strict";
import { test } from "node:test";

import { InvalidArgumentError } from "../src/index.js";
import { call } from "../src/calls.js";
import { MANIFEST } from "../src/manifest.js";

const TEXT = /** @type {Record<string, string>} */ (MANIFEST.refusals);
const BEAT = { name: "w", service: "s", pid: 1, concurrency: 1, held: 0, everyMs: 1000 };

/** @param {string} name @param {Record<string, unknown>} args the message of the refusal */
function refused(name, args) {
  try {
    call(name, "svc", args, 1000);
  } catch (exc) {
    assert.ok(exc instanceof InvalidArgumentError, String(exc));
    return exc.message;
  }
  assert.fail(`${name} ${JSON.stringify(args)} was not refused`);
}
/** @param {string} name @param {Record<string, unknown>} args */
const argv = (name, args) => call(name, "svc", args, 1000).args;

test("an argument name the table does not list is refused in the table's words, names sorted", () => {
  assert.equal(refused("dequeue", { bogus: 1 }), TEXT.unknown.replace("{what}", "dequeue").replace("{names}", "bogus"));
  assert.equal(refused("dequeue", { count: 1, colour: "red", bogus: 1 }), "dequeue takes no argument bogus, colour");
  assert.equal(refused("enqueue", { payload: 1, prority: 3 }), "enqueue takes no argument prority");
  assert.equal(refused("createTimer", { payload: 1, delayMs: 1, dueMs: 5 }), "createTimer takes no argument dueMs");
});

test("an ms argument drops its fraction; out of range or not finite, it is refused", () => {
  for (const [value, sent] of [[1.5, "1"], [0.999, "0"], [1500.7, "1500"], [-0, "0"], [2 ** 53 - 1, String(2 ** 53 - 1)]]) {
    assert.equal(argv("createTimer", { payload: 1, id: "t1", delayMs: value })[4], sent);
    assert.equal(argv("createTimer", { payload: 1, id: "t1", atMs: value })[5], sent);
  }
  for (const value of [NaN, Infinity, -Infinity, -0.5, -1, 1e300, 2 ** 53, "5", true]) {
    assert.equal(refused("createTimer", { payload: 1, id: "t1", delayMs: value }),
      `delayMs must be a finite number in [0, 2^53 - 1], got ${typeof value === "string" ? `the string "${value}"` : String(value)}`);
  }
});

test("a whole argument (lease_ms, snooze's delay_ms) refuses a fraction", () => {
  for (const value of [1500.7, 1.5, NaN, Infinity]) {
    assert.equal(refused("dequeue", { leaseMs: value }), `leaseMs must be a whole number in [0, 43200000], got ${value}`);
    assert.equal(refused("snooze", { id: "e1", token: 1, delayMs: value }), `delayMs must be a whole number in [0, 43200000], got ${value}`);
  }
});

test("text missing or null is refused, never sent as ''; left out, a default fills it", () => {
  assert.equal(refused("workerBeat", BEAT), "host must be text, got undefined");
  assert.equal(refused("workerBeat", { ...BEAT, host: null }), "host must be text, got null");
  assert.equal(refused("fail", { id: "e1", token: 1, reason: null }), "reason must be text, got null");
  assert.equal(refused("recurringPut", { name: "r", payload: 1, cron: null }), "cron must be text, got null");
  assert.equal(refused("beat", {}), "name must be 1..256 bytes of text, got undefined");
  assert.equal(argv("fail", { id: "e1", token: 1 })[2], ""); // fail's reason: the table's default
  assert.equal(argv("workerBeat", { ...BEAT, host: "h" })[2], "h");
});

// A token is what dequeue hands out (a number here), or a bigint; "5" is
// refused, as Python and Erlang refuse text (this port used to take it). 5.0
// is 5 here: the one difference, which no JavaScript value can show.
test("a lease token is an integer in [0, 2^53 - 1], a number or a bigint; text is refused", () => {
  for (const [token, sent] of [[0, "0"], [5, "5"], [5.0, "5"], [5n, "5"], [2 ** 53 - 1, "9007199254740991"],
    [2n ** 53n - 1n, "9007199254740991"]]) {
    assert.equal(argv("complete", { id: "e1", token })[3], sent);
    assert.equal(argv("start", { items: [["e1", token]] })[2], sent);
  }
  for (const token of ["5", "0005", "", 5.5, -1, -1n, 2 ** 53, 2n ** 53n, true, null, undefined, NaN, Infinity,
    Object(5), [5]]) {
    const shown = typeof token === "string" ? `the string "${token}"` : Array.isArray(token) ? "an array of 1"
      : typeof token === "object" && token !== null ? "Number" : String(token);
    const text = TEXT.token.replace("{what}", "token").replace("{value}", shown);
    assert.equal(refused("fail", { id: "e1", token }), text);
    // a list item's null field takes its default, none here: shown as undefined
    const item = token === null ? text.replace(/null$/, "undefined") : text;
    assert.equal(refused("release", { items: [["e1", token]] }), item);
    assert.equal(refused("complete", { id: "e1", token }), item); // the batch of one
  }
});
