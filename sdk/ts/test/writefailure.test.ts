// R37: the reader decides the cause of a connection's end. A failed write writes nothing more
// and waits for the reader: a fatal ERROR read meanwhile is the cause, else the write error
// after READ_AFTER_WRITE_FAILURE_MS; the calls in flight fail with ConnectionLostError.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ConnectionLostError, ErrorCode, ServerError } from "../src/index.js";
import { READ_AFTER_WRITE_FAILURE_MS } from "../src/conn.js";
import { ScriptedGateway } from "./scripted.js";

const fast = { initialMs: 1, maxMs: 2, lostSpreadMs: -1 };
const turn = () => new Promise((r) => setImmediate(r));

async function connected() {
  const gw = new ScriptedGateway();
  const c = new Client({ address: "gw:7000", token: "t", transport: gw.factory, reconnect: fast });
  const causes: Error[] = [];
  c.on("disconnected", (e) => causes.push(e));
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept();
  await connecting;
  return { gw, c, a, causes };
}

test("a fatal ERROR read after a failed write is the cause; the calls fail connection_lost", async () => {
  const { c, a, causes } = await connected();
  a.failWrites = true;
  const first = c.request("s", "one");
  const rejected = [assert.rejects(first, ConnectionLostError)];
  await turn();
  assert.equal(a.writesFailed, 1);
  const second = c.request("s", "two");
  rejected.push(assert.rejects(second, ConnectionLostError));
  await turn();
  assert.equal(a.writesFailed, 1, "nothing more is written after a failed write");
  assert.equal(causes.length, 0, "the reader has not decided yet");

  a.send({ body: { case: "error", value: { code: ErrorCode.INTERNAL, message: "bye", fatal: true } } });
  await Promise.all(rejected);
  assert.equal(causes.length, 1);
  const cause = causes[0];
  assert.ok(cause instanceof ServerError && cause.code === ErrorCode.INTERNAL && cause.message.includes("bye"), String(cause));
  await c.close();
});

test("a failed write with nothing more to read ends the connection with the write error after the linger", async () => {
  const { c, a, causes } = await connected();
  a.failWrites = true;
  const start = performance.now();
  await assert.rejects(c.request("s", "one"), ConnectionLostError);
  const took = performance.now() - start;
  assert.ok(took >= READ_AFTER_WRITE_FAILURE_MS - 50 && took < READ_AFTER_WRITE_FAILURE_MS + 3000, `ended after ${String(took)} ms`);
  assert.equal(causes.length, 1);
  assert.ok(String(causes[0]).includes("ECONNRESET (scripted)"), `cause ${String(causes[0])}, want the write error`);
  await c.close();
});
