package io.tcpgateway.push;

import tcpgateway.v1.DownlinkOuterClass.Receipt;
import tcpgateway.v1.DownlinkOuterClass.SessionTarget;
import tcpgateway.v1.DownlinkOuterClass.Target;

/** Who a message is for, and the record key that keeps one user's records in one partition. */
public final class Targets {
  private Targets() {}

  /** Every session of a user (all devices). */
  public static Target user(String userId) {
    return Target.newBuilder().setUserId(userId).build();
  }

  /** One session of a user (session ids are chosen per user). */
  public static Target session(String userId, String sessionId) {
    return Target.newBuilder().setSession(SessionTarget.newBuilder().setUserId(userId).setSessionId(sessionId)).build();
  }

  /** Every session whose token carried the group tag. */
  public static Target group(String name) {
    return Target.newBuilder().setGroup(name).build();
  }

  /** Every session on every gateway pod. */
  public static Target all() {
    return Target.newBuilder().setAll(true).build();
  }

  /**
   * The record key (downlink.proto): the user id for user and session targets, so that all
   * records of one user land in one partition in order; the group for group targets; the
   * message id for broadcasts.
   */
  public static String key(Target t, String messageId) {
    switch (t.getKindCase()) {
      case USER_ID:
        return t.getUserId();
      case SESSION:
        return t.getSession().getUserId();
      case GROUP:
        return t.getGroup();
      default:
        return messageId;
    }
  }

  /**
   * Whether a receipt was written for a session the target selects, as far as the receipt
   * shows: the user of a user target, the (user, session) of a session target. Receipts carry no
   * group tags, so group and broadcast receipts pass (the gateways accept answers only from
   * sessions a push was sent to).
   */
  public static boolean fromTarget(Target t, Receipt r) {
    switch (t.getKindCase()) {
      case USER_ID:
        return r.getUserId().equals(t.getUserId());
      case SESSION:
        return r.getUserId().equals(t.getSession().getUserId()) && r.getSessionId().equals(t.getSession().getSessionId());
      default:
        return true;
    }
  }
}
