// R26: the resume token of a GOAWAY DRAINING goes on the handshakes of the reconnect that
// follows it, until one is acknowledged, and is forgotten then.
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

test("a DRAINING resume token goes on the reconnect until acknowledged, then is forgotten", async () => {
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
  a.send({ body: { case: "goaway", value: { reason: GoAway_Reason.DRAINING, resumeToken: "rt-1" } } });

  const refused = await gw.conn();
  assert.equal(resumeOf(await refused.next())?.resumeToken, "rt-1");
  assert.equal(exported[0]?.resumeToken, "rt-1", "an export while the reconnect is pending holds the token");
  // A refused attempt is no acknowledgement: the next one carries the token again.
  refused.send({ body: { case: "error", value: { code: ErrorCode.SERVER_FULL, fatal: true } } });

  const b = await gw.conn();
  assert.equal(resumeOf(await b.accept(watermark))?.resumeToken, "rt-1");
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
