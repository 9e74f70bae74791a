// R26, R42: the resume token of a GOAWAY DRAINING or REBALANCE goes on the handshakes of the
// reconnect that follows it, until one is acknowledged, and is forgotten then. R43: a reason the
// client does not know (a newer gateway's) reconnects and resumes too, without the token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, ErrorCode, GoAway_Reason } from "../src/index.js";
import type { ResumeState } from "../src/index.js";
import type { Frame } from "../src/gen/tcpgateway/v1/protocol_pb.js";
import { ScriptedGateway } from "./scripted.js";

const watermark = { positions: [{ partition: 0, offset: -1n }] }; // so that every later handshake resumes

function resumeOf(hs: Frame) {
  if (hs.body.case !== "handshake") {
    assert.fail(`the first frame is ${hs.body.case ?? "empty"}, not a HANDSHAKE`);
  }
  return hs.body.value.resume;
}

// unknownReason is a value a newer gateway may send, which this client's enum does not name.
function unknownReason(): GoAway_Reason {
  const r: number = 99;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- a value outside the enum is the point
  return r;
}

const cases: { name: string; reason: GoAway_Reason; token: string }[] = [
  { name: "DRAINING", reason: GoAway_Reason.DRAINING, token: "rt-1" },
  { name: "REBALANCE", reason: GoAway_Reason.REBALANCE, token: "rt-1" },
  { name: "an unknown reason", reason: unknownReason(), token: "" },
];

for (const tc of cases) test(`after ${tc.name} the resume token (${tc.token || "none"}) goes on the reconnect until acknowledged, then is forgotten`, async () => {
  const gw = new ScriptedGateway();
  const c = new Client({ address: "gw:7000", token: "t", transport: gw.factory, reconnect: { initialMs: 1, maxMs: 2, lostSpreadMs: -1 } });
  const exported: ResumeState[] = [];
  c.on("disconnected", () => exported.push(c.exportResumeState()));
  let connects = 0;
  c.on("connected", () => connects++);
  const connecting = c.connect();
  const a = await gw.conn();
  await a.accept(watermark);
  await connecting;
  a.send({ body: { case: "goaway", value: { reason: tc.reason, resumeToken: "rt-1" } } });

  const refused = await gw.conn();
  assert.equal(resumeOf(await refused.next())?.resumeToken, tc.token);
  assert.equal(exported[0]?.resumeToken, tc.token || undefined, "an export while the reconnect is pending holds the token");
  // A refused attempt is no acknowledgement: the next one carries the token again.
  refused.send({ body: { case: "error", value: { code: ErrorCode.SERVER_FULL, fatal: true } } });

  const b = await gw.conn();
  assert.equal(resumeOf(await b.accept(watermark))?.resumeToken, tc.token);
  assert.equal(connects, 2);
  assert.equal(c.exportResumeState().resumeToken, undefined, "forgotten at the HANDSHAKE_ACK");

  b.end(); // a loss without GOAWAY
  const d = await gw.conn();
  const resume = resumeOf(await d.next());
  assert.ok(resume, "a loss resumes");
  assert.equal(resume.resumeToken, "", "without a token");
  assert.equal(exported[1]?.resumeToken, undefined);
  await c.close();
});
