// @tcpgateway/client: the TypeScript SDK for tcpgateway (Node.js >= 20).
export { Client, ReceivedPush, connect } from "./client.js";
export type { ClientEvents, ClientListeners, ClientOptions, RequestOptions, ResumePosition, ResumeState, TokenSource } from "./client.js";
export { decodeResumeState, encodeResumeState } from "./resumestate.js";
export type { Backoff } from "./backoff.js";
export { AlreadyAnsweredError, ClosedError, ConnectionLostError, GoAwayError, NotRequestedError, ServerError, TokenSourceError, TransportError } from "./errors.js";
export { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError, PROTOCOL_VERSION, decodeBody, encodeFrame, reason } from "./codec.js";
export { SocketTransport, tcpTransport } from "./transport.js";
export type { TlsOptions, Transport, TransportFactory, TransportHandlers } from "./transport.js";
export * from "./gen/tcpgateway/v1/protocol_pb.js";
