package io.tcpgateway.push;

import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import tcpgateway.v1.DownlinkOuterClass.Downlink;
import tcpgateway.v1.DownlinkOuterClass.Receipt;

/**
 * Publishes downlink messages to a TCPGateway's Kafka topic — fire and forget, waiting for the
 * app's ack, or waiting for its reply — with the semantics of the Go push SDK (gateway/push).
 * Waiting calls correlate by message id through the receipts topic. Thread-safe.
 *
 * <pre>{@code
 * try (Publisher p = Publisher.builder().bootstrapServers("kafka:9092")
 *     .topic("ns.chat.downlink").receiptsTopic("ns.chat.receipts").build()) {
 *   p.push(Message.to(Targets.user("alice")).payload(bytes).build()).get();
 *   byte[] answer = p.request(Message.to(Targets.user("alice")).payload(q).build(), Duration.ofSeconds(10)).get();
 * }
 * }</pre>
 */
public final class Publisher implements AutoCloseable {
  /** The client id of the publisher's connections by default. */
  public static final String DEFAULT_CLIENT_ID = "tcpgateway-push";

  private final KafkaProducer<byte[], byte[]> producer;
  private final String topic;
  private final ReceiptWatcher receipts; // null without a receipts topic
  private final ScheduledExecutorService timers;

  private Publisher(Builder b) {
    this.topic = b.topic;
    Properties base = new Properties();
    base.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, b.bootstrapServers);
    base.put(CommonClientConfigs.CLIENT_ID_CONFIG, b.clientId);
    base.putAll(b.kafka); // TLS and SASL: security.protocol, ssl.*, sasl.* as Kafka names them
    Properties prod = new Properties();
    prod.putAll(base);
    // All in-sync replicas, idempotent: a push that completed is not lost or duplicated by a retry.
    prod.put(ProducerConfig.ACKS_CONFIG, "all");
    prod.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    // A lone push does not wait for company; concurrent pushes are still batched.
    prod.put(ProducerConfig.LINGER_MS_CONFIG, "1");
    prod.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    prod.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    producer = new KafkaProducer<>(prod, new ByteArraySerializer(), new ByteArraySerializer());
    try {
      receipts = b.receiptsTopic == null ? null : new ReceiptWatcher(base, b.receiptsTopic, b.readyTimeout);
    } catch (RuntimeException e) {
      producer.close(Duration.ZERO);
      throw e;
    }
    timers = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "tcpgw-push-timers");
      t.setDaemon(true);
      return t;
    });
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The record of a message: key (Targets.key), explicit partition (Partitioner), Downlink value. */
  ProducerRecord<byte[], byte[]> record(Downlink d) {
    String key = Targets.key(d.getTarget(), d.getMessageId());
    List<PartitionInfo> parts = producer.partitionsFor(topic);
    int partition = Partitioner.partition(key, parts.size());
    return new ProducerRecord<>(topic, partition, key.getBytes(java.nio.charset.StandardCharsets.UTF_8), d.toByteArray());
  }

  /** Publishes a message; completes with its id once Kafka stored it. */
  public CompletableFuture<String> push(Message m) {
    return send(m.downlink(System.currentTimeMillis(), false, false)).thenApply(v -> m.id());
  }

  private CompletableFuture<Void> send(Downlink d) {
    CompletableFuture<Void> f = new CompletableFuture<>();
    try {
      producer.send(record(d), (md, e) -> {
        if (e != null) {
          f.completeExceptionally(e);
        } else {
          f.complete(null);
        }
      });
    } catch (RuntimeException e) {
      f.completeExceptionally(e);
    }
    return f;
  }

  /**
   * Publishes a message the app must acknowledge and completes with the first ACKED receipt from
   * one of the target's sessions (receipts naming another user or session are ignored), or fails
   * with {@link PushException.Expired} or {@link PushException.Timeout}.
   */
  public CompletableFuture<Receipt> pushAndWaitAck(Message m, Duration timeout) {
    return await(m, timeout, true, Receipt.Kind.KIND_ACKED);
  }

  /** Publishes a message that expects the app's reply and completes with the reply's payload. */
  public CompletableFuture<byte[]> request(Message m, Duration timeout) {
    return await(m, timeout, false, Receipt.Kind.KIND_REPLIED).thenApply(r -> r.getPayload().toByteArray());
  }

  private CompletableFuture<Receipt> await(Message m, Duration timeout, boolean ack, Receipt.Kind want) {
    CompletableFuture<Receipt> result = new CompletableFuture<>();
    if (receipts == null) {
      result.completeExceptionally(new IllegalStateException("push: waiting calls need a receipts topic"));
      return result;
    }
    Downlink d = m.downlink(System.currentTimeMillis(), ack, !ack);
    // Watch before sending: a receipt can come back before send() returns.
    AutoCloseable watch = receipts.watch(d.getMessageId(), r -> {
      if (!Targets.fromTarget(d.getTarget(), r)) {
        return;
      }
      if (r.getKind() == want) {
        result.complete(r);
      } else if (r.getKind() == Receipt.Kind.KIND_EXPIRED) {
        result.completeExceptionally(new PushException.Expired(r));
      }
    });
    java.util.concurrent.ScheduledFuture<?> timer = timers.schedule(
        () -> result.completeExceptionally(new PushException.Timeout(d.getMessageId(), timeout.toMillis())),
        timeout.toMillis(), TimeUnit.MILLISECONDS);
    result.whenComplete((r, e) -> {
      timer.cancel(false);
      try {
        watch.close();
      } catch (Exception ignored) {
        // removing a map entry does not fail
      }
    });
    send(d).whenComplete((v, e) -> {
      if (e != null) {
        result.completeExceptionally(e);
      }
    });
    return result;
  }

  /** Flushes and stops the publisher. */
  @Override
  public void close() throws InterruptedException {
    if (receipts != null) {
      receipts.close();
    }
    producer.close(Duration.ofSeconds(10));
    timers.shutdownNow();
  }

  /** Configures a {@link Publisher}. */
  public static final class Builder {
    private String bootstrapServers;
    private String topic;
    private String receiptsTopic;
    private String clientId = DEFAULT_CLIENT_ID;
    private final Properties kafka = new Properties();
    private Duration readyTimeout = Duration.ofSeconds(30);

    private Builder() {}

    public Builder bootstrapServers(String servers) {
      this.bootstrapServers = servers;
      return this;
    }

    /** The downlink topic (default "&lt;namespace&gt;.&lt;name&gt;.downlink"). */
    public Builder topic(String topic) {
      this.topic = topic;
      return this;
    }

    /** The receipts topic; needed only by the waiting calls. */
    public Builder receiptsTopic(String topic) {
      this.receiptsTopic = topic;
      return this;
    }

    public Builder clientId(String id) {
      this.clientId = id;
      return this;
    }

    /**
     * A Kafka client setting for the producer and the receipts reader, e.g. {@code
     * security.protocol=SASL_SSL}, {@code sasl.mechanism=SCRAM-SHA-512}, {@code
     * sasl.jaas.config}, {@code ssl.truststore.location}.
     */
    public Builder kafkaProperty(String name, String value) {
      kafka.put(name, value);
      return this;
    }

    /** How long the receipts reader may take to find the end of every partition. Default 30 s. */
    public Builder readyTimeout(Duration d) {
      this.readyTimeout = d;
      return this;
    }

    public Publisher build() {
      if (bootstrapServers == null || topic == null) {
        throw new IllegalArgumentException("push: bootstrap servers and topic are required");
      }
      return new Publisher(this);
    }
  }
}
