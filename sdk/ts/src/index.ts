// @tcpgateway/client: the TypeScript SDK for tcpgateway, the Node.js (>= 20) entry point: TCP,
// TLS and WebSocket. Browsers get browser.ts (WebSocket only, no Node.js module).
export { Client, connect } from "./nodeclient.js";
export type { ClientOptions } from "./nodeclient.js";
export { ReceivedPush } from "./client.js";
export type { ClientEvents, ClientListeners, RequestOptions, ResumePosition, ResumeState, TokenSource } from "./client.js";
export { decodeResumeState, encodeResumeState } from "./resumestate.js";
export type { Backoff } from "./backoff.js";
export { AlreadyAnsweredError, ClosedError, ConnectionLostError, GoAwayError, NotRequestedError, ServerError, TokenSourceError, TransportError } from "./errors.js";
export { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError, PROTOCOL_VERSION, decodeBody, encodeFrame, reason } from "./codec.js";
export { SocketTransport, splitAddress, tcpTransport } from "./tcp.js";
export type { TlsOptions } from "./tcp.js";
export { wsPackage } from "./nodews.js";
export type { WsPackageClientOptions, WsPackageOptions, WsPackageWebSocket } from "./nodews.js";
export type { Transport, TransportFactory, TransportHandlers } from "./transport.js";
export { WEBSOCKET_SUBPROTOCOL, WebSocketTransport, webSocketTransport } from "./websocket.js";
export type { WebSocketCloseEvent, WebSocketConstructor, WebSocketLike, WebSocketMessageEvent, WebSocketOptions } from "./websocket.js";
export * from "./gen/tcpgateway/v1/protocol_pb.js";
