package io.tcpgateway.push;

import com.google.protobuf.InvalidProtocolBufferException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import tcpgateway.v1.DownlinkOuterClass.Receipt;

/**
 * Reads the receipts topic from its end, without a consumer group (every publisher sees every
 * receipt), and hands each receipt to the calls waiting for its message id. Positioned at the end
 * of every partition before the constructor returns, so no receipt of a later push is missed.
 */
final class ReceiptWatcher implements AutoCloseable {
  private final KafkaConsumer<byte[], byte[]> consumer;
  private final Map<String, Consumer<Receipt>> waiting = new ConcurrentHashMap<>();
  private final Thread thread;
  private volatile boolean closed;

  ReceiptWatcher(Properties base, String topic, Duration ready) {
    Properties p = new Properties();
    p.putAll(base);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
    consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    try {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, ready);
      if (infos == null || infos.isEmpty()) {
        throw new IllegalStateException("receipts topic " + topic + " has no partitions");
      }
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo i : infos) {
        parts.add(new TopicPartition(topic, i.partition()));
      }
      consumer.assign(parts);
      consumer.seekToEnd(parts);
      for (TopicPartition tp : parts) {
        consumer.position(tp, ready); // resolves the end now: later receipts come after it
      }
    } catch (RuntimeException e) {
      consumer.close();
      throw e;
    }
    thread = new Thread(this::run, "tcpgw-receipts-" + topic);
    thread.setDaemon(true);
    thread.start();
  }

  private void run() {
    try {
      while (!closed) {
        for (ConsumerRecord<byte[], byte[]> rec : consumer.poll(Duration.ofMillis(500))) {
          Receipt r;
          try {
            r = Receipt.parseFrom(rec.value() == null ? new byte[0] : rec.value());
          } catch (InvalidProtocolBufferException e) {
            continue; // not a receipt: another writer's record; nothing waits for it
          }
          Consumer<Receipt> w = waiting.get(r.getMessageId());
          if (w != null) {
            w.accept(r);
          }
        }
      }
    } catch (WakeupException e) {
      // closing
    } finally {
      consumer.close(Duration.ofSeconds(5));
    }
  }

  /** Registers interest in a message id until the returned handle is closed. */
  AutoCloseable watch(String messageId, Consumer<Receipt> onReceipt) {
    waiting.put(messageId, onReceipt);
    return () -> waiting.remove(messageId);
  }

  @Override
  public void close() throws InterruptedException {
    closed = true;
    consumer.wakeup();
    thread.join(10_000);
  }
}
