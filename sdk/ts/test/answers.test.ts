// Answers the gateway would refuse are refused locally, writing nothing (client-behaviour.md R19).
import { test } from "node:test";
import assert from "node:assert/strict";
import { AlreadyAnsweredError, Client, NotRequestedError } from "../src/index.js";
import type { ReceivedPush } from "../src/index.js";
import { ScriptedGateway } from "./scripted.js";
import type { ScriptedConn } from "./scripted.js";

const fast = { initialMs: 1, maxMs: 2, lostSpreadMs: -1 };

const push = (id: string, offset: bigint, ackRequired: boolean, replyExpected: boolean) => ({
  body: { case: "push" as const, value: { messageId: id, ackRequired, replyExpected, position: { partition: 0, offset } } },
});

async function connected(gw: ScriptedGateway) {
  const pushes: ReceivedPush[] = [];
  const c = new Client({ address: "gw:7000", token: "t", transport: gw.factory, reconnect: fast });
  c.on("push", (p) => pushes.push(p));
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept();
  await connecting;
  return { c, a, pushes };
}

/** written is what the client sent on a before a PING sent now (frames go out in order). */
async function written(c: Client, a: ScriptedConn): Promise<string[]> {
  const rtt = c.ping();
  const out: string[] = [];
  for (;;) {
    const f = await a.next();
    if (f.body.case === "ping") {
      a.send({ seq: f.seq, body: { case: "pong", value: {} } });
      await rtt;
      return out;
    }
    out.push(f.body.case === "pushAck" || f.body.case === "pushReply" ? `${f.body.case} ${f.body.value.messageId}` : String(f.body.case));
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(ok(), what);
}

test("an answer the push did not ask for, or a second one, is refused without writing", async () => {
  const gw = new ScriptedGateway();
  const { c, a, pushes } = await connected(gw);
  a.send(push("plain", 1n, false, false), push("both", 2n, true, true));
  await until("two pushes", () => pushes.length === 2);
  const [plain, both] = pushes;
  assert.ok(plain && both);

  await assert.rejects(plain.ack(), NotRequestedError);
  await assert.rejects(plain.reply(new Uint8Array([1])), { name: "NotRequestedError", kind: "not_requested", messageId: "plain" });
  await both.ack();
  await assert.rejects(both.ack(), { name: "AlreadyAnsweredError", kind: "already_answered", answer: "ack" });
  await both.reply(new TextEncoder().encode("r"));
  await assert.rejects(both.reply(new Uint8Array([2])), AlreadyAnsweredError);

  assert.deepEqual(await written(c, a), ["pushAck both", "pushReply both"]);
  await c.close();
});

test("of acks racing on one push exactly one is written", async () => {
  const gw = new ScriptedGateway();
  const { c, a, pushes } = await connected(gw);
  a.send(push("m", 1n, true, false));
  await until("the push", () => pushes.length === 1);
  const [p] = pushes;
  assert.ok(p);
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => p.ack()));
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  assert.ok(results.every((r) => r.status === "fulfilled" || r.reason instanceof AlreadyAnsweredError));
  assert.deepEqual(await written(c, a), ["pushAck m"]);
  await c.close();
});

test("a push delivered before a reconnect is answered after it; a failed write leaves it unanswered", async () => {
  const gw = new ScriptedGateway();
  const { c, a, pushes } = await connected(gw);
  a.send(push("m", 1n, true, true));
  await until("the push", () => pushes.length === 1);
  const [p] = pushes;
  assert.ok(p);
  // A reply above the frame limit is refused before anything is written: no mark taken.
  await assert.rejects(p.reply(new Uint8Array(1 << 17)));
  a.end(); // a loss: the client reconnects
  const b = await gw.conn();
  await b.accept();
  const confirm = await b.next(); // after a resume the client pings to confirm the watermarks (R24)
  assert.equal(confirm.body.case, "ping");
  b.send({ seq: confirm.seq, body: { case: "pong", value: {} } });
  await p.ack();
  await p.reply(new TextEncoder().encode("r"));
  assert.deepEqual(await written(c, b), ["pushAck m", "pushReply m"]);
  await c.close();
});
