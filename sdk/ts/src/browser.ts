// @tcpgateway/client/browser: the TypeScript SDK for browsers (and any runtime with the
// standard WebSocket API). WebSocket only: addresses are ws:// or wss:// URLs. No Node.js
// module is reachable from here (test/browser.test.ts checks the import graph).
export { Client, ReceivedPush, connect } from "./client.js";
export type { ClientEvents, ClientListeners, ClientOptions, RequestOptions, ResumePosition, ResumeState, TokenSource } from "./client.js";
export { decodeResumeState, encodeResumeState } from "./resumestate.js";
export type { Backoff } from "./backoff.js";
export { AlreadyAnsweredError, ClosedError, ConnectionLostError, GoAwayError, NotRequestedError, ServerError, TokenSourceError, TransportError } from "./errors.js";
export { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError, PROTOCOL_VERSION, decodeBody, encodeFrame, reason } from "./codec.js";
export type { Transport, TransportFactory, TransportHandlers } from "./transport.js";
export { WEBSOCKET_SUBPROTOCOL, WebSocketTransport, webSocketTransport } from "./websocket.js";
export type { WebSocketCloseEvent, WebSocketConstructor, WebSocketLike, WebSocketMessageEvent, WebSocketOptions } from "./websocket.js";
export * from "./gen/tcpgateway/v1/protocol_pb.js";
