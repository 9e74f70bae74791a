// Client behaviour against a scripted gateway (test/scripted.ts): what a real gateway does
// only by chance. The real gateway and the conformance suite cover the rest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ConnectionLostError, ErrorCode, FrameError, GoAwayError, GoAway_Reason, ServerError } from "../src/index.js";
import type { ReceivedPush } from "../src/index.js";
import { ScriptedGateway } from "./scripted.js";

const fast = { initialMs: 1, maxMs: 2, lostSpreadMs: -1 };

function client(gw: ScriptedGateway, extra: Partial<ConstructorParameters<typeof Client>[0]> = {}) {
  const pushes: ReceivedPush[] = [];
  const c = new Client({ address: "gw:7000", token: "t", transport: gw.factory, reconnect: fast, ...extra });
  c.on("push", (p) => pushes.push(p));
  return { c, pushes };
}

const push = (id: string, partition: number, offset: bigint) => ({ body: { case: "push" as const, value: { messageId: id, position: { partition, offset } } } });

test("a request answered DRAINING goes out again on the next connection; a push after GOAWAY is ignored", async () => {
  const gw = new ScriptedGateway();
  const { c, pushes } = client(gw);
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept({ positions: [{ partition: 0, offset: 4n }, { partition: 1, offset: -1n }] });
  await connecting;

  const answer = c.request("chat", "send", new TextEncoder().encode("hi"));
  const req = await a.next();
  assert.equal(req.body.case, "request");
  a.send({ body: { case: "goaway", value: { reason: GoAway_Reason.DRAINING, reconnectDelayMs: 5, resumeToken: "rt" } } }, push("late", 0, 5n));
  a.send({ seq: req.seq, body: { case: "response", value: { code: ErrorCode.DRAINING } } });

  const b = await gw.conn();
  const hs = await b.accept();
  const resume = hs.body.case === "handshake" ? hs.body.value.resume : undefined;
  assert.ok(resume);
  assert.equal(resume.resumeToken, "rt");
  assert.deepEqual(resume.positions.map((p) => [p.partition, p.offset]), [[0, 4n], [1, -1n]], "the floor names every partition, -1 kept");
  const again = await b.nextNotPing();
  assert.equal(again.body.case, "request", "resent on the new connection");
  b.send({ seq: again.seq, body: { case: "response", value: { code: ErrorCode.OK, status: 200 } } });
  assert.equal((await answer).status, 200);
  assert.equal(pushes.length, 0, "the push that raced the GOAWAY was not delivered");

  b.send(push("late", 0, 5n));
  await c.close();
  assert.deepEqual(pushes.map((p) => p.messageId), ["late"], "replayed on the new connection");
});

test("duplicates by position and by message id are dropped; the duplicate still moves the position", async () => {
  const gw = new ScriptedGateway();
  const { c, pushes } = client(gw);
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept();
  await connecting;
  a.send(push("m1", 0, 1n), push("m1", 0, 1n), push("m2", 0, 2n), push("m1", 0, 3n), push("m0", 0, 0n), push("m4", 1, 0n));
  assert.deepEqual(pushes.map((p) => p.messageId), ["m1", "m2", "m4"]);
  assert.deepEqual(c.exportResumeState().positions, [{ partition: 0, offset: 3n }, { partition: 1, offset: 0n }]);
  await c.close();
});

test("after a resume the watermarks become the floor only once a PONG proves the replay arrived", async () => {
  const gw = new ScriptedGateway();
  const { c } = client(gw, { resume: { sessionId: "s-1", positions: [{ partition: 0, offset: 2n }] } });
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept({ positions: [{ partition: 0, offset: 9n }, { partition: 1, offset: -1n }] });
  await connecting;
  assert.deepEqual(c.exportResumeState().positions, [{ partition: 0, offset: 2n }], "not yet adopted");
  const ping = await a.next();
  assert.equal(ping.body.case, "ping");
  a.send({ seq: ping.seq, body: { case: "pong", value: {} } });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(c.exportResumeState().positions, [{ partition: 0, offset: 9n }, { partition: 1, offset: -1n }]);
  await c.close();
});

test("a fatal ERROR ends the connection: calls in flight fail connection_lost and the client reconnects", async () => {
  const gw = new ScriptedGateway();
  const { c } = client(gw);
  const causes: Error[] = [];
  c.on("disconnected", (e) => causes.push(e));
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept();
  await connecting;
  const inflight = c.request("chat", "x");
  await a.next();
  a.send({ body: { case: "error", value: { code: ErrorCode.IDLE_TIMEOUT, message: "idle", fatal: true } } });
  await assert.rejects(inflight, ConnectionLostError);
  assert.ok(causes[0] instanceof ServerError && causes[0].code === ErrorCode.IDLE_TIMEOUT);
  const b = await gw.conn();
  await b.accept();
  await c.close();
});

test("UNSUPPORTED_VERSION and REPLACED stop the client; a fixed token refused stops it too", async () => {
  for (const [name, frame] of [
    ["unsupported", { body: { case: "error" as const, value: { code: ErrorCode.UNSUPPORTED_VERSION, fatal: true } } }],
    ["replaced", { body: { case: "goaway" as const, value: { reason: GoAway_Reason.REPLACED } } }],
    ["token_expired", { body: { case: "error" as const, value: { code: ErrorCode.TOKEN_EXPIRED, fatal: true } } }],
  ] as const) {
    const gw = new ScriptedGateway();
    const { c } = client(gw);
    const connecting = c.connect();
    const a = await gw.conn();
    await a.accept();
    await connecting;
    a.send(frame);
    await c.done;
    assert.equal(gw.dials, 1, `${name}: no reconnect`);
    const why = c.stopReason;
    assert.ok(why instanceof ServerError || (why instanceof GoAwayError && why.replaced), `${name}: ${String(why)}`);
    await assert.rejects(c.request("x", "y"), (e: unknown) => e === why, "later calls fail with the stop reason");
  }
});

test("an inbound length above the limit ends the connection from the prefix alone", async () => {
  const gw = new ScriptedGateway();
  const { c } = client(gw, { maxFrameBytes: 1000 });
  const cause = new Promise<Error>((r) => c.on("disconnected", r));
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept();
  await connecting;
  a.raw(Uint8Array.of(0x7f, 0xff, 0xff, 0xff));
  const why = await cause;
  assert.ok(why instanceof FrameError && why.code === ErrorCode.FRAME_TOO_LARGE, String(why));
  assert.ok(a.closed);
  await c.close();
});

test("the ack's smaller max_frame_bytes caps what is sent: the call fails, nothing is written, the connection stays (R4)", async () => {
  const gw = new ScriptedGateway();
  const { c, pushes } = client(gw);
  const causes: Error[] = [];
  c.on("disconnected", (e) => causes.push(e));
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept({ maxFrameBytes: 1000 });
  await connecting;
  const asking = push("m1", 0, 1n);
  a.send({ body: { case: "push", value: { ...asking.body.value, replyExpected: true } } });
  const tooLarge = (e: unknown) => e instanceof FrameError && e.code === ErrorCode.FRAME_TOO_LARGE;
  await assert.rejects(c.request("svc", "big", new Uint8Array(2000)), tooLarge);
  const p = pushes[0];
  assert.ok(p);
  await assert.rejects(p.reply(new Uint8Array(2000)), tooLarge);
  // The first frame the gateway reads after them is the next call's, on the same connection.
  const small = c.request("svc", "small", new Uint8Array(10));
  const f = await a.nextNotPing();
  assert.ok(f.body.case === "request" && f.body.value.method === "small", `got ${f.body.case}`);
  a.send({ seq: f.seq, body: { case: "response", value: { code: ErrorCode.OK } } });
  assert.equal((await small).code, ErrorCode.OK);
  assert.deepEqual(causes, []);
  assert.equal(gw.dials, 1);
  await c.close();
});

test("seq is a bigint counted per connection, and answers are matched by it, not by order", async () => {
  const gw = new ScriptedGateway();
  const { c } = client(gw);
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept();
  await connecting;
  const r1 = c.request("s", "one");
  const r2 = c.request("s", "two");
  const f1 = await a.next();
  const f2 = await a.next();
  assert.equal(typeof f1.seq, "bigint");
  assert.equal(f2.seq, f1.seq + 1n);
  a.send({ seq: f2.seq, body: { case: "response", value: { code: ErrorCode.OK, message: "two" } } }, { seq: f1.seq, body: { case: "response", value: { code: ErrorCode.OK, message: "one" } } });
  assert.equal((await r1).message, "one");
  assert.equal((await r2).message, "two");
  await c.close();
});
