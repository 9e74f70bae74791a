package io.tcpgateway.push;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import tcpgateway.v1.DownlinkOuterClass.Downlink;
import tcpgateway.v1.DownlinkOuterClass.Receipt;

/**
 * The publisher against the real broker (TCPGW_KAFKA_BOOTSTRAP, exported by hack/test.sh). The
 * test plays the gateway: it reads the downlink records and writes the receipts a gateway would.
 */
@EnabledIfEnvironmentVariable(named = "TCPGW_KAFKA_BOOTSTRAP", matches = ".+")
@Timeout(120)
class PublisherKafkaTest {
  static final int PARTITIONS = 6;
  static String bootstrap;
  static String downlink;
  static String receiptsTopic;
  static Publisher pub;
  static final java.util.Map<String, ConsumerRecord<byte[], byte[]>> seen = new java.util.HashMap<>();
  static KafkaProducer<byte[], byte[]> gatewayWriter;
  static KafkaConsumer<byte[], byte[]> gatewayReader;

  @BeforeAll
  static void start() throws Exception {
    bootstrap = System.getenv("TCPGW_KAFKA_BOOTSTRAP");
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    downlink = "java-push-" + suffix + ".downlink";
    receiptsTopic = "java-push-" + suffix + ".receipts";
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(p)) {
      List<NewTopic> topics = new ArrayList<>();
      topics.add(new NewTopic(downlink, PARTITIONS, (short) 1));
      topics.add(new NewTopic(receiptsTopic, 3, (short) 1));
      admin.createTopics(topics).all().get(30, TimeUnit.SECONDS);
    }
    pub = Publisher.builder().bootstrapServers(bootstrap).topic(downlink).receiptsTopic(receiptsTopic).build();
    gatewayWriter = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    Properties c = new Properties();
    c.putAll(p);
    c.put("auto.offset.reset", "earliest");
    gatewayReader = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    List<TopicPartition> parts = new ArrayList<>();
    for (int i = 0; i < PARTITIONS; i++) {
      parts.add(new TopicPartition(downlink, i));
    }
    gatewayReader.assign(parts);
    gatewayReader.seekToBeginning(parts);
  }

  @AfterAll
  static void stop() throws Exception {
    if (pub != null) {
      pub.close();
    }
    if (gatewayWriter != null) {
      gatewayWriter.close();
    }
    if (gatewayReader != null) {
      gatewayReader.close();
    }
  }

  /** The next downlink record with this message id, as a gateway reads it (bounded wait). */
  static ConsumerRecord<byte[], byte[]> read(String messageId) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      ConsumerRecord<byte[], byte[]> r = seen.remove(messageId);
      if (r != null) {
        return r;
      }
      for (ConsumerRecord<byte[], byte[]> rec : gatewayReader.poll(Duration.ofMillis(200))) {
        seen.put(Downlink.parseFrom(rec.value()).getMessageId(), rec);
      }
    }
    throw new AssertionError("record " + messageId + " not read within 30s");
  }

  static void receipt(Receipt r) throws Exception {
    gatewayWriter.send(new ProducerRecord<>(receiptsTopic, r.getMessageId().getBytes(StandardCharsets.UTF_8), r.toByteArray()))
        .get(10, TimeUnit.SECONDS);
  }

  @Test
  void pushesAreKeyedAndPartitionedByUser() throws Exception {
    for (String user : new String[] {"alice", "bob", "u-42"}) {
      String id = pub.push(Message.to(Targets.session(user, "s-1")).payload("hi".getBytes(StandardCharsets.UTF_8))
          .correlationId("c-1").ttl(Duration.ofMinutes(1)).build()).get(30, TimeUnit.SECONDS);
      ConsumerRecord<byte[], byte[]> r = read(id);
      assertEquals(user, new String(r.key(), StandardCharsets.UTF_8));
      assertEquals(Partitioner.partition(user, PARTITIONS), r.partition(), "murmur2 partition of " + user);
      Downlink d = Downlink.parseFrom(r.value());
      assertEquals(Targets.session(user, "s-1"), d.getTarget());
      assertEquals("c-1", d.getCorrelationId());
      assertTrue(d.getExpiresAtMs() > d.getCreatedAtMs());
      assertTrue(!d.getAckRequired() && !d.getReplyExpected());
    }
  }

  @Test
  void pushAndWaitAckIgnoresOtherUsersAndCompletesOnTheTargetsAck() throws Exception {
    CompletableFuture<Receipt> acked = pub.pushAndWaitAck(Message.to(Targets.user("alice")).id("ack-1").build(), Duration.ofSeconds(30));
    Downlink d = Downlink.parseFrom(read("ack-1").value());
    assertTrue(d.getAckRequired());
    Receipt.Builder r = Receipt.newBuilder().setMessageId(d.getMessageId()).setKind(Receipt.Kind.KIND_ACKED).setSessionId("s-1");
    receipt(r.setUserId("mallory").build()); // not the target: ignored
    receipt(Receipt.newBuilder().setMessageId(d.getMessageId()).setKind(Receipt.Kind.KIND_DELIVERED).setUserId("alice").build());
    receipt(r.setUserId("alice").build());
    assertEquals("alice", acked.get(30, TimeUnit.SECONDS).getUserId());
  }

  @Test
  void requestGetsTheReplyOrExpires() throws Exception {
    CompletableFuture<byte[]> reply = pub.request(Message.to(Targets.group("vip")).id("req-1").build(), Duration.ofSeconds(30));
    Downlink d = Downlink.parseFrom(read("req-1").value());
    assertTrue(d.getReplyExpected());
    receipt(Receipt.newBuilder().setMessageId(d.getMessageId()).setKind(Receipt.Kind.KIND_REPLIED).setUserId("bob")
        .setPayload(ByteString.copyFromUtf8("yes")).build());
    assertArrayEquals("yes".getBytes(StandardCharsets.UTF_8), reply.get(30, TimeUnit.SECONDS));

    CompletableFuture<byte[]> expired = pub.request(Message.to(Targets.user("carol")).id("req-2").ttl(Duration.ofSeconds(1)).build(), Duration.ofSeconds(30));
    Downlink e = Downlink.parseFrom(read("req-2").value());
    receipt(Receipt.newBuilder().setMessageId(e.getMessageId()).setKind(Receipt.Kind.KIND_EXPIRED).setUserId("carol").build());
    ExecutionException x = assertThrows(ExecutionException.class, () -> expired.get(30, TimeUnit.SECONDS));
    assertInstanceOf(PushException.Expired.class, x.getCause());
  }

  @Test
  void noAnswerTimesOut() throws Exception {
    CompletableFuture<Receipt> f = pub.pushAndWaitAck(Message.to(Targets.all()).build(), Duration.ofMillis(500));
    ExecutionException x = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
    assertInstanceOf(PushException.Timeout.class, x.getCause());
  }

}
