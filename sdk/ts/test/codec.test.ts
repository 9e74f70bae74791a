// Framing: frames split anywhere reassemble; hostile length prefixes are refused from the
// prefix alone, before any body byte is waited for or allocated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, equals } from "@bufbuild/protobuf";
import { ErrorCode, FrameSchema } from "../src/gen/tcpgateway/v1/protocol_pb.js";
import type { Frame } from "../src/gen/tcpgateway/v1/protocol_pb.js";
import { FrameDecoder, FrameError, encodeFrame, reason } from "../src/codec.js";

const frames: Frame[] = [
  create(FrameSchema, { seq: 1n, body: { case: "ping", value: { clientTimeMs: 1_790_000_000_123n } } }),
  create(FrameSchema, { seq: 0xffff_ffff_ffff_ffffn, body: { case: "request", value: { service: "chat", method: "send", payload: new Uint8Array(3000).fill(7) } } }),
  create(FrameSchema, { body: { case: "push", value: { messageId: "m-1", position: { partition: 3, offset: -1n } } } }),
];
const wire = Buffer.concat(frames.map((f) => encodeFrame(f, 65536)));

function assertSame(got: Frame[]): void {
  assert.equal(got.length, frames.length);
  got.forEach((f, i) => {
    const want = frames[i];
    assert.ok(want && equals(FrameSchema, f, want), `frame ${i} differs`);
  });
}

test("frames split at every byte boundary reassemble", () => {
  for (let cut = 0; cut <= wire.length; cut++) {
    const d = new FrameDecoder(65536);
    const got = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    assertSame(got);
    assert.equal(d.pending, 0);
  }
});

test("frames fed one byte at a time reassemble", () => {
  const d = new FrameDecoder(65536);
  const got: Frame[] = [];
  for (const b of wire) got.push(...d.push(Uint8Array.of(b)));
  assertSame(got);
});

test("seq keeps all 64 unsigned bits", () => {
  const [, big] = new FrameDecoder(65536).push(wire);
  assert.equal(big?.seq, 18446744073709551615n);
});

test("a length prefix above the limit is refused before its body arrives", () => {
  const d = new FrameDecoder(65536);
  // 4 GiB - 1 announced, no body sent: the decoder must not wait for (or allocate) it.
  assert.throws(
    () => d.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff)),
    (e: unknown) => e instanceof FrameError && e.code === ErrorCode.FRAME_TOO_LARGE && /4294967295 bytes exceeds 65536/.test(e.message),
  );
  const small = new FrameDecoder(100);
  assert.throws(() => small.push(Uint8Array.of(0, 0, 0, 101, 1)), (e: unknown) => e instanceof FrameError && e.code === ErrorCode.FRAME_TOO_LARGE);
  assert.doesNotThrow(() => new FrameDecoder(100).push(Uint8Array.of(0, 0, 0, 100)));
});

test("an empty frame, a frame without a body and garbage are BAD_FRAME", () => {
  const bad = (bytes: number[]) => () => new FrameDecoder(65536).push(Uint8Array.from(bytes));
  const isBad = (e: unknown) => e instanceof FrameError && e.code === ErrorCode.BAD_FRAME;
  assert.throws(bad([0, 0, 0, 0]), isBad);
  assert.throws(bad([0, 0, 0, 2, 0x08, 0x05]), isBad); // seq 5 and no body
  assert.throws(bad([0, 0, 0, 2, 0xff, 0xff]), isBad); // not protobuf
});

test("encodeFrame refuses a frame above the limit", () => {
  const big = create(FrameSchema, { body: { case: "request", value: { payload: new Uint8Array(200) } } });
  assert.throws(() => encodeFrame(big, 100), (e: unknown) => e instanceof FrameError && e.code === ErrorCode.FRAME_TOO_LARGE);
});

test("reason strings match the gateway's", () => {
  assert.equal(reason(ErrorCode.FRAME_TOO_LARGE), "frame_too_large");
  assert.equal(reason(ErrorCode.UNAUTHENTICATED), "unauthenticated");
});

test("arbitrary bytes, whole or split, give frames or a FrameError, never anything else", () => {
  // A bounded stand-in for Go's FuzzDecode: seeded, so a failure is reproducible.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let i = 0; i < 3000; i++) {
    const input = new Uint8Array(rand(64));
    for (let j = 0; j < input.length; j++) input[j] = rand(256);
    if (i % 3 === 0 && input.length >= 4) input.set([0, 0, 0, rand(input.length)], 0); // plausible lengths
    const cut = rand(input.length + 1);
    const d = new FrameDecoder(1024);
    try {
      d.push(input.subarray(0, cut));
      d.push(input.subarray(cut));
      assert.ok(d.pending <= 4 + 1024);
    } catch (e) {
      assert.ok(e instanceof FrameError, `input ${Buffer.from(input).toString("hex")} threw ${String(e)}`);
    }
  }
});
