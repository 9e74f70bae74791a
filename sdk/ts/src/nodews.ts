// The ws package's WebSocket for the WebSocket transport in Node.js (20 has no stable global
// WebSocket): its TCP or TLS socket is made here, so that a failed write leaves it readable
// (R37, as tcp.ts does for TCP) and wss:// trusts the app's TLS options. Node.js only.
import * as net from "node:net";
import * as tls from "node:tls";
import { DEFAULT_MAX_FRAME_BYTES, HEADER_LEN } from "./codec.js";
import { keepReadingAfterWriteError, tlsConnectOptions } from "./tcp.js";
import type { TlsOptions } from "./tcp.js";
import type { WebSocketConstructor, WebSocketLike } from "./websocket.js";

/** The options of the ws package's client this module gives it. */
export interface WsPackageClientOptions {
  /** Makes the connection's socket (ws calls it with the host, port and URL path). */
  createConnection: (options: { host?: string | null; port?: number | string | null }) => net.Socket;
  /** The largest message ws reads; it checks a frame's declared length before buffering. */
  maxPayload: number;
}

/** WsPackageWebSocket is the ws package's WebSocket class (`import WebSocket from "ws"`). */
export type WsPackageWebSocket = new (url: string, protocols: string | string[] | undefined, options: WsPackageClientOptions) => WebSocketLike;

/** WsPackageOptions adjust wsPackage. */
export interface WsPackageOptions {
  /** TLS for wss://, as the tls option for TCP (R2). Default: the system roots and the URL's host. */
  tls?: TlsOptions;
  /**
   * The largest frame body read, the Client's maxFrameBytes (default 65536): a message longer
   * than it and its length prefix ends the connection from its header, before it is buffered
   * (a transport error, "Max payload size exceeded"; ws sends close code 1009). The ws package
   * alone buffers up to 100 MiB per message.
   */
  maxFrameBytes?: number;
}

/**
 * wsPackage adapts the ws package's WebSocket class to webSocket.WebSocket. Its sockets stay
 * readable after a failed write, so the frames the gateway sent before a reset are still read
 * (R37: the fatal ERROR they may hold is the cause); the ws package alone would destroy the
 * socket with them. Messages are bounded by the frame limit before they are buffered.
 */
export function wsPackage(WebSocket: WsPackageWebSocket, options: WsPackageOptions = {}): WebSocketConstructor {
  const tlsOptions = options.tls ?? {};
  const maxPayload = (options.maxFrameBytes || DEFAULT_MAX_FRAME_BYTES) + HEADER_LEN;
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      const secure = new URL(url).protocol === "wss:";
      super(url, protocols, {
        createConnection: (o) => {
          const host = o.host ?? "";
          const port = Number(o.port);
          // ws passes the URL's path too: it must not become a Unix socket path.
          const socket = secure ? tls.connect({ host, port, ...tlsConnectOptions(host, tlsOptions) }) : net.connect({ host, port });
          keepReadingAfterWriteError(socket, () => undefined);
          return socket;
        },
        maxPayload,
      });
    }
  };
}
