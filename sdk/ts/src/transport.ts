// Transports carry the frames of one connection. The client needs only this interface (no
// Node.js module is reachable from here: the browser entry point uses it): TCP and TLS are in
// tcp.ts (node:net, node:tls), WebSocket in websocket.ts (the standard WebSocket API).

/**
 * What a transport reports, in order: data chunks, then exactly one end. A failed write does
 * not end the stream: what was received before the end is still delivered (R37).
 */
export interface TransportHandlers {
  /** Bytes of the stream: any piece of it over TCP, one whole frame per WebSocket message. */
  data(chunk: Uint8Array): void;
  /** The stream ended: err is undefined for a clean end of stream (FIN). */
  end(err?: Error): void;
}

/** Transport is one open connection to a gateway. */
export interface Transport {
  /** start begins delivering events; nothing is delivered (or lost) before it. */
  start(handlers: TransportHandlers): void;
  /**
   * write sends one whole frame (length prefix included: the client never splits a frame
   * across writes nor joins two, so a WebSocket transport sends each as one message), in order;
   * it rejects when it could not be sent or the transport ended or was closed. After a failed
   * write the transport goes on reading until the stream ends (R37).
   */
  write(data: Uint8Array): Promise<void>;
  /** close ends the connection; idempotent. No event follows it. */
  close(): void;
}

/** TransportFactory opens a transport to address; it must give up when signal aborts. */
export type TransportFactory = (address: string, signal: AbortSignal) => Promise<Transport>;
