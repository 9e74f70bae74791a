package io.tcpgateway.push;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tcpgateway.client.Client;
import io.tcpgateway.client.GatewayProcess;
import io.tcpgateway.client.Listener;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import tcpgateway.v1.DownlinkOuterClass.SessionEvent;

/**
 * The presence feed against the real broker (TCPGW_KAFKA_BOOTSTRAP) and a real gateway process
 * publishing session events: what was in the topic before the feed started, a Java client's
 * connect and disconnect, a hostile record, and a partition added while the feed runs.
 */
@EnabledIfEnvironmentVariable(named = "TCPGW_KAFKA_BOOTSTRAP", matches = ".+")
@Timeout(180)
class PresenceFeedKafkaTest {
  @Test
  void followsARealGatewaysSessions() throws Exception {
    String bootstrap = System.getenv("TCPGW_KAFKA_BOOTSTRAP");
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    String downlink = "java-presence-" + suffix + ".downlink";
    String receipts = "java-presence-" + suffix + ".receipts";
    String events = "java-presence-" + suffix + ".session-events";
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(p);
        KafkaProducer<byte[], byte[]> writer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      admin.createTopics(List.of(new NewTopic(downlink, 2, (short) 1), new NewTopic(receipts, 2, (short) 1),
          new NewTopic(events, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
      // Before the feed starts: another pod's session and a record that is not an event.
      writer.send(new ProducerRecord<>(events, 1, bytes("carol"), event("gw-old", "carol", "c1", "gw-old/1/1"))).get(30, TimeUnit.SECONDS);
      writer.send(new ProducerRecord<>(events, 0, bytes("mallory"), bytes("not an event"))).get(30, TimeUnit.SECONDS);

      Presence presence = new Presence();
      try (GatewayProcess gw = new GatewayProcess(bootstrap, downlink, receipts, events);
          PresenceFeed feed = PresenceFeed.builder().bootstrapServers(bootstrap).topic(events)
              .partitionRecheck(Duration.ofMillis(200)).build(presence)) {
        assertTrue(feed.awaitCaughtUp(Duration.ofSeconds(60)), "caught up; failure: " + feed.failure());
        assertEquals("c1@gw-old", where(presence, "carol"));
        assertEquals(1, presence.stats().skipped(Presence.SKIP_UNDECODABLE));

        Client app = Client.builder().address(gw.clientAddr).tokenSource(() -> GatewayProcess.token("alice", 3600))
            .listener(new Listener() {}).connect();
        String session = app.sessionId();
        try {
          waitFor("alice online", () -> where(presence, "alice").equals(session + "@java-sdk-test"));
          Presence.Online o = presence.user("alice").get(0);
          assertTrue(o.connectionId().startsWith("java-sdk-test/"), o.connectionId());
          assertTrue(o.remoteAddress().startsWith("127.0.0.1:"), o.remoteAddress());
        } finally {
          app.close();
        }
        waitFor("alice offline", () -> presence.user("alice").isEmpty());

        // The topic grows (spec.kafka.partitions raised): the feed reads the new partition too.
        admin.createPartitions(Map.of(events, NewPartitions.increaseTo(3))).all().get(30, TimeUnit.SECONDS);
        writer.send(new ProducerRecord<>(events, 2, bytes("dave"), event("gw-new", "dave", "d1", "gw-new/1/1"))).get(30, TimeUnit.SECONDS);
        waitFor("dave, written to the added partition, online", () -> where(presence, "dave").equals("d1@gw-new"));

        Presence.Stats st = presence.stats();
        assertEquals(0, st.missing(), st.toString());
        assertEquals(4, st.applied(), st.toString()); // carol, alice connected and disconnected, dave
        assertNull(feed.failure());
      } finally {
        admin.deleteTopics(List.of(downlink, receipts, events));
      }
    }
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static byte[] event(String server, String user, String session, String conn) {
    return SessionEvent.newBuilder().setKind(SessionEvent.Kind.KIND_CONNECTED).setServerId(server).setEpoch(1).setSeq(1)
        .setConnectionId(conn).setUserId(user).setSessionId(session).build().toByteArray();
  }

  static String where(Presence p, String user) {
    StringBuilder b = new StringBuilder();
    for (Presence.Online o : p.user(user)) {
      b.append(b.length() > 0 ? "," : "").append(o.sessionId()).append('@').append(o.serverId());
    }
    return b.toString();
  }

  /** Polls cond every 20 ms for at most 30 s: the view changes on the feed's thread. */
  static void waitFor(String what, BooleanSupplier cond) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() - deadline > 0) {
        throw new AssertionError("not within 30 s: " + what);
      }
      Thread.sleep(20);
    }
  }
}
