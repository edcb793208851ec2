// client.call(name, service, args) on a private Redis: any call of the
// manifest's call table by name. A new script with its typed header and its
// calls.json entry must be callable with no hand-written code; the methods
// are such calls with their arguments named. (python/tests/test_generic_call.py
// does the same from Python.)

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { DeadPage, Event, InvalidArgumentError, Status, ops } from "../src/index.js";
import { connect, privateServer } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

test("a call by name gives what the method gives", async () => {
  assert.equal(await client.call("enqueue", "gen", { payload: { n: 1 }, id: "e1" }), "e1");
  assert.equal((await client.call("enqueueMany", "gen", { payloads: [2, 3], keys: ["k", null] })).length, 2);
  const [ev] = await client.call("dequeue", "gen", { count: 1, leaseMs: 5000 });
  assert.ok(ev instanceof Event);
  assert.deepEqual([ev.id, ev.payload, ev.attempt], ["e1", { n: 1 }, 1]);
  assert.equal(await client.call("complete", "gen", { id: ev.id, token: ev.token, result: "done" }), null);
  const st = await client.call("status", "gen", { id: "e1" });
  assert.ok(st instanceof Status);
  assert.deepEqual([st.state, st.result], ["done", "done"]);
  assert.equal((await client.call("stats", "gen")).ready, 2);
  assert.equal((await client.call("configure", "gen", { policy: { maxAttempts: 1 } })).maxAttempts, 1);
  const page = await client.call("dead_list", "gen"); // offset and count: the table's defaults
  assert.ok(page instanceof DeadPage);
  assert.equal(page.total, 0);
  assert.deepEqual(await client.call("deadRequeue", "gen", { count: 5 }), [0, 0]);
  assert.equal(typeof (await client.call("beat", "", { name: "test:host:1" })), "number");
  assert.deepEqual(await client.services(), ["gen"]); // enqueue registered it, as the method does
});

test("unknown names and arguments are refused before anything is written", async () => {
  await assert.rejects(client.call("enqueue_one", "gen2", { payload: 1 }), { name: "InvalidArgumentError", message: /no call "enqueue_one"/ });
  await assert.rejects(client.call("enqueue", "gen2", { payload: 1, colour: "red" }), /takes no argument colour/);
  await assert.rejects(client.call("dequeue", "gen2", { count: 0 }), InvalidArgumentError);
  assert.equal((await client.stats("gen2")).ready, 0);
  assert.ok(!(await client.services()).includes("gen2"));
});

test("an entry no method knows is callable: the table's records, in camelCase", async () => {
  // enqueue_many's entry without its pick, as a new calls.json entry would be.
  const entry = structuredClone(ops.CALLS.enqueue_many);
  delete entry.pick;
  entry.shape = {}; // what the build derives for an entry with no pick
  ops.CALLS.enqueue_added = entry;
  try {
    const out = await client.call("enqueueAdded", "gen3", { payloads: ["a", "b"], ids: ["x1", "x2"], keys: ["k", ""] });
    assert.deepEqual(out, { items: [{ id: "x1", added: true }, { id: "x2", added: true }] });
    const again = await client.call("enqueue_added", "gen3", { payloads: ["c"], ids: ["x3"], keys: ["k"] });
    assert.deepEqual(again, { items: [{ id: "x1", added: false }] }); // the key's first event
    assert.equal((await client.stats("gen3")).ready, 2);
  } finally {
    delete ops.CALLS.enqueue_added;
  }
});
