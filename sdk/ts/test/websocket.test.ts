// The WebSocket transport: its wire rules against an in-process fake of the WebSocket API
// (events fired by the test, in any order a browser could produce), and the Client over real
// WebSockets against a local server of the ws package on 127.0.0.1 playing the gateway.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Client as BrowserClient } from "../src/browser.js";
import {
  Client,
  ErrorCode,
  FrameDecoder,
  FrameError,
  FrameSchema,
  GoAwayError,
  GoAway_Reason,
  ServerError,
  TransportError,
  WEBSOCKET_SUBPROTOCOL,
  WebSocketTransport,
  encodeFrame,
  webSocketTransport,
  wsPackage,
} from "../src/index.js";
import type { Frame, TransportHandlers, WebSocketCloseEvent, WebSocketLike, WebSocketMessageEvent } from "../src/index.js";
import { closeCause, messageFrame, webSocketUrl } from "../src/websocket.js";
import { selfSignedCert } from "./gateway.js";

type FrameInit = MessageInitShape<typeof FrameSchema>;
const frame = (f: FrameInit): Uint8Array => encodeFrame(create(FrameSchema, f), 1 << 20);
const ping = (seq: bigint): Uint8Array => frame({ seq, body: { case: "ping", value: {} } });
const arrayBuffer = (b: Uint8Array): ArrayBuffer => b.slice().buffer;
const fast = { initialMs: 1, maxMs: 2, lostSpreadMs: -1 };

/** FakeWebSocket is the WebSocket API with the test firing its events. */
class FakeWebSocket implements WebSocketLike {
  binaryType = "blob";
  readyState = 0;
  readonly sent: Uint8Array[] = [];
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];
  private readonly listeners = new Map<string, ((ev: never) => void)[]>();

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error("InvalidStateError");
    this.sent.push(data.slice());
  }
  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    if (this.readyState < 2) this.readyState = 2;
  }
  addEventListener(type: string, listener: (ev: never) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  fire(type: "open"): void;
  fire(type: "message", ev: WebSocketMessageEvent): void;
  fire(type: "error", ev: unknown): void;
  fire(type: "close", ev: WebSocketCloseEvent): void;
  fire(type: string, ev?: unknown): void {
    if (type === "open") this.readyState = 1;
    if (type === "close") this.readyState = 3;
    for (const l of this.listeners.get(type) ?? []) (l as (e: unknown) => void)(ev);
  }
}

/** Recorder is a transport's handlers keeping what they were given. */
class Recorder implements TransportHandlers {
  readonly chunks: Uint8Array[] = [];
  readonly ends: (Error | undefined)[] = [];
  data(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
  }
  end(err?: Error): void {
    this.ends.push(err);
  }
}

function opened(): { ws: FakeWebSocket; t: WebSocketTransport; r: Recorder } {
  const ws = new FakeWebSocket();
  const t = new WebSocketTransport(ws);
  ws.fire("open");
  return { ws, t, r: new Recorder() };
}

describe("the WebSocket transport's wire rules", () => {
  test("messages are read as ArrayBuffers; each outgoing frame is one message", async () => {
    const { ws, t, r } = opened();
    assert.equal(ws.binaryType, "arraybuffer");
    t.start(r);
    await t.write(ping(1n));
    await t.write(ping(2n));
    assert.deepEqual(ws.sent, [ping(1n), ping(2n)]);
    ws.fire("message", { data: arrayBuffer(ping(3n)) });
    assert.deepEqual(r.chunks, [ping(3n)]);
  });

  test("messages that arrive before start are delivered by it, then the end", () => {
    const { ws, t, r } = opened();
    ws.fire("message", { data: arrayBuffer(ping(1n)) });
    ws.fire("message", { data: arrayBuffer(ping(2n)) });
    ws.fire("close", { code: 1001, reason: "", wasClean: true });
    t.start(r);
    assert.deepEqual(r.chunks, [ping(1n), ping(2n)]);
    assert.deepEqual(r.ends, [undefined], "a clean close after the frames: a clean end, once");
  });

  test("a text message, a message of two frames and one of 3 bytes end the stream; nothing of them is delivered", () => {
    const cases: [string, unknown][] = [
      ["text", "hello"],
      ["two frames", arrayBuffer(new Uint8Array([...ping(1n), ...ping(2n)]))],
      ["3 bytes", arrayBuffer(new Uint8Array([0, 0, 0]))],
    ];
    for (const [what, data] of cases) {
      const { ws, t, r } = opened();
      t.start(r);
      ws.fire("message", { data });
      ws.fire("message", { data: arrayBuffer(ping(9n)) });
      assert.deepEqual(r.chunks, [], what);
      assert.equal(r.ends.length, 1, what);
      assert.ok(r.ends[0] instanceof TransportError && /websocket: /.test(r.ends[0].message), `${what}: ${String(r.ends[0])}`);
      assert.deepEqual(ws.closes, [{ code: 1000, reason: "bad message" }], `${what}: the socket is closed with a code a browser may send`);
      ws.fire("close", { code: 1000, reason: "", wasClean: true });
      assert.equal(r.ends.length, 1, `${what}: one end only`);
    }
  });

  test("a message holding part of a frame gives the decoder its length prefix, then ends the stream", () => {
    const { ws, t, r } = opened();
    const decoder = new FrameDecoder(65536);
    const thrown: unknown[] = [];
    t.start({
      data: (c) => {
        try {
          decoder.push(c);
        } catch (e) {
          thrown.push(e);
          t.close(); // what the connection does with a FrameError
        }
      },
      end: (e) => { r.end(e); },
    });
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 1 << 20);
    ws.fire("message", { data: arrayBuffer(huge) });
    assert.ok(thrown[0] instanceof FrameError && thrown[0].code === ErrorCode.FRAME_TOO_LARGE, "a prefix above the limit is frame_too_large (R3)");
    assert.deepEqual(r.ends, [], "closed by the connection: no end event follows");

    const b = opened();
    b.t.start(b.r);
    const partial = ping(5n).subarray(0, 6);
    b.ws.fire("message", { data: arrayBuffer(partial) });
    assert.deepEqual(b.r.chunks, [partial.subarray(0, 4)], "only the prefix");
    assert.ok(b.r.ends[0] instanceof TransportError && b.r.ends[0].message.includes("part of a frame"), String(b.r.ends[0]));
  });

  test("close codes: normal, going away and no status end cleanly; others are transport errors naming code and reason", () => {
    for (const code of [1000, 1001, 1005]) {
      assert.equal(closeCause({ code, reason: "", wasClean: true }), undefined, `clean ${code}`);
    }
    const unclean = closeCause({ code: 1001, reason: "", wasClean: false }, "read ECONNRESET");
    assert.ok(unclean instanceof TransportError && unclean.message === "websocket closed: 1001 (read ECONNRESET)", String(unclean));
    const refused = closeCause({ code: 4008, reason: "origin_not_allowed", wasClean: true });
    assert.ok(refused instanceof TransportError && refused.message === "websocket closed: 4008 origin_not_allowed", String(refused));
    const abnormal = closeCause({ code: 1006, reason: "", wasClean: false });
    assert.ok(abnormal instanceof TransportError && abnormal.message === "websocket closed: 1006", String(abnormal));
  });

  test("a failed write does not end the stream: the messages before the close are delivered, then the end (R37)", async () => {
    const { ws, t, r } = opened();
    t.start(r);
    ws.readyState = 2; // the gateway's close frame arrived: CLOSING, its frames still to be read
    await assert.rejects(t.write(ping(1n)), (e: unknown) => e instanceof TransportError && e.message === "write on a closed connection");
    assert.deepEqual(r.ends, [], "the write failure ends nothing");
    const fatal = frame({ body: { case: "error", value: { code: ErrorCode.INTERNAL, message: "bye", fatal: true } } });
    ws.fire("message", { data: arrayBuffer(fatal) });
    ws.fire("close", { code: 1000, reason: "", wasClean: true });
    assert.deepEqual(r.chunks, [fatal]);
    assert.deepEqual(r.ends, [undefined]);
    await assert.rejects(t.write(ping(2n)), TransportError);
  });

  test("after close no event is delivered; close is idempotent", () => {
    const { ws, t, r } = opened();
    t.start(r);
    t.close();
    t.close();
    ws.fire("message", { data: arrayBuffer(ping(1n)) });
    ws.fire("close", { code: 1006, reason: "", wasClean: false });
    assert.deepEqual(r.chunks, []);
    assert.deepEqual(r.ends, []);
    assert.deepEqual(ws.closes, [{ code: 1000, reason: undefined }]);
  });

  test("addresses: ws:// and wss:// URLs without a fragment", () => {
    assert.equal(webSocketUrl("ws://127.0.0.1:8080/tcpgw"), "ws://127.0.0.1:8080/tcpgw");
    assert.equal(webSocketUrl("WSS://gw.example.com/tcpgw?x=1"), "wss://gw.example.com/tcpgw?x=1");
    for (const bad of ["127.0.0.1:8080", "http://gw/tcpgw", "ws://gw/tcpgw#frag", "ws://", "wss://[::1"]) {
      assert.throws(() => webSocketUrl(bad), TransportError, bad);
    }
    assert.equal(messageFrame(ping(1n)), "one");
    assert.equal(messageFrame(new Uint8Array([0, 0, 0, 0])), "one", "an empty frame, for the decoder to refuse (bad_frame)");
    assert.equal(messageFrame(new Uint8Array([0, 0, 0, 1])), "short");
  });

  test("the browser Client needs a ws:// or wss:// address; the Node one refuses tls for wss://", () => {
    const WS = WebSocket as unknown as NonNullable<ConstructorParameters<typeof BrowserClient>[0]["webSocket"]>["WebSocket"];
    assert.throws(() => new BrowserClient({ address: "127.0.0.1:7000", token: "t", webSocket: { WebSocket: WS } }), TypeError);
    assert.throws(() => new Client({ address: "wss://127.0.0.1:7000/tcpgw", token: "t", tls: {}, webSocket: { WebSocket: WS } }), TypeError);
    if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
      assert.throws(() => new Client({ address: "ws://127.0.0.1:7000/tcpgw", token: "t" }), /no WebSocket constructor/);
    }
  });
});

/**
 * FakeGateway is a ws server on 127.0.0.1 speaking the gateway's side: it checks that every
 * message it gets is binary and exactly one frame, answers the HANDSHAKE, PINGs and REQUESTs,
 * and lets the test send messages and close.
 */
class FakeGateway {
  readonly wss: WebSocketServer;
  constructor(readonly server: http.Server | https.Server = http.createServer()) {
    this.wss = new WebSocketServer({
      server,
      path: "/tcpgw",
      handleProtocols: (offered) => (offered.has(WEBSOCKET_SUBPROTOCOL) ? WEBSOCKET_SUBPROTOCOL : false),
    });
  }
  readonly offered: string[] = [];
  readonly violations: string[] = [];
  readonly conns: WebSocket[] = [];
  readonly requests: Frame[] = [];
  private waiting: ((ws: WebSocket) => void)[] = [];

  async start(): Promise<void> {
    this.wss.on("connection", (ws, req) => {
      this.offered.push(req.headers["sec-websocket-protocol"] ?? "");
      ws.on("message", (data: Buffer, isBinary) => {
        this.onMessage(ws, new Uint8Array(data), isBinary);
      });
      this.conns.push(ws);
      for (const w of this.waiting.splice(0)) w(ws);
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
  }

  get url(): string {
    const scheme = this.server instanceof https.Server ? "wss" : "ws";
    return `${scheme}://127.0.0.1:${(this.server.address() as net.AddressInfo).port}/tcpgw`;
  }

  /** conn resolves with connection number i (0-based) once it is there. */
  conn(i: number): Promise<WebSocket> {
    return new Promise((resolve) => {
      const check = () => {
        const c = this.conns[i];
        if (c) resolve(c);
        else this.waiting.push(check);
      };
      check();
    });
  }

  send(ws: WebSocket, f: FrameInit): void {
    ws.send(frame(f));
  }

  private onMessage(ws: WebSocket, m: Uint8Array, isBinary: boolean): void {
    if (!isBinary || messageFrame(m) !== "one") {
      this.violations.push(`${isBinary ? "binary" : "text"} message of ${m.length} bytes: ${messageFrame(m)}`);
      return;
    }
    const f = new FrameDecoder(1 << 20).push(m)[0];
    assert.ok(f);
    switch (f.body.case) {
      case "handshake":
        this.send(ws, { body: { case: "handshakeAck", value: { protocolVersion: 2, sessionId: "s-ws", userId: f.body.value.token, maxFrameBytes: 65536, heartbeatIntervalMs: 0 } } });
        return;
      case "ping":
        this.send(ws, { seq: f.seq, body: { case: "pong", value: {} } });
        return;
      case "request":
        this.requests.push(f);
        this.send(ws, { seq: f.seq, body: { case: "response", value: { code: ErrorCode.OK, status: 200, payload: f.body.value.payload } } });
        return;
      default:
        return;
    }
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise((r) => { this.wss.close(r); });
    await new Promise((r) => this.server.close(r));
  }
}

describe("the Client over WebSocket (a ws server on 127.0.0.1)", () => {
  const gw = new FakeGateway();
  before(() => gw.start());
  after(() => gw.stop());
  const WS = WebSocket;

  test("handshake, requests and a push; every message one binary frame; the subprotocol offered and selected", async () => {
    const pushes: string[] = [];
    const c = new Client({ address: gw.url, token: "u-1", webSocket: { WebSocket: WS }, reconnect: fast });
    c.on("push", (p) => pushes.push(p.messageId));
    await c.connect();
    try {
      const ws = await gw.conn(gw.conns.length - 1);
      assert.equal(ws.protocol, WEBSOCKET_SUBPROTOCOL);
      const big = new Uint8Array(60_000).fill(7);
      const answers = await Promise.all([c.request("echo", "a", new TextEncoder().encode("one")), c.request("echo", "b", big), c.ping()]);
      assert.equal(new TextDecoder().decode(answers[0].payload), "one");
      assert.deepEqual(answers[1].payload, big);
      const got = new Promise<void>((r) => c.on("push", () => { r(); }));
      gw.send(ws, { body: { case: "push", value: { messageId: "m-1", position: { partition: 0, offset: 1n } } } });
      await got;
      assert.deepEqual(pushes, ["m-1"]);
      assert.deepEqual(gw.violations, []);
      assert.equal(gw.offered.at(-1), WEBSOCKET_SUBPROTOCOL);
    } finally {
      await c.close();
    }
  });

  test("GOAWAY then a going-away close: the cause is the GOAWAY and the client reconnects", async () => {
    const causes: Error[] = [];
    const c = new Client({ address: gw.url, token: "u-2", webSocket: { WebSocket: WS }, reconnect: fast });
    c.on("disconnected", (e) => causes.push(e));
    await c.connect();
    try {
      const first = gw.conns.length - 1;
      const ws = await gw.conn(first);
      const again = new Promise<void>((r) => c.on("connected", () => { r(); }));
      gw.send(ws, { body: { case: "goaway", value: { reason: GoAway_Reason.DRAINING, reconnectDelayMs: 1 } } });
      ws.close(1001, "draining");
      await again;
      assert.ok(causes[0] instanceof GoAwayError && causes[0].goaway.reason === GoAway_Reason.DRAINING, String(causes[0]));
      assert.equal((await c.request("echo", "after", new Uint8Array([1]))).code, ErrorCode.OK);
    } finally {
      await c.close();
    }
  });

  test("a fatal ERROR then a close: the ERROR is the cause; a refusing close code is a transport error", async () => {
    const causes: Error[] = [];
    const c = new Client({ address: gw.url, token: "u-3", webSocket: { WebSocket: WS }, reconnect: fast });
    c.on("disconnected", (e) => causes.push(e));
    await c.connect();
    try {
      let ws = await gw.conn(gw.conns.length - 1);
      let n = gw.conns.length;
      gw.send(ws, { body: { case: "error", value: { code: ErrorCode.SLOW_CONSUMER, message: "behind", fatal: true } } });
      ws.close(1000);
      ws = await gw.conn(n);
      assert.ok(causes[0] instanceof ServerError && causes[0].code === ErrorCode.SLOW_CONSUMER && causes[0].reason === "behind", String(causes[0]));
      await c.ping(); // the reconnect's handshake is done
      n = gw.conns.length;
      ws.close(4000, "some_reason");
      await gw.conn(n);
      assert.ok(causes[1] instanceof TransportError && causes[1].message.includes("4000 some_reason"), String(causes[1]));
      ws = await gw.conn(n);
      await c.ping();
      n = gw.conns.length;
      ws.terminate(); // the TCP connection ends without a close frame
      await gw.conn(n);
      assert.ok(causes[2] instanceof TransportError && causes[2].message.includes("1006"), String(causes[2]));
    } finally {
      await c.close();
    }
  });

  test("a length prefix of 1 MiB in a message: frame_too_large without the body (R3)", async () => {
    const causes: Error[] = [];
    const c = new Client({ address: gw.url, token: "u-4", webSocket: { WebSocket: WS }, noReconnect: true });
    c.on("disconnected", (e) => causes.push(e));
    await c.connect();
    const ws = await gw.conn(gw.conns.length - 1);
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, 1 << 20);
    ws.send(prefix);
    await c.done;
    assert.ok(causes[0] instanceof FrameError && causes[0].code === ErrorCode.FRAME_TOO_LARGE, String(causes[0]));
  });
});

describe("dialing over WebSocket", () => {
  test("a server that does not upgrade fails connect with a transport error naming the address", async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/tcpgw`;
    try {
      await assert.rejects(
        new Client({ address: url, token: "t", webSocket: { WebSocket } }).connect(),
        (e: unknown) => e instanceof TransportError && e.message.startsWith(`dial ${url}: `) && e.message.includes("404"),
      );
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test("a server that never answers the upgrade: the dial gives up when the handshake timeout aborts it", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s)); // accepts, says nothing
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/tcpgw`;
    try {
      const start = performance.now();
      await assert.rejects(
        new Client({ address: url, token: "t", webSocket: { WebSocket }, handshakeTimeoutMs: 300 }).connect(),
        (e: unknown) => e instanceof TransportError && e.message === `dial ${url}: timed out`,
      );
      const took = performance.now() - start;
      assert.ok(took >= 250 && took < 5000, `gave up after ${took} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test("webSocketTransport offers no subprotocol when given none", async () => {
    const gw = new FakeGateway();
    await gw.start();
    try {
      const t = await webSocketTransport({ WebSocket, protocols: [] })(gw.url, AbortSignal.timeout(5000));
      t.close();
      assert.deepEqual(gw.offered, [""]);
    } finally {
      await gw.stop();
    }
  });
});

describe("wsPackage: the ws package's WebSocket with the SDK's sockets (Node.js)", () => {
  test("ws:// with a path; wss:// trusting only the given CA and checking the name; another CA fails the dial", async () => {
    const plain = new FakeGateway();
    await plain.start();
    const dir = mkdtempSync(join(tmpdir(), "tcpgw-wss-"));
    const cert = selfSignedCert(dir);
    const secure = new FakeGateway(https.createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }));
    await secure.start();
    try {
      const a = new Client({ address: plain.url, token: "u-plain", webSocket: { WebSocket: wsPackage(WebSocket) } });
      await a.connect();
      await a.ping();
      await a.close();
      const b = new Client({ address: secure.url, token: "u-tls", webSocket: { WebSocket: wsPackage(WebSocket, { tls: { ca: cert.pem } }) } });
      await b.connect();
      await b.ping();
      await b.close();
      const named = new Client({ address: secure.url.replace("127.0.0.1", "localhost"), token: "u-tls", webSocket: { WebSocket: wsPackage(WebSocket, { tls: { ca: cert.pem } }) } });
      await named.connect();
      await named.close();
      await assert.rejects(
        new Client({ address: secure.url, token: "u-tls", webSocket: { WebSocket: wsPackage(WebSocket, { tls: { ca: cert.pem, servername: "elsewhere.example" } }) } }).connect(),
        (e: unknown) => e instanceof TransportError && e.message.startsWith("dial "),
        "a name the certificate does not hold",
      );
      await assert.rejects(
        new Client({ address: secure.url, token: "u-tls", webSocket: { WebSocket: wsPackage(WebSocket) } }).connect(),
        (e: unknown) => e instanceof TransportError && e.message.startsWith("dial "),
        "the system roots do not hold the test CA",
      );
      assert.deepEqual(plain.violations, []);
      assert.deepEqual(secure.violations, []);

      // A message above the frame limit ends the connection from its header, not buffered.
      const causes: Error[] = [];
      const small = new Client({ address: plain.url, token: "u-big", noReconnect: true, maxFrameBytes: 1024, webSocket: { WebSocket: wsPackage(WebSocket, { maxFrameBytes: 1024 }) } });
      small.on("disconnected", (e) => causes.push(e));
      await small.connect();
      const ws = await plain.conn(plain.conns.length - 1);
      plain.send(ws, { body: { case: "push", value: { messageId: "fits", payload: new Uint8Array(900) } } });
      await small.ping(); // the push, then the pong: the limit lets a frame within it through
      plain.send(ws, { body: { case: "push", value: { messageId: "huge", payload: new Uint8Array(512 << 10) } } });
      await small.done;
      assert.ok(causes[0] instanceof TransportError && causes[0].message.includes("Max payload size exceeded"), String(causes[0]));
    } finally {
      await plain.stop();
      await secure.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
