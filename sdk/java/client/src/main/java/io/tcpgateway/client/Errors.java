package io.tcpgateway.client;

import java.io.IOException;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.GoAway;

/** The typed failures of the client: why a connection ended, a call failed or the client stopped. */
public final class Errors {
  private Errors() {}

  /** The lower-case name of a code without its prefix, as in the gateway's logs and metrics. */
  public static String reason(ErrorCode code) {
    return code.name().replaceFirst("^ERROR_CODE_", "").toLowerCase(java.util.Locale.ROOT);
  }

  /** A fatal ERROR frame: the gateway closed the connection after it. */
  public static final class ServerError extends IOException {
    private static final long serialVersionUID = 1L;
    private final ErrorCode code;
    private final String gatewayMessage;

    public ServerError(ErrorCode code, String message) {
      super("gateway closed the connection: " + reason(code) + ": " + message);
      this.code = code;
      this.gatewayMessage = message;
    }

    public ErrorCode code() {
      return code;
    }

    /** The gateway's message; for UNAUTHENTICATED the reason, e.g. {@code expired_token}. */
    public String gatewayMessage() {
      return gatewayMessage;
    }
  }

  /**
   * The gateway told the client to leave the connection (DRAINING, REBALANCE: {@link #goAway()}
   * names the reason) or that it was replaced.
   */
  public static final class GoAwayError extends IOException {
    private static final long serialVersionUID = 1L;
    private final transient GoAway goAway;

    public GoAwayError(GoAway g) {
      super("gateway sent GOAWAY " + g.getReason() + " (reconnect in " + g.getReconnectDelayMs() + "ms)");
      this.goAway = g;
    }

    public GoAway goAway() {
      return goAway;
    }

    public GoAway.Reason reason() {
      return goAway.getReason();
    }
  }

  /** A call whose connection ended before its answer: whether the backend saw it is unknown (R14). */
  public static final class ConnectionLost extends IOException {
    private static final long serialVersionUID = 1L;

    public ConnectionLost(Throwable cause) {
      super("connection lost before the answer: " + cause.getMessage(), cause);
    }
  }

  /** The app closed the client (R40). */
  public static final class Closed extends IOException {
    private static final long serialVersionUID = 1L;

    public Closed() {
      super("client closed");
    }
  }

  /** The token source failed (retried with backoff; not a refusal). */
  public static final class TokenSourceFailed extends IOException {
    private static final long serialVersionUID = 1L;

    public TokenSourceFailed(Throwable cause) {
      super("token source: " + cause, cause);
    }
  }

  /**
   * An ack of a push without {@code ack_required}, or a reply to one without {@code
   * reply_expected}: the gateway would refuse it, so nothing was written (R19).
   */
  public static final class NotRequested extends IOException {
    private static final long serialVersionUID = 1L;

    public NotRequested(String answer, String messageId) {
      super(answer + " of push " + messageId + ": the push did not ask for it");
    }
  }

  /**
   * A second ack (or reply) of the same delivered push, or one racing the first: the gateway
   * accepts one answer of each kind, so nothing was written (R19).
   */
  public static final class AlreadyAnswered extends IOException {
    private static final long serialVersionUID = 1L;

    public AlreadyAnswered(String answer, String messageId) {
      super(answer + " of push " + messageId + ": already answered");
    }
  }

  /** A call that did not complete within its deadline. */
  public static final class Timeout extends IOException {
    private static final long serialVersionUID = 1L;

    public Timeout(String what) {
      super(what);
    }
  }

  /** A call on a connection told to go away: it was not sent and goes on the next connection. */
  static final class Leaving extends IOException {
    private static final long serialVersionUID = 1L;

    Leaving() {
      super("connection is going away");
    }
  }
}
