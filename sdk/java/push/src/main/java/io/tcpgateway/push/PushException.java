package io.tcpgateway.push;

import tcpgateway.v1.DownlinkOuterClass.Receipt;

/** Why a waiting call did not get its ack or reply. */
public class PushException extends Exception {
  private static final long serialVersionUID = 1L;

  PushException(String message, Throwable cause) {
    super(message, cause);
  }

  /** No ack or reply before the deadline; the message may still be delivered until it expires. */
  public static final class Timeout extends PushException {
    private static final long serialVersionUID = 1L;

    Timeout(String messageId, long ms) {
      super("push: no answer to message " + messageId + " within " + ms + "ms", null);
    }
  }

  /** The message expired unanswered (not delivered in time, or delivered and not answered). */
  public static final class Expired extends PushException {
    private static final long serialVersionUID = 1L;
    private final transient Receipt receipt;

    Expired(Receipt r) {
      super("push: message " + r.getMessageId() + " expired unanswered", null);
      this.receipt = r;
    }

    public Receipt receipt() {
      return receipt;
    }
  }
}
