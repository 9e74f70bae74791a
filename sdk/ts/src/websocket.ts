// The WebSocket transport, on the standard WebSocket API: a browser's WebSocket, Node.js's
// global one (Node >= 22) or any constructor with the same API (the ws package's in Node 20).
// Every message is binary and carries exactly one frame with its length prefix, the very bytes
// TCP would carry (docs/client-behaviour.md, "WebSocket transport"), so the frame decoder is
// the one TCP uses. No Node.js module is reachable from here (the browser entry point uses it).
import { HEADER_LEN } from "./codec.js";
import { TransportError } from "./errors.js";
import type { Transport, TransportFactory, TransportHandlers } from "./transport.js";

/** The subprotocol the SDK offers by default; the gateway selects it. */
export const WEBSOCKET_SUBPROTOCOL = "tcpgw.v2";

/** The parts of a WebSocket message event the transport reads. */
export interface WebSocketMessageEvent {
  readonly data: unknown;
}
/** The parts of a WebSocket close event the transport reads. */
export interface WebSocketCloseEvent {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/**
 * WebSocketLike is the part of the WHATWG WebSocket API the transport uses; a browser's
 * WebSocket and the ws package's implement it.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (ev: WebSocketMessageEvent) => void): void;
  addEventListener(type: "error", listener: (ev: unknown) => void): void;
  addEventListener(type: "close", listener: (ev: WebSocketCloseEvent) => void): void;
}

/** WebSocketConstructor makes a WebSocket as `new WebSocket(url, protocols)` does. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WebSocketOptions adjust the WebSocket transport. */
export interface WebSocketOptions {
  /**
   * The WebSocket constructor. Default: globalThis.WebSocket (browsers, Node.js >= 22). Node.js
   * 20 has no stable global one: pass the ws package's (`import WebSocket from "ws"`); for wss://
   * to a private CA, a subclass of it that passes `{ ca }` to its constructor.
   */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols to offer. Default ["tcpgw.v2"], which the gateway selects; [] offers none. */
  protocols?: string[];
}

/** OPEN is WebSocket.OPEN (the constant is not on every implementation's instances). */
const OPEN = 1;
/** Codes of a close the gateway meant (normal, going away, no status): a clean end, like FIN. */
const CLEAN_CLOSE_CODES = new Set([1000, 1001, 1005]);

/** isWebSocketAddress tells a ws:// or wss:// URL from a host:port. */
export function isWebSocketAddress(address: string): boolean {
  return /^wss?:\/\//i.test(address);
}

/** webSocketUrl checks that address is a ws:// or wss:// URL without a fragment. */
export function webSocketUrl(address: string): string {
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    throw new TransportError(`address ${JSON.stringify(address)} is not a ws:// or wss:// URL`);
  }
  if ((u.protocol !== "ws:" && u.protocol !== "wss:") || u.hash !== "" || address.includes("#")) {
    throw new TransportError(`address ${JSON.stringify(address)} is not a ws:// or wss:// URL without a fragment`);
  }
  return u.href;
}

/**
 * messageFrame checks that message is exactly one frame: its length prefix names the rest of
 * it. It returns "one", "short" (the prefix names more bytes than follow: a partial frame) or
 * "bad" (fewer than 4 bytes, or more than one frame's bytes).
 */
export function messageFrame(message: Uint8Array): "one" | "short" | "bad" {
  if (message.length < HEADER_LEN) {
    return "bad";
  }
  const declared = new DataView(message.buffer, message.byteOffset, HEADER_LEN).getUint32(0, false);
  const rest = message.length - HEADER_LEN;
  if (declared === rest) {
    return "one";
  }
  return declared > rest ? "short" : "bad";
}

/** describe is what an error event says: the ws package's carry a message, browsers' nothing. */
function describe(ev: unknown): string {
  if (typeof ev === "object" && ev !== null && "message" in ev && typeof ev.message === "string" && ev.message !== "") {
    return ev.message;
  }
  return "websocket error";
}

/** closeCause maps a close event to the stream's end: undefined for a clean end (R37 reads on to it). */
export function closeCause(ev: WebSocketCloseEvent, error?: string): Error | undefined {
  if (ev.wasClean && CLEAN_CLOSE_CODES.has(ev.code)) {
    return undefined;
  }
  const why = ev.reason !== "" ? ` ${ev.reason}` : error !== undefined ? ` (${error})` : "";
  return new TransportError(`websocket closed: ${ev.code}${why}`);
}

/**
 * WebSocketTransport adapts an open (or opening) WebSocket. Messages that arrive before start
 * are kept and delivered by it. A write is one binary message; it fails once the socket is no
 * longer open, and the messages that arrived before the close are still delivered (R37).
 */
export class WebSocketTransport implements Transport {
  /** Resolves when the socket opened; rejects with why it never did. */
  readonly opened: Promise<void>;
  private handlers: TransportHandlers | undefined;
  private early: Uint8Array[] = [];
  private ended: { err: Error | undefined } | undefined;
  private endReported = false;
  private closed = false;
  /** A message broke the wire format: nothing after it is delivered. */
  private broken = false;
  private error: string | undefined;

  constructor(private readonly ws: WebSocketLike) {
    ws.binaryType = "arraybuffer";
    let open!: () => void;
    let fail!: (e: Error) => void;
    let isOpen = false;
    this.opened = new Promise((resolve, reject) => {
      open = resolve;
      fail = reject;
    });
    void this.opened.catch(() => undefined); // the factory reports it
    ws.addEventListener("open", () => {
      isOpen = true;
      open();
    });
    ws.addEventListener("message", (ev) => {
      this.onMessage(ev.data);
    });
    ws.addEventListener("error", (ev) => {
      this.error ??= describe(ev);
      if (!isOpen) {
        fail(new Error(this.error));
      }
    });
    ws.addEventListener("close", (ev) => {
      const cause = closeCause(ev, this.error);
      if (!isOpen) {
        fail(cause ?? new Error(`websocket closed: ${ev.code}`));
      }
      this.finish(cause);
    });
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    for (let m = this.early.shift(); m && !this.closed && !this.broken; m = this.early.shift()) {
      this.deliver(m, handlers);
    }
    this.early = [];
    if (this.ended && !this.closed && !this.endReported) {
      this.endReported = true;
      handlers.end(this.ended.err);
    }
  }

  write(data: Uint8Array): Promise<void> {
    if (this.closed || this.ended || this.ws.readyState !== OPEN) {
      return Promise.reject(new TransportError("write on a closed connection"));
    }
    try {
      this.ws.send(data);
    } catch (e) {
      return Promise.reject(new TransportError(`write: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    }
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    try {
      this.ws.close(1000);
    } catch {
      // Closing a socket that is already closing or closed: nothing left to do.
    }
  }

  private onMessage(data: unknown): void {
    if (this.closed || this.ended || this.broken) {
      return;
    }
    if (!(data instanceof ArrayBuffer)) {
      this.fail("a text message: the gateway sends binary messages only");
      return;
    }
    const m = new Uint8Array(data);
    if (this.handlers) {
      this.deliver(m, this.handlers);
    } else {
      this.early.push(m);
    }
  }

  // deliver hands a message to the decoder if it is exactly one frame. A partial one gives the
  // decoder its length prefix first, so that a prefix above the limit is frame_too_large (R3),
  // as over TCP; either way the stream then ends.
  private deliver(m: Uint8Array, handlers: TransportHandlers): void {
    switch (messageFrame(m)) {
      case "one":
        handlers.data(m);
        return;
      case "short":
        handlers.data(m.subarray(0, HEADER_LEN));
        if (!this.closed) {
          this.fail(`a message of ${m.length} bytes holds part of a frame`);
        }
        return;
      case "bad":
        this.fail(`a message of ${m.length} bytes is not one frame`);
        return;
    }
  }

  // fail ends the stream for a message that breaks the wire format, closing the socket.
  private fail(why: string): void {
    const err = new TransportError(`websocket: ${why}`);
    this.broken = true;
    try {
      // Browsers allow a client only 1000 and 3000-4999: the reason says what was wrong.
      this.ws.close(1000, "bad message");
    } catch {
      // already closing
    }
    this.finish(err);
  }

  private finish(err: Error | undefined): void {
    if (this.ended) {
      return;
    }
    this.ended = { err };
    if (this.handlers && !this.closed) {
      this.endReported = true;
      this.handlers.end(err);
    }
  }
}

/** globalWebSocket is the runtime's own WebSocket constructor, if it has one. */
function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/**
 * webSocketTransport dials ws:// and wss:// URLs (the address is the whole URL, path
 * included, e.g. "wss://gw.example.com/tcpgw"). It throws a TypeError without a WebSocket
 * constructor (none given and no global one).
 */
export function webSocketTransport(options: WebSocketOptions = {}): TransportFactory {
  const Ctor = options.WebSocket ?? globalWebSocket();
  if (!Ctor) {
    throw new TypeError("tcpgateway: no WebSocket constructor: this runtime has no global WebSocket (Node.js 20): give webSocket.WebSocket, e.g. the ws package's");
  }
  const protocols = options.protocols ?? [WEBSOCKET_SUBPROTOCOL];
  return (address, signal) =>
    new Promise<Transport>((resolve, reject) => {
      const dialFailed = (why: string, cause?: unknown) => new TransportError(`dial ${address}: ${why}`, { cause });
      if (signal.aborted) {
        reject(dialFailed("timed out"));
        return;
      }
      let t: WebSocketTransport;
      try {
        t = new WebSocketTransport(new Ctor(webSocketUrl(address), protocols));
      } catch (e) {
        reject(e instanceof TransportError ? e : dialFailed(e instanceof Error ? e.message : String(e), e));
        return;
      }
      const onAbort = () => {
        t.close();
        reject(dialFailed("timed out"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      t.opened.then(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve(t);
        },
        (e: unknown) => {
          signal.removeEventListener("abort", onAbort);
          t.close();
          reject(dialFailed(e instanceof Error ? e.message : String(e), e));
        },
      );
    });
}
