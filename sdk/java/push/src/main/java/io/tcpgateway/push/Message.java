package io.tcpgateway.push;

import com.google.protobuf.ByteString;
import java.security.SecureRandom;
import java.time.Duration;
import tcpgateway.v1.DownlinkOuterClass.Downlink;
import tcpgateway.v1.DownlinkOuterClass.Target;

/** One downlink message. Immutable; build with {@link #to(Target)}. */
public final class Message {
  private static final SecureRandom RND = new SecureRandom();

  final String id;
  final Target target;
  final byte[] payload;
  final String correlationId;
  final Duration ttl;

  private Message(Builder b) {
    this.id = b.id == null || b.id.isEmpty() ? newId() : b.id;
    this.target = b.target;
    this.payload = b.payload;
    this.correlationId = b.correlationId;
    this.ttl = b.ttl;
  }

  public static Builder to(Target target) {
    return new Builder(target);
  }

  public String id() {
    return id;
  }

  /** The Downlink record value, created now; ack/reply flags are set by the waiting calls. */
  Downlink downlink(long nowMs, boolean ackRequired, boolean replyExpected) {
    Downlink.Builder d = Downlink.newBuilder().setMessageId(id).setTarget(target).setPayload(ByteString.copyFrom(payload))
        .setCreatedAtMs(nowMs).setCorrelationId(correlationId).setAckRequired(ackRequired).setReplyExpected(replyExpected);
    if (ttl != null && !ttl.isZero() && !ttl.isNegative()) {
      d.setExpiresAtMs(nowMs + ttl.toMillis());
    }
    return d.build();
  }

  static String newId() {
    byte[] b = new byte[16];
    RND.nextBytes(b);
    StringBuilder s = new StringBuilder(32);
    for (byte x : b) {
      s.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
    }
    return s.toString();
  }

  /** Builds a {@link Message}. */
  public static final class Builder {
    private final Target target;
    private String id;
    private byte[] payload = new byte[0];
    private String correlationId = "";
    private Duration ttl;

    private Builder(Target target) {
      if (target == null || target.getKindCase() == Target.KindCase.KIND_NOT_SET) {
        throw new IllegalArgumentException("a message needs a target");
      }
      this.target = target;
    }

    /** The message id (unique end to end); default a random one. */
    public Builder id(String id) {
      this.id = id;
      return this;
    }

    public Builder payload(byte[] payload) {
      this.payload = payload.clone();
      return this;
    }

    public Builder correlationId(String id) {
      this.correlationId = id;
      return this;
    }

    /** Not delivered after now + ttl; default never expires. */
    public Builder ttl(Duration ttl) {
      this.ttl = ttl;
      return this;
    }

    public Message build() {
      return new Message(this);
    }
  }
}
