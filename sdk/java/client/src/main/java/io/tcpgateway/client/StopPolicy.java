package io.tcpgateway.client;

import java.io.IOException;
import tcpgateway.v1.Protocol.ErrorCode;

/** Which failures stop the client for good (docs/client-behaviour.md R29). Pure functions. */
final class StopPolicy {
  /** The UNAUTHENTICATED message when the gateway's auth webhook could not answer. */
  static final String REASON_WEBHOOK_UNAVAILABLE = "webhook_unavailable";

  private StopPolicy() {}

  /**
   * Whether err (a closed session or a failed reconnect) stops the client, refusals being the
   * consecutive auth refusals so far: UNSUPPORTED_VERSION always; an auth refusal with a fixed
   * token, or after authAttempts of them with a token source (negative: never), but never
   * webhook_unavailable (the gateway's problem); nothing else (transport failures, token source
   * errors and every other code are retried).
   */
  static boolean stops(IOException err, boolean refreshable, int authAttempts, int refusals) {
    if (!(err instanceof Errors.ServerError)) {
      return false;
    }
    Errors.ServerError se = (Errors.ServerError) err;
    if (se.code() == ErrorCode.ERROR_CODE_UNSUPPORTED_VERSION) {
      return true;
    }
    if (!isAuthRefusal(err) || REASON_WEBHOOK_UNAVAILABLE.equals(se.gatewayMessage())) {
      return false;
    }
    if (!refreshable) {
      return true;
    }
    return authAttempts >= 0 && refusals >= authAttempts;
  }

  /** The gateway refused the token at the handshake, or closed the session as its token expired. */
  static boolean isAuthRefusal(IOException err) {
    if (!(err instanceof Errors.ServerError)) {
      return false;
    }
    ErrorCode c = ((Errors.ServerError) err).code();
    return c == ErrorCode.ERROR_CODE_UNAUTHENTICATED || c == ErrorCode.ERROR_CODE_TOKEN_EXPIRED;
  }
}
