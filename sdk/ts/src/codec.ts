// The wire format: frames are a 4-byte big-endian length, then a protobuf Frame of exactly
// that many bytes (proto/tcpgateway/v1/protocol.proto). No I/O here: the transport hands the
// decoder whatever chunks the socket produced.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ErrorCode, FrameSchema } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { Frame } from "./gen/tcpgateway/v1/protocol_pb.js";

/** The protocol version this SDK speaks (Handshake.protocol_version). */
export const PROTOCOL_VERSION = 2;
/** Size of the big-endian length prefix. */
export const HEADER_LEN = 4;
/** The gateway's default max_frame_bytes, and this SDK's default limit for inbound frames. */
export const DEFAULT_MAX_FRAME_BYTES = 65536;

/** The reason string of an ErrorCode, as the gateway writes it in logs and metrics ("frame_too_large"). */
export function reason(code: ErrorCode): string {
  const name = ErrorCode[code] as string | undefined;
  if (name === undefined) {
    return `error_code_${code}`;
  }
  return name.replace(/^ERROR_CODE_/, "").toLowerCase();
}

/** FrameError is a violation of the framing rules, by either side. */
export class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(
    readonly code: ErrorCode.BAD_FRAME | ErrorCode.FRAME_TOO_LARGE,
    readonly detail: string,
  ) {
    super(`${reason(code)}: ${detail}`);
  }
  /** "frame_too_large" or "bad_frame", like the other errors' kind. */
  get kind(): string {
    return reason(this.code);
  }
}

/** encodeFrame returns f with its length prefix; it refuses a body above maxBody. */
export function encodeFrame(f: Frame | MessageInitShape<typeof FrameSchema>, maxBody: number): Uint8Array {
  const body = toBinary(FrameSchema, create(FrameSchema, f));
  if (body.length > maxBody) {
    throw new FrameError(ErrorCode.FRAME_TOO_LARGE, `outbound frame of ${body.length} bytes exceeds ${maxBody}`);
  }
  const out = new Uint8Array(HEADER_LEN + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, HEADER_LEN);
  return out;
}

/** decodeBody decodes one frame body (no prefix); a frame must have a body. */
export function decodeBody(body: Uint8Array): Frame {
  let f: Frame;
  try {
    f = fromBinary(FrameSchema, body);
  } catch (e) {
    throw new FrameError(ErrorCode.BAD_FRAME, e instanceof Error ? e.message : String(e));
  }
  if (f.body.case === undefined) {
    throw new FrameError(ErrorCode.BAD_FRAME, "frame has no body");
  }
  return f;
}

/** bodyLength reads and checks a length prefix: never 0, never above maxBody. */
export function bodyLength(head: Uint8Array, maxBody: number): number {
  const n = new DataView(head.buffer, head.byteOffset, HEADER_LEN).getUint32(0, false);
  if (n === 0) {
    throw new FrameError(ErrorCode.BAD_FRAME, "empty frame");
  }
  if (n > maxBody) {
    throw new FrameError(ErrorCode.FRAME_TOO_LARGE, `frame of ${n} bytes exceeds ${maxBody}`);
  }
  return n;
}

/**
 * FrameDecoder reassembles frames from chunks split anywhere. The length prefix is checked
 * against maxBody as soon as its 4 bytes are in, before the body is waited for or allocated,
 * so a hostile peer cannot make the client buffer more than one max-size frame. After it has
 * thrown, the stream is unusable: the caller closes the connection.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private need = -1; // body length of the frame in progress, -1 before its prefix

  constructor(private readonly maxBody: number) {}

  /** push adds a chunk and returns the frames it completed, in order. */
  push(chunk: Uint8Array): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Frame[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < HEADER_LEN) {
          return out;
        }
        this.need = bodyLength(this.take(HEADER_LEN), this.maxBody);
      }
      if (this.buffered < this.need) {
        return out;
      }
      const body = this.take(this.need);
      this.need = -1;
      out.push(decodeBody(body));
    }
  }

  /** pending is how many bytes are held for frames not yet complete. */
  get pending(): number {
    return this.buffered;
  }

  // take removes the first n buffered bytes (n <= buffered).
  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const head = first.subarray(0, n);
      if (first.length === n) {
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
      }
      this.buffered -= n;
      return head;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      if (c === undefined) {
        throw new Error("FrameDecoder: internal error: fewer bytes than counted");
      }
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) {
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
