package io.tcpgateway.client;

import java.util.concurrent.CompletableFuture;
import tcpgateway.v1.Protocol.Push;

/** A push delivered to the app, with the means to answer it on its client. */
public final class ReceivedPush {
  private final Client client;
  private final Push push;

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

  /** Sends PUSH_ACK with the push's position (R19); completes once written. */
  public CompletableFuture<Void> ack() {
    return client.ack(push);
  }

  /** Sends PUSH_REPLY with the app's reply and the push's position (R19); completes once written. */
  public CompletableFuture<Void> reply(byte[] payload) {
    return client.reply(push, payload);
  }

  @Override
  public String toString() {
    return "Push{" + push.getMessageId() + " @" + push.getPosition().getPartition() + ":" + push.getPosition().getOffset() + "}";
  }
}
