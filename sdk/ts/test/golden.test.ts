// The golden vectors shared by every SDK (sdk/go/protocol/testdata/golden): each .hex decodes
// to its .textproto, and encoding the .textproto gives the same bytes (protobuf-es writes
// fields in number order like Go's deterministic marshal; the vectors' maps have one key).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { equals, fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { FrameSchema } from "../src/gen/tcpgateway/v1/protocol_pb.js";
import { DownlinkSchema, ReceiptSchema } from "../src/gen/tcpgateway/v1/downlink_pb.js";
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encodeFrame } from "../src/codec.js";
import { textprotoToJson } from "./textproto.js";

const dir = new URL("../../../../sdk/go/protocol/testdata/golden/", import.meta.url);
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".hex"))
  .map((f) => f.slice(0, -".hex".length));

function load<D extends DescMessage>(name: string, schema: D): { wire: Uint8Array; meaning: MessageShape<D> } {
  const hex = readFileSync(new URL(`${name}.hex`, dir), "utf8").trim();
  const text = readFileSync(new URL(`${name}.textproto`, dir), "utf8");
  return { wire: Uint8Array.from(Buffer.from(hex, "hex")), meaning: fromJson(schema, textprotoToJson(schema, text)) };
}

test("the golden vectors are there, one frame of every kind at least", () => {
  const kinds = new Set(names.map((n) => n.replace(/_(new_session|complete_resume|not_fatal)$/, "")));
  for (const f of FrameSchema.oneofs[0]?.fields ?? []) {
    assert.ok(kinds.has(f.name), `no golden vector for ${f.name}`);
  }
});

for (const name of names) {
  test(`golden ${name}`, () => {
    if (name.startsWith("downlink_") || name.startsWith("receipt_")) {
      checkRecord(name, name.startsWith("downlink_") ? DownlinkSchema : ReceiptSchema);
      return;
    }
    const { wire, meaning } = load(name, FrameSchema);
    const frames = new FrameDecoder(DEFAULT_MAX_FRAME_BYTES).push(wire);
    assert.equal(frames.length, 1);
    const [decoded] = frames;
    assert.ok(decoded && equals(FrameSchema, decoded, meaning), `${name}.hex decodes to its textproto`);
    assert.equal(Buffer.from(encodeFrame(meaning, DEFAULT_MAX_FRAME_BYTES)).toString("hex"), Buffer.from(wire).toString("hex"));
  });
}

// checkRecord checks a Kafka record value (no length prefix).
function checkRecord(name: string, schema: DescMessage): void {
  const { wire, meaning } = load(name, schema);
  assert.ok(equals(schema, fromBinary(schema, wire), meaning), `${name}.hex decodes to its textproto`);
  assert.equal(Buffer.from(toBinary(schema, meaning)).toString("hex"), Buffer.from(wire).toString("hex"));
}
