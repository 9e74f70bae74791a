// A scripted gateway behind the Transport interface, for client behaviour that a real gateway
// produces only by chance (a request crossing a GOAWAY, a push racing it, hostile lengths).
// Test code only: each dial yields a ScriptedConn the test reads frames from and writes to.
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { FrameDecoder, encodeFrame } from "../src/codec.js";
import { FrameSchema } from "../src/gen/tcpgateway/v1/protocol_pb.js";
import type { Frame } from "../src/gen/tcpgateway/v1/protocol_pb.js";
import type { Transport, TransportFactory, TransportHandlers } from "../src/transport.js";

export class ScriptedConn implements Transport {
  private handlers: TransportHandlers | undefined;
  private readonly decoder = new FrameDecoder(1 << 20);
  private readonly inbox: Frame[] = [];
  private waiting: ((f: Frame) => void) | undefined;
  closed = false;
  /** failWrites makes every write fail, as after a reset the reader has not reached yet. */
  failWrites = false;
  writesFailed = 0;

  start(h: TransportHandlers): void {
    this.handlers = h;
  }

  write(data: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error("closed"));
    if (this.failWrites) {
      this.writesFailed++;
      return Promise.reject(new Error("write ECONNRESET (scripted)"));
    }
    for (const f of this.decoder.push(data)) {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(f);
      } else {
        this.inbox.push(f);
      }
    }
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }

  /** next resolves with the next frame the client sent. */
  next(): Promise<Frame> {
    const f = this.inbox.shift();
    if (f) return Promise.resolve(f);
    return new Promise((r) => (this.waiting = r));
  }

  /** nextNotPing is next, answering the PINGs before it with PONGs (heartbeats, watermark checks). */
  async nextNotPing(): Promise<Frame> {
    for (;;) {
      const f = await this.next();
      if (f.body.case !== "ping") return f;
      this.send({ seq: f.seq, body: { case: "pong", value: {} } });
    }
  }

  /** send delivers frames to the client as one chunk. */
  send(...frames: MessageInitShape<typeof FrameSchema>[]): void {
    const chunks = frames.map((f) => encodeFrame(create(FrameSchema, f), 1 << 20));
    this.raw(Buffer.concat(chunks));
  }

  raw(bytes: Uint8Array): void {
    if (!this.closed) this.handlers?.data(bytes);
  }

  /** end is the gateway closing the connection. */
  end(): void {
    if (!this.closed) this.handlers?.end(undefined);
  }

  /** accept answers the HANDSHAKE with an ack and returns the handshake. */
  async accept(ack: Record<string, unknown> = {}): Promise<Frame> {
    const hs = await this.next();
    this.send({ body: { case: "handshakeAck", value: { protocolVersion: 2, sessionId: "s-1", userId: "u-1", maxFrameBytes: 65536, ...ack } } });
    return hs;
  }
}

/** ScriptedGateway is a TransportFactory whose dials the test takes one by one. */
export class ScriptedGateway {
  private readonly dialed: ScriptedConn[] = [];
  private waiting: ((c: ScriptedConn) => void) | undefined;
  dials = 0;

  readonly factory: TransportFactory = () => {
    this.dials++;
    const c = new ScriptedConn();
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w(c);
    } else {
      this.dialed.push(c);
    }
    return Promise.resolve(c);
  };

  /** conn resolves with the next connection the client dials. */
  conn(): Promise<ScriptedConn> {
    const c = this.dialed.shift();
    if (c) return Promise.resolve(c);
    return new Promise((r) => (this.waiting = r));
  }
}
