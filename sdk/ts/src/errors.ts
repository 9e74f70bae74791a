// Why a call failed or a connection ended. Each error has a `kind`, the same word the
// conformance driver protocol uses (test/conformance/DRIVER.md), so apps can switch on it.
import { reason } from "./codec.js";
import { GoAway_Reason } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { ErrorCode, GoAway } from "./gen/tcpgateway/v1/protocol_pb.js";

/** ServerError is a fatal ERROR frame: the gateway closed the connection after it. */
export class ServerError extends Error {
  override readonly name = "ServerError";
  readonly kind = "server_error";
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {
    super(`gateway closed the connection: ${reason_(code)}: ${reason}`);
  }
}
const reason_ = reason;

/** GoAwayError is the end of a connection the gateway told the client to leave. */
export class GoAwayError extends Error {
  override readonly name = "GoAwayError";
  readonly kind = "goaway";
  constructor(readonly goaway: GoAway) {
    super(`gateway sent GOAWAY ${(GoAway_Reason[goaway.reason] as string | undefined) ?? String(goaway.reason)} (reconnect in ${goaway.reconnectDelayMs}ms)`);
  }
  get replaced(): boolean {
    return this.goaway.reason === GoAway_Reason.REPLACED;
  }
}

/** ConnectionLostError fails a call whose connection ended before its answer (R14). */
export class ConnectionLostError extends Error {
  override readonly name = "ConnectionLostError";
  readonly kind = "connection_lost";
  constructor(override readonly cause: Error) {
    super(`connection lost before the response: ${cause.message}`);
  }
}

/** ClosedError: the app closed the client. */
export class ClosedError extends Error {
  override readonly name = "ClosedError";
  readonly kind = "closed";
  constructor() {
    super("client closed");
  }
}

/** TransportError: dial, TLS, I/O, a missed PONG or the handshake timeout. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  readonly kind = "transport";
}

/** TokenSourceError: the app's token source failed (retried with backoff, never a refusal). */
export class TokenSourceError extends Error {
  override readonly name = "TokenSourceError";
  readonly kind = "token_source";
  constructor(override readonly cause: unknown) {
    super(`token source: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/**
 * NotRequestedError: an ack of a push without ackRequired, or a reply to one without
 * replyExpected. The gateway would refuse it, so nothing was written (R19).
 */
export class NotRequestedError extends Error {
  override readonly name = "NotRequestedError";
  readonly kind = "not_requested";
  constructor(
    readonly answer: "ack" | "reply",
    readonly messageId: string,
  ) {
    super(`${answer} of push ${messageId}: the push did not ask for it`);
  }
}

/**
 * AlreadyAnsweredError: a second ack (or reply) of the same delivered push, or one racing the
 * first. The gateway accepts one answer of each kind, so nothing was written (R19).
 */
export class AlreadyAnsweredError extends Error {
  override readonly name = "AlreadyAnsweredError";
  readonly kind = "already_answered";
  constructor(
    readonly answer: "ack" | "reply",
    readonly messageId: string,
  ) {
    super(`${answer} of push ${messageId}: already answered`);
  }
}

/** asError makes anything thrown an Error. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
