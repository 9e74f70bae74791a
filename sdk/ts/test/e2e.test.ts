// End to end against real gateway processes (test/gateway.ts): handshake and identity,
// requests (typed answers, out of order, the frame limit), a refused token, REPLACED, TLS, and
// a push with its ack through the real Kafka broker when TCPGW_KAFKA_BOOTSTRAP is set.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client, ErrorCode, FrameError, GoAwayError, GoAway_Reason, ServerError, TransportError, connect } from "../src/index.js";
import type { HandshakeAck, ReceivedPush } from "../src/index.js";
import { Backend, Gateway, binDir, selfSignedCert, signJwt } from "./gateway.js";

const run = promisify(execFile);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("a plaintext gateway with a route", () => {
  const backend = new Backend();
  let gw: Gateway;
  before(async () => {
    await backend.start();
    gw = new Gateway({ routes: [{ service: "echo", url: backend.url, timeout: "5s" }] });
    await gw.start();
  });
  after(async () => {
    await gw.stop();
    gw.cleanup();
    await backend.stop();
  });

  test("handshake and identity: the ack names the token's user and a session id", async () => {
    const acks: HandshakeAck[] = [];
    const c = await connect({ address: gw.address, token: gw.token("u-1"), deviceId: "d-1", clientVersion: "ts/test", on: { connected: (a) => acks.push(a) } });
    try {
      assert.equal(acks.length, 1);
      const [ack] = acks;
      assert.ok(ack);
      assert.equal(ack.userId, "u-1");
      assert.equal(ack.protocolVersion, 2);
      assert.match(c.sessionId, /^[A-Za-z0-9_-]{22}$/, "128 random bits");
      assert.equal(ack.heartbeatIntervalMs, 1000);
      assert.ok((await c.ping()) >= 0);
    } finally {
      await c.close();
    }
  });

  test("requests: echo, typed NO_ROUTE, out of order, and the frame limit refused locally", async () => {
    const c = await connect({ address: gw.address, token: gw.token("u-2") });
    try {
      const r = await c.request("echo", "hello", enc("ping"), { headers: { trace: "t-1" } });
      assert.equal(r.code, ErrorCode.OK);
      assert.equal(r.status, 200);
      assert.equal(dec(r.payload), "ping");
      assert.equal(r.headers.user, "u-2");

      const none = await c.request("nope", "x");
      assert.equal(none.code, ErrorCode.NO_ROUTE);

      const order: string[] = [];
      await Promise.all([
        c.request("echo", "slow400", enc("slow")).then((x) => order.push(dec(x.payload))),
        c.request("echo", "fast", enc("fast")).then((x) => order.push(dec(x.payload))),
      ]);
      assert.deepEqual(order, ["fast", "slow"], "the fast answer overtakes the slow one (matched by seq)");

      await assert.rejects(c.request("echo", "big", new Uint8Array(70_000)), (e: unknown) => e instanceof FrameError && e.code === ErrorCode.FRAME_TOO_LARGE);
      const still = await c.request("echo", "after", enc("still here"));
      assert.equal(dec(still.payload), "still here", "nothing was sent: the connection stays");
    } finally {
      await c.close();
    }
  });

  test("a token the gateway refuses fails connect with UNAUTHENTICATED and its reason", async () => {
    const bad = signJwt(randomBytes(32), "u-3"); // signed with another secret
    await assert.rejects(connect({ address: gw.address, token: bad }), (e: unknown) => e instanceof ServerError && e.code === ErrorCode.UNAUTHENTICATED && e.reason === "invalid_token");
  });

  test("REPLACED: a second connection of the user with the session id stops the first, which says why", async () => {
    const first = new Client({ address: gw.address, token: gw.token("u-4") });
    const stopped = new Promise<Error>((r) => first.on("stopped", r));
    await first.connect();
    const second = await connect({ address: gw.address, token: gw.token("u-4"), sessionId: first.sessionId });
    try {
      const why = await stopped;
      assert.ok(why instanceof GoAwayError && why.goaway.reason === GoAway_Reason.REPLACED, `stopped by ${why.message}`);
      await assert.rejects(first.request("echo", "x"), (e: unknown) => e === why);
      assert.equal(dec((await second.request("echo", "x", enc("ok"))).payload), "ok");
    } finally {
      await second.close();
      await first.close();
    }
  });
});

describe("a gateway with listen.tls", () => {
  let gw: Gateway;
  let pem = "";
  before(async () => {
    gw = new Gateway();
    const cert = selfSignedCert(gw.dir);
    pem = cert.pem;
    gw.opts.tls = { certFile: cert.certFile, keyFile: cert.keyFile };
    await gw.start();
  });
  after(async () => {
    await gw.stop();
    gw.cleanup();
  });

  test("connects with the CA given, checking the address's host", async () => {
    const c = await connect({ address: gw.address, token: gw.token("u-5"), tls: { ca: pem } });
    try {
      assert.ok((await c.ping()) >= 0);
    } finally {
      await c.close();
    }
  });

  test("connects with a server name the certificate holds", async () => {
    const c = await connect({ address: gw.address, token: gw.token("u-5"), tls: { ca: pem, servername: "localhost" } });
    await c.close();
  });

  test("refuses a certificate it does not trust, or a name it does not hold", async () => {
    await assert.rejects(connect({ address: gw.address, token: gw.token("u-5"), tls: {} }), TransportError);
    await assert.rejects(connect({ address: gw.address, token: gw.token("u-5"), tls: { ca: pem, servername: "example.com" } }), TransportError);
  });

  test("a plaintext client on the TLS port is told so: connect fails with ERROR BAD_FRAME", async () => {
    await assert.rejects(
      connect({ address: gw.address, token: gw.token("u-5"), handshakeTimeoutMs: 3000 }),
      (err: unknown) => err instanceof ServerError && err.code === ErrorCode.BAD_FRAME && /speaks TLS/.test(err.reason),
    );
  });
});

const bootstrap = process.env.TCPGW_KAFKA_BOOTSTRAP;

describe("a gateway with a Kafka downlink", { skip: bootstrap ? false : "TCPGW_KAFKA_BOOTSTRAP is not set (hack/test.sh sets it)" }, () => {
  let gw: Gateway;
  const suffix = randomBytes(4).toString("hex");
  const downlink = `ts-sdk-${suffix}.downlink`;
  const receipts = `ts-sdk-${suffix}.receipts`;
  before(async () => {
    const brokers = bootstrap ?? "";
    await run(join(binDir(), "kafkatopics"), ["-brokers", brokers, "-partitions", "3", downlink, receipts]);
    gw = new Gateway({ kafka: { brokers: [brokers], downlinkTopic: downlink, receiptsTopic: receipts } });
    await gw.start();
  });
  after(async () => {
    await gw.stop();
    gw.cleanup();
  });

  test("a push arrives with its position, its ack reaches the publisher, positions export for every partition", async () => {
    const pushes: ReceivedPush[] = [];
    let gotPush!: () => void;
    const got = new Promise<void>((r) => (gotPush = r));
    const c = await connect({
      address: gw.address,
      token: gw.token("u-6"),
      on: {
        push: (p) => {
          pushes.push(p);
          gotPush();
        },
      },
    });
    try {
      const state0 = c.exportResumeState();
      assert.deepEqual(state0.positions.map((p) => p.partition), [0, 1, 2], "watermarks name every partition");
      assert.ok(state0.positions.every((p) => p.offset === -1n), "an empty partition's watermark is -1");

      const publisher = run(join(binDir(), "tcpgwctl"), ["push", "-brokers", bootstrap ?? "", "-topic", downlink, "-receipts", receipts, "-user", "u-6", "-ack", "-timeout", "30s", "hello"]);
      await got;
      const [p] = pushes;
      assert.ok(p);
      assert.equal(dec(p.payload), "hello");
      assert.ok(p.push.ackRequired);
      assert.ok(p.position && p.position.offset >= 0n);
      await p.ack();
      const { stdout } = await publisher;
      assert.match(stdout, new RegExp(`acked .* by session ${c.sessionId} \\(user u-6\\)`));

      const state = c.exportResumeState();
      assert.equal(state.sessionId, c.sessionId);
      const pos = p.position;
      assert.ok(state.positions.some((x) => x.partition === pos.partition && x.offset === pos.offset), "the delivered position is exported");
    } finally {
      await c.close();
    }
  });
});
