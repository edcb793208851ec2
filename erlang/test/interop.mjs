// The JavaScript side of the Erlang interop tests (erlang/test/interop_tests.erl).
// `node interop.mjs URL PREFIX COMMAND SERVICE`: each command checks what it reads
// and exits 1 on a mismatch. PAYLOADS are interop_tests:js_payloads() (the Python set
// without the integer map key, which a JavaScript object cannot hold).
import { Client } from "../../javascript/src/index.js";

const PAYLOADS = [
  null, true, false, 0, 42, -7, 2n ** 64n - 1n, -(2n ** 63n), 1.5, "",
  "h\u00e9llo \u2713 \u{1f600}", new Uint8Array([0, 255]), new Uint8Array([]), [], {},
  [1, "two", null, [true]],
  { city: "Oslo", temp_c: -3, tags: ["cold", "dark"], raw: new Uint8Array([1, 2]) },
];

function same(a, b) {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length
      && a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length
      && a.every((x, i) => same(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return typeof a === typeof b && a === b;
}

function fail(msg) {
  console.error(`interop.mjs: ${msg}`);
  process.exit(1);
}

const show = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x));

const commands = {
  // JS -> Erlang: every payload as js-i, for Erlang to check and echo as the result.
  async produce(c, service) {
    await c.enqueueMany(service, PAYLOADS, { ids: PAYLOADS.map((_, i) => `js-${i}`) });
  },
  async "check-results"(c, service) {
    for (const [i, p] of PAYLOADS.entries()) {
      const got = await c.result(service, `js-${i}`, { timeoutMs: 10000 });
      if (!same(got, p)) fail(`result of js-${i}: expected ${show(p)}, got ${show(got)}`);
    }
  },
  // Erlang -> JS: the payloads Erlang enqueued as er-i, completed with an echo.
  async consume(c, service) {
    let seen = 0;
    const end = Date.now() + 10000;
    while (seen < PAYLOADS.length && Date.now() < end) {
      for (const e of await c.dequeue(service, 100)) {
        const i = Number(e.id.split("-")[1]);
        if (!same(e.payload, PAYLOADS[i])) fail(`${e.id}: expected ${show(PAYLOADS[i])}, got ${show(e.payload)}`);
        await c.complete(service, e.id, e.token, e.payload);
        seen += 1;
      }
    }
    if (seen !== PAYLOADS.length) fail(`consumed ${seen} of ${PAYLOADS.length}`);
  },
};

const [url, prefix, command, service] = process.argv.slice(2);
const client = await Client.connect(url, { prefix });
try {
  await commands[command](client, service);
  console.log("ok");
} finally {
  await client.close();
}
