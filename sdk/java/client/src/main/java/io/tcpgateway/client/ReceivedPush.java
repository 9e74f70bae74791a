package io.tcpgateway.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import tcpgateway.v1.Protocol.Push;

/**
 * A push delivered to the app, with the means to answer it on its client. It refuses locally,
 * writing nothing, the answers the gateway would refuse (client-behaviour.md R19): each refused
 * answer counts toward the gateway's {@code limits.refusedAnswers}, so sending them would let an
 * app's double tap close its session. The marks live on this object, not in a table of the
 * client: a push delivered before a reconnect can still be answered after it (only the gateway
 * knows whether its window still holds it). Thread-safe: of two answers of one kind racing,
 * exactly one is written.
 */
public final class ReceivedPush {
  private final Client client;
  private final Push push;
  /** Taken by the first ack, given back if its write failed (nothing reached the gateway). */
  private final AtomicBoolean acked = new AtomicBoolean();
  /** Taken by the first reply, given back if its write failed. */
  private final AtomicBoolean replied = new AtomicBoolean();

  ReceivedPush(Client client, Push push) {
    this.client = client;
    this.push = push;
  }

  /** The PUSH frame's message: id, payload, position, flags, expiry, correlation id. */
  public Push push() {
    return push;
  }

  public String messageId() {
    return push.getMessageId();
  }

  public byte[] payload() {
    return push.getPayload().toByteArray();
  }

  public boolean ackRequired() {
    return push.getAckRequired();
  }

  public boolean replyExpected() {
    return push.getReplyExpected();
  }

  /**
   * Sends PUSH_ACK with the push's position (R19); completes once written. Fails with {@link
   * Errors.NotRequested} for a push without {@code ack_required} and with {@link
   * Errors.AlreadyAnswered} after an earlier ack (or while one is being written), writing nothing.
   * An ack whose write failed leaves the push unanswered: the app may ack it again.
   */
  public CompletableFuture<Void> ack() {
    if (!push.getAckRequired()) {
      return failed(new Errors.NotRequested("ack", push.getMessageId()));
    }
    return answer(acked, "ack", () -> client.writeAck(push));
  }

  /**
   * Sends PUSH_REPLY with the app's reply and the push's position (R19); completes once written.
   * Refuses like {@link #ack()}: {@link Errors.NotRequested} for a push without {@code
   * reply_expected}, {@link Errors.AlreadyAnswered} after an earlier reply.
   */
  public CompletableFuture<Void> reply(byte[] payload) {
    if (!push.getReplyExpected()) {
      return failed(new Errors.NotRequested("reply", push.getMessageId()));
    }
    return answer(replied, "reply", () -> client.writeReply(push, payload));
  }

  private CompletableFuture<Void> answer(AtomicBoolean mark, String kind, java.util.function.Supplier<CompletableFuture<Void>> write) {
    if (!mark.compareAndSet(false, true)) {
      return failed(new Errors.AlreadyAnswered(kind, push.getMessageId()));
    }
    CompletableFuture<Void> written;
    try {
      written = write.get();
    } catch (RuntimeException e) {
      mark.set(false);
      throw e;
    }
    return written.whenComplete((v, e) -> {
      if (e != null) {
        mark.set(false);
      }
    });
  }

  private static CompletableFuture<Void> failed(Throwable e) {
    CompletableFuture<Void> f = new CompletableFuture<>();
    f.completeExceptionally(e);
    return f;
  }

  @Override
  public String toString() {
    return "Push{" + push.getMessageId() + " @" + push.getPosition().getPartition() + ":" + push.getPosition().getOffset() + "}";
  }
}
