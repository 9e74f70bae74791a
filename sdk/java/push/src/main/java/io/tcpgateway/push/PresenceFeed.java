package io.tcpgateway.push;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads every partition of a TCPGateway's events topic from its beginning (the start of its
 * retention) into a {@link Presence}, on a thread of its own, without a consumer group and
 * without committing: every feed sees every event, and a restarted feed rebuilds its view.
 * Partitions added to the topic later are picked up within twice {@link #PARTITION_RECHECK} (the
 * consumer's metadata is refreshed that often, and the feed looks at it that often).
 *
 * <pre>{@code
 * Presence presence = new Presence();
 * try (PresenceFeed feed = PresenceFeed.builder().bootstrapServers("kafka:9092")
 *     .topic("shop.chat.session-events").build(presence)) {
 *   feed.awaitCaughtUp(Duration.ofSeconds(30));
 *   for (Presence.Online o : presence.user("alice")) { ... o.serverId() ... }
 * }
 * }</pre>
 */
public final class PresenceFeed implements AutoCloseable {
  /** How often the feed looks for partitions added to the topic. */
  public static final Duration PARTITION_RECHECK = Duration.ofSeconds(10);

  private final KafkaConsumer<byte[], byte[]> consumer;
  private final Presence presence;
  private final String topic;
  private final Duration ready;
  private final Duration recheck;
  private final Thread thread;
  // Owned by the feed's thread once it runs (the constructor fills them before it starts).
  private final Set<TopicPartition> assigned = new HashSet<>();
  private final Map<TopicPartition, Long> startEnds = new HashMap<>();
  private final CountDownLatch caughtUp = new CountDownLatch(1);
  private volatile boolean closed;
  private volatile RuntimeException failure;

  private PresenceFeed(Builder b, Presence presence) {
    this.presence = presence;
    this.topic = b.topic;
    this.ready = b.readyTimeout;
    this.recheck = b.partitionRecheck;
    Properties p = new Properties();
    p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, b.bootstrapServers);
    p.put(CommonClientConfigs.CLIENT_ID_CONFIG, b.clientId);
    p.putAll(b.kafka);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    // An offset that retention deleted meanwhile: go on from what is still there.
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    // partitionsFor answers from the consumer's metadata, refreshed this often (5 min by
    // default): as often as the feed looks for added partitions.
    p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, Long.toString(recheck.toMillis()));
    consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    try {
      List<TopicPartition> parts = partitions();
      if (parts.isEmpty()) {
        throw new IllegalStateException("events topic " + topic + " has no partitions");
      }
      assign(parts);
      startEnds.putAll(consumer.endOffsets(parts, ready));
    } catch (RuntimeException e) {
      consumer.close(Duration.ZERO);
      throw e;
    }
    thread = new Thread(this::run, "tcpgw-presence-" + topic);
    thread.setDaemon(true);
    thread.start();
  }

  public static Builder builder() {
    return new Builder();
  }

  private List<TopicPartition> partitions() {
    List<PartitionInfo> infos = consumer.partitionsFor(topic, ready);
    List<TopicPartition> out = new ArrayList<>();
    if (infos != null) {
      for (PartitionInfo i : infos) {
        out.add(new TopicPartition(topic, i.partition()));
      }
    }
    return out;
  }

  /** Adds the new partitions to the assignment, each read from its beginning. */
  private void assign(List<TopicPartition> parts) {
    List<TopicPartition> added = new ArrayList<>();
    for (TopicPartition tp : parts) {
      if (assigned.add(tp)) {
        added.add(tp);
      }
    }
    if (added.isEmpty()) {
      return;
    }
    consumer.assign(new ArrayList<>(assigned));
    consumer.seekToBeginning(added);
  }

  private void run() {
    long nextRecheck = System.nanoTime() + recheck.toNanos();
    try {
      while (!closed) {
        for (ConsumerRecord<byte[], byte[]> rec : consumer.poll(Duration.ofMillis(500))) {
          presence.applyRecord(rec.value()); // a bad record is counted in stats() and skipped
        }
        if (caughtUp.getCount() > 0 && reachedStartEnds()) {
          caughtUp.countDown();
        }
        if (System.nanoTime() - nextRecheck > 0) {
          assign(partitions());
          nextRecheck = System.nanoTime() + recheck.toNanos();
        }
      }
    } catch (WakeupException e) {
      // closing
    } catch (RuntimeException e) {
      failure = e;
    } finally {
      consumer.close(Duration.ofSeconds(5));
    }
  }

  private boolean reachedStartEnds() {
    for (Map.Entry<TopicPartition, Long> e : startEnds.entrySet()) {
      if (consumer.position(e.getKey(), ready) < e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /**
   * Waits until every partition was read up to the end it had when the feed started: the view
   * then holds everything the topic held at that time. False when the time ran out or the feed
   * stopped (see {@link #failure()}).
   */
  public boolean awaitCaughtUp(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() - deadline < 0) {
      if (caughtUp.await(Math.min(100, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()) + 1), TimeUnit.MILLISECONDS)) {
        return true;
      }
      if (failure != null || !thread.isAlive()) {
        return false;
      }
    }
    return caughtUp.getCount() == 0;
  }

  /** What stopped the feed (e.g. the topic's authorization was revoked), or null while it runs. */
  public RuntimeException failure() {
    return failure;
  }

  @Override
  public void close() throws InterruptedException {
    closed = true;
    consumer.wakeup();
    thread.join(10_000);
  }

  public static final class Builder {
    private String bootstrapServers;
    private String topic;
    private String clientId = Publisher.DEFAULT_CLIENT_ID + "-presence";
    private final Properties kafka = new Properties();
    private Duration readyTimeout = Duration.ofSeconds(30);
    private Duration partitionRecheck = PARTITION_RECHECK;

    private Builder() {}

    public Builder bootstrapServers(String servers) {
      this.bootstrapServers = servers;
      return this;
    }

    /** The events topic (the TCPGateway's status.kafka.eventsTopic). */
    public Builder topic(String topic) {
      this.topic = topic;
      return this;
    }

    public Builder clientId(String id) {
      this.clientId = id;
      return this;
    }

    /**
     * A Kafka client setting for the consumer, e.g. {@code security.protocol=SASL_SSL}, {@code
     * sasl.mechanism=SCRAM-SHA-512}, {@code sasl.jaas.config}, {@code ssl.truststore.location}.
     */
    public Builder kafkaProperty(String name, String value) {
      kafka.put(name, value);
      return this;
    }

    /** How long the feed may take to find the topic's partitions and their ends. Default 30 s. */
    public Builder readyTimeout(Duration d) {
      this.readyTimeout = d;
      return this;
    }

    /** Tests shorten the recheck to see a grown topic picked up without waiting 10 s. */
    Builder partitionRecheck(Duration d) {
      this.partitionRecheck = d;
      return this;
    }

    /** Starts reading into presence. */
    public PresenceFeed build(Presence presence) {
      if (bootstrapServers == null || topic == null || presence == null) {
        throw new IllegalArgumentException("presence: bootstrap servers, topic and a Presence are required");
      }
      return new PresenceFeed(this, presence);
    }
  }
}
