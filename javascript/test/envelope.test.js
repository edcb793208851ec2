// The envelope's bytes are the contract between the clients: these vectors
// were produced by Python's msgpack.packb({"v": 1, "p": p}, use_bin_type=True),
// and a live cross-check runs against Python's msgpack when it is installed.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

import { ExtData } from "@msgpack/msgpack";

import { decode, encode } from "../src/envelope.js";
import { CorruptEnvelopeError, PayloadNotEncodableError } from "../src/errors.js";

/** [payload, hex of Python's envelope] */
const VECTORS = [
  [1, "82a17601a17001"],
  [-1, "82a17601a170ff"],
  [-33, "82a17601a170d0df"],
  [255, "82a17601a170ccff"],
  [2 ** 31, "82a17601a170ce80000000"],
  [-(2 ** 31) - 1, "82a17601a170d3ffffffff7fffffff"],
  [2 ** 40, "82a17601a170cf0000010000000000"],
  [-(2 ** 40), "82a17601a170d3ffffff0000000000"],
  [2n ** 63n, "82a17601a170cf8000000000000000"],
  [2n ** 64n - 1n, "82a17601a170cfffffffffffffffff"],
  [-(2n ** 63n), "82a17601a170d38000000000000000"],
  [1.5, "82a17601a170cb3ff8000000000000"],
  ["é".repeat(20), `82a17601a170d928${"c3a9".repeat(20)}`],
  ["x".repeat(40), `82a17601a170d928${"78".repeat(40)}`],
  [Buffer.from([0, 255]), "82a17601a170c40200ff"],
  [{ b: 1, a: [1, 2, { z: null }] }, "82a17601a17082a16201a16193010281a17ac0"],
  [true, "82a17601a170c3"],
  [null, "82a17601a170c0"],
];

test("encoding matches Python's bytes, and decoding gives the value back", () => {
  for (const [payload, hex] of VECTORS) {
    assert.equal(encode(payload).toString("hex"), hex, `encode ${String(payload)}`);
    assert.deepEqual(decode(Buffer.from(hex, "hex")), payload);
  }
});

test("integers: safe ones are numbers, the rest bigints; small bigints encode small", () => {
  assert.equal(encode(5n).toString("hex"), encode(5).toString("hex"));
  assert.equal(decode(encode(2 ** 53 - 1)), 2 ** 53 - 1);
  assert.equal(decode(encode(2n ** 53n)), 2n ** 53n);
  assert.equal(decode(encode(-(2n ** 53n))), -(2n ** 53n));
  assert.equal(typeof decode(Buffer.from("82a17601a170cf0000000000000001", "hex")), "number");
  // A number that is not a safe integer is a float, as a JavaScript number is.
  assert.equal(encode(2 ** 53).toString("hex"), "82a17601a170cb4340000000000000");
});

test("what Python cannot read back the same is refused", () => {
  for (const p of [2n ** 64n, -(2n ** 63n) - 1n, new Date(0), new Map(), new Set(), () => 1,
    Symbol("x"), "\udc80", new Float64Array(1), new (class Point {})()]) {
    assert.throws(() => encode(p), PayloadNotEncodableError);
  }
  let deep = /** @type {any} */ (0);
  for (let i = 0; i < 100; i++) deep = [deep];
  decode(encode(deep));
  assert.throws(() => encode([deep]), PayloadNotEncodableError);
  assert.deepEqual(decode(encode({ u: undefined })), { u: null });
  assert.deepEqual(decode(encode(Object.create(null))), {});
});

test("map keys no client could read back are refused, nested too (Python's _check_keys)", () => {
  const key = Symbol("k");
  for (const p of [new Map([[1, 2]]), { ok: [new Map()] }, { [key]: 1 }, { ok: [{ a: 1, [key]: 2 }] },
    new ExtData(5, new Uint8Array([1])), [new ExtData(5, new Uint8Array([1]))]]) {
    assert.throws(() => encode(p), PayloadNotEncodableError);
  }
  assert.throws(() => encode({ [key]: 1 }), /map key Symbol\(k\) of type symbol: map keys must be strings/);
  // A symbol that is not enumerable is no key of the map, as for JSON.
  const hidden = Object.defineProperty({ a: 1 }, key, { value: 2, enumerable: false });
  assert.deepEqual(decode(encode(hidden)), { a: 1 });
  // Text keys round-trip; integer keys (from Python) arrive as text.
  assert.deepEqual(decode(encode({ a: { 1: [{ b: -2 }] }, 7: "seven" })), { a: { 1: [{ b: -2 }] }, 7: "seven" });
  assert.deepEqual(decode(Buffer.from("82a17601a17081a161a162", "hex")), { a: "b" });
  assert.deepEqual(decode(Buffer.from("82a17601a1708107a3736576", "hex")), { 7: "sev" });
});

test("anything but a version 1 envelope is CorruptEnvelopeError", () => {
  for (const hex of ["", "c1", "a2fffe", "82a17601", "82a17602a17001", "93010203", "81a17601",
    "82a17601a170a2fffe", "82a17601a17001c0", "81a9__proto__01",
    // The version is the integer 1: not true, not 1.0 as a float64 or float32.
    "82a176c3a170c0", "82a176cb3ff0000000000000a170c0", "82a170c0a176ca3f800000"]) {
    assert.throws(() => decode(Buffer.from(hex, "hex")), CorruptEnvelopeError, hex);
  }
  // Unknown fields are ignored so a later version can add some.
  assert.equal(decode(Buffer.from("83a17601a17007a178c0", "hex")), 7);
  // Floats elsewhere are fine, in the payload and in unknown fields.
  assert.deepEqual(decode(Buffer.from("83a17601a170cb3ff0000000000000a178ca3f800000", "hex")), 1);
  assert.deepEqual(decode(Buffer.from("82a17601a17081a176cb3ff0000000000000", "hex")), { v: 1 });
});

// The repository's virtualenv (make venv) has msgpack; a system python3 may.
const PYTHON = [new URL("../../.venv/bin/python", import.meta.url).pathname, "python3"].find(
  (p) => spawnSync(p, ["-c", "import msgpack"]).status === 0,
);

test("live cross-check with Python's msgpack", { skip: PYTHON ? false : "no Python msgpack" }, () => {
  // Each case: a Python expression and the JavaScript value it must equal.
  const cases = [
    ["{'text': 'zoë ☃ 🎉', 'bin': b'\\x00\\x01', 'n': [1, -2, 3.25, None, True]}",
      { text: "zoë ☃ 🎉", bin: Buffer.from([0, 1]), n: [1, -2, 3.25, null, true] }],
    ["[2**64 - 1, -2**63, 2**53, 2**32, -2**31 - 1]",
      [2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n, 2 ** 32, -(2 ** 31) - 1]],
    ["{'deep': [[[{'k': ['x' * 300]}]]]}", { deep: [[[{ k: ["x".repeat(300)] }]]] }],
    ["b'\\xff' * 70000", Buffer.alloc(70000, 0xff)],
    ["'s' * 70000", "s".repeat(70000)],
    ["{str(i): i for i in range(20)}", Object.fromEntries(Array.from({ length: 20 }, (_, i) => [String(i), i]))],
  ];
  const script = "import msgpack, sys\nfor line in sys.stdin:\n" +
    "    print(msgpack.packb({'v': 1, 'p': eval(line)}, use_bin_type=True).hex())";
  const out = spawnSync(/** @type {string} */ (PYTHON), ["-c", script], {
    input: cases.map(([py]) => py).join("\n") + "\n",
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  assert.equal(out.status, 0, out.stderr);
  const hexes = out.stdout.trim().split("\n");
  cases.forEach(([, js], i) => {
    assert.equal(encode(js).toString("hex"), hexes[i], `case ${i}`);
    assert.deepEqual(decode(Buffer.from(hexes[i], "hex")), js);
  });
});
