// One connection after (or during) its handshake: frame reading in order, seq correlation,
// heartbeats, GOAWAY and ERROR handling. The Client (client.ts) owns the session across
// connections; a Conn reports to it through ConnHandlers.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { FrameDecoder, FrameError, encodeFrame } from "./codec.js";
import { ConnectionLostError, GoAwayError, ServerError, TransportError, asError } from "./errors.js";
import { FrameSchema } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { Error as ErrorFrame, Frame, GoAway, Handshake, HandshakeAck, Push, RefreshRequest } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { Transport } from "./transport.js";

/** LeavingError fails a call that would go out on a connection told to go away: it was not sent. */
export class LeavingError extends Error {
  override readonly name = "LeavingError";
  constructor() {
    super("connection is going away");
  }
}

export interface ConnHandlers {
  /** The HANDSHAKE_ACK arrived; runs before any frame after it is handled. */
  onAck(c: Conn): void;
  onPush(p: Push, c: Conn): void;
  /** The first GOAWAY: runs before any call can see LeavingError. */
  onLeave(c: Conn): void;
  onRefresh(c: Conn, r: RefreshRequest): Promise<void>;
  onRefused(e: ErrorFrame): void;
}

type Answer = { resolve: (f: Frame) => void; reject: (e: Error) => void };

/**
 * READ_AFTER_WRITE_FAILURE_MS bounds how long the reader goes on after a write failed, looking
 * for the fatal ERROR that says why (the gateway lingers as long after its last frame; R37).
 */
export const READ_AFTER_WRITE_FAILURE_MS = 2000;
type FrameInit = MessageInitShape<typeof FrameSchema>;

export class Conn {
  ack: HandshakeAck | undefined;
  goaway: GoAway | undefined;
  err: Error | undefined;
  /** Resolves with the cause when the connection ended. */
  readonly ended: Promise<Error>;
  /** Resolves on the first GOAWAY. */
  readonly leaving: Promise<GoAway>;

  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<bigint, Answer>();
  private seq = 0n;
  private sendLimit: number;
  private refreshing = false;
  private heartbeat: ReturnType<typeof setTimeout> | undefined;
  /** The first failed write: nothing more is written and the reader decides the cause (R37). */
  private writeErr: Error | undefined;
  private writeFailureTimer: ReturnType<typeof setTimeout> | undefined;
  private endedResolve!: (e: Error) => void;
  private leavingResolve!: (g: GoAway) => void;
  private handshakeDone!: { resolve: () => void; reject: (e: Error) => void };

  constructor(
    private readonly transport: Transport,
    maxFrameBytes: number,
    private readonly handlers: ConnHandlers,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.sendLimit = maxFrameBytes;
    this.ended = new Promise((r) => (this.endedResolve = r));
    this.leaving = new Promise((r) => (this.leavingResolve = r));
  }

  /** handshake sends HANDSHAKE and resolves once the HANDSHAKE_ACK was handled. */
  handshake(hs: Handshake, signal: AbortSignal): Promise<void> {
    const done = new Promise<void>((resolve, reject) => (this.handshakeDone = { resolve, reject }));
    const onAbort = () => {
      this.close(new TransportError("handshake timed out"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    void done.finally(() => {
      signal.removeEventListener("abort", onAbort);
    }).catch(() => undefined);
    this.transport.start({
      data: (chunk) => {
        this.onData(chunk);
      },
      end: (err) => {
        // After a failed write the write error is the cause, unless a fatal ERROR came first.
        this.close(this.writeErr ?? err ?? new TransportError("connection closed by the gateway"));
      },
    });
    this.write({ body: { case: "handshake", value: hs } }).catch((e: unknown) => {
      this.close(asError(e));
    });
    if (signal.aborted) {
      onAbort();
    }
    return done;
  }

  /** write encodes and sends one frame; a frame above the limit is refused, nothing sent (R4). */
  write(f: FrameInit): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(f, this.sendLimit);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    if (this.err) {
      return Promise.reject(this.err);
    }
    if (this.writeErr) {
      return Promise.reject(this.writeErr); // nothing more is written after a failed write (R37)
    }
    return this.transport.write(bytes).catch((e: unknown) => {
      throw this.writeFailed(asError(e));
    });
  }

  // writeFailed remembers the first failed write and gives the reader READ_AFTER_WRITE_FAILURE_MS
  // to reach the end of the stream: a reset can overtake the gateway's fatal ERROR, and that
  // ERROR, not the reset, is why the connection ends (R37).
  private writeFailed(e: Error): Error {
    if (!this.writeErr && !this.err) {
      this.writeErr = e;
      this.writeFailureTimer = setTimeout(() => {
        this.close(e);
      }, READ_AFTER_WRITE_FAILURE_MS);
    }
    return this.writeErr ?? e;
  }

  /** call sends a frame with a fresh seq and resolves with the frame answering it (R11, R12). */
  async call(f: FrameInit, signal?: AbortSignal): Promise<Frame> {
    if (this.err) {
      throw new ConnectionLostError(this.err);
    }
    if (this.goaway) {
      throw new LeavingError();
    }
    signal?.throwIfAborted();
    this.seq += 1n;
    const seq = this.seq;
    const answer = new Promise<Frame>((resolve, reject) => this.pending.set(seq, { resolve, reject }));
    // close() may reject it while the write is still on its way: handled below, not unhandled.
    void answer.catch(() => undefined);
    const onAbort = () => {
      const a = this.pending.get(seq);
      this.pending.delete(seq);
      a?.reject(asError(signal?.reason));
      this.closeIfDrained();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      try {
        await this.write({ ...f, seq });
      } catch (e) {
        if (e instanceof FrameError) {
          this.pending.delete(seq);
          throw e; // refused before sending: the connection stays
        }
        // The write failed: this call is lost like every call in flight, with
        // ConnectionLostError, once the reader has decided the cause (R37).
      }
      return await answer;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** close ends the connection once, remembering the first cause; calls in flight fail (R14). */
  close(err: Error): void {
    if (this.err) {
      return;
    }
    this.err = err;
    this.transport.close();
    if (this.heartbeat) {
      clearTimeout(this.heartbeat);
    }
    clearTimeout(this.writeFailureTimer);
    const lost = new ConnectionLostError(err);
    for (const a of this.pending.values()) {
      a.reject(lost);
    }
    this.pending.clear();
    this.handshakeDone.reject(err);
    this.endedResolve(err);
  }

  private onData(chunk: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      // A FrameError (length 0, above the limit, undecodable) is the cause as it is, so the
      // app can tell frame_too_large from other transport failures (R3).
      this.close(e instanceof FrameError ? e : new TransportError(`reading a frame: ${asError(e).message}`, { cause: e }));
      return;
    }
    for (const f of frames) {
      if (this.err) {
        return; // nothing after a fatal ERROR or a close (R37)
      }
      this.onFrame(f);
    }
  }

  private onFrame(f: Frame): void {
    if (!this.ack) {
      this.onHandshakeAnswer(f);
      return;
    }
    const b = f.body;
    switch (b.case) {
      case "response":
      case "pong":
      case "refreshAck": {
        const a = this.pending.get(f.seq);
        this.pending.delete(f.seq);
        a?.resolve(f);
        this.closeIfDrained();
        return;
      }
      case "push":
        // After GOAWAY the gateway queues no pushes; any that raced with it are replayed on
        // the next connection from the positions the client resumes with (R20).
        if (!this.goaway) {
          this.handlers.onPush(b.value, this);
        }
        return;
      case "refreshRequest":
        if (!this.refreshing) {
          this.refreshing = true;
          void this.handlers
            .onRefresh(this, b.value)
            .catch(() => undefined)
            .finally(() => {
              this.refreshing = false;
            });
        }
        return;
      case "goaway":
        if (!this.goaway) {
          this.goaway = b.value;
          this.handlers.onLeave(this);
          this.leavingResolve(b.value);
        }
        this.closeIfDrained();
        return;
      case "error":
        if (!b.value.fatal) {
          this.handlers.onRefused(b.value);
          return;
        }
        this.close(new ServerError(b.value.code, b.value.message));
        return;
      default:
        return; // frames a gateway does not send to clients: ignored
    }
  }

  private onHandshakeAnswer(f: Frame): void {
    const b = f.body;
    if (b.case === "handshakeAck") {
      this.ack = b.value;
      if (b.value.maxFrameBytes > 0) {
        this.sendLimit = Math.min(this.sendLimit, b.value.maxFrameBytes);
      }
      this.handlers.onAck(this);
      this.handshakeDone.resolve();
      this.scheduleHeartbeat(b.value.heartbeatIntervalMs);
      return;
    }
    if (b.case === "error") {
      this.close(new ServerError(b.value.code, b.value.message));
      return;
    }
    this.close(new TransportError(`expected HANDSHAKE_ACK, got ${b.case ?? "nothing"}`));
  }

  // After GOAWAY the connection stays until the calls already sent have their answers.
  private closeIfDrained(): void {
    if (this.goaway && this.pending.size === 0) {
      this.close(new GoAwayError(this.goaway));
    }
  }

  // scheduleHeartbeat pings every interval; a PONG not back within one interval ends the
  // connection (R10).
  private scheduleHeartbeat(everyMs: number): void {
    if (everyMs <= 0 || this.err) {
      return;
    }
    this.heartbeat = setTimeout(() => {
      this.call({ body: { case: "ping", value: { clientTimeMs: BigInt(Date.now()) } } }, AbortSignal.timeout(everyMs)).then(
        () => {
          this.scheduleHeartbeat(everyMs);
        },
        (e: unknown) => {
          // After a failed write the reader decides the cause (R37).
          if (!(e instanceof LeavingError) && !this.writeErr) {
            this.close(new TransportError(`heartbeat: ${asError(e).message}`, { cause: e }));
          }
        },
      );
    }, everyMs);
  }
}
