package io.tcpgateway.push;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.tcpgateway.client.Client;
import io.tcpgateway.client.GatewayProcess;
import io.tcpgateway.client.Listener;
import io.tcpgateway.client.ReceivedPush;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import tcpgateway.v1.DownlinkOuterClass.Receipt;

/**
 * Java to Java through the real system: the push SDK publishes to Kafka, a real gateway process
 * delivers to the Java client SDK, the app acks and replies, the gateway writes the receipts and
 * the push SDK's waiting calls complete.
 */
@EnabledIfEnvironmentVariable(named = "TCPGW_KAFKA_BOOTSTRAP", matches = ".+")
@Timeout(180)
class EndToEndTest {
  @Test
  void pushAckAndReplyThroughARealGateway() throws Exception {
    String bootstrap = System.getenv("TCPGW_KAFKA_BOOTSTRAP");
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    String downlink = "java-e2e-" + suffix + ".downlink";
    String receipts = "java-e2e-" + suffix + ".receipts";
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(p)) {
      List<NewTopic> topics = new ArrayList<>();
      topics.add(new NewTopic(downlink, 3, (short) 1));
      topics.add(new NewTopic(receipts, 3, (short) 1));
      admin.createTopics(topics).all().get(30, TimeUnit.SECONDS);
    }
    BlockingQueue<ReceivedPush> got = new LinkedBlockingQueue<>();
    try (GatewayProcess gw = new GatewayProcess(bootstrap, downlink, receipts);
        Publisher pub = Publisher.builder().bootstrapServers(bootstrap).topic(downlink).receiptsTopic(receipts).build()) {
      Client app = Client.builder().address(gw.clientAddr).tokenSource(() -> GatewayProcess.token("alice", 3600))
          .listener(new Listener() {
            @Override
            public void onPush(ReceivedPush push) {
              got.add(push);
              // ack() and reply() send on the client's sender thread: this reader thread goes on (R41).
              if (push.ackRequired()) {
                push.ack();
              }
              if (push.replyExpected()) {
                push.reply(("re: " + new String(push.payload(), StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8));
              }
            }
          }).connect();
      try {
        Receipt ack = pub.pushAndWaitAck(Message.to(Targets.user("alice")).payload("hello".getBytes(StandardCharsets.UTF_8))
            .correlationId("c-1").ttl(Duration.ofMinutes(1)).build(), Duration.ofSeconds(60)).get(90, TimeUnit.SECONDS);
        assertEquals("alice", ack.getUserId());
        assertEquals(app.sessionId(), ack.getSessionId());
        assertEquals("c-1", ack.getCorrelationId());

        byte[] reply = pub.request(Message.to(Targets.session("alice", app.sessionId())).payload("q".getBytes(StandardCharsets.UTF_8))
            .ttl(Duration.ofMinutes(1)).build(), Duration.ofSeconds(60)).get(90, TimeUnit.SECONDS);
        assertEquals("re: q", new String(reply, StandardCharsets.UTF_8));

        pub.push(Message.to(Targets.all()).id("bcast-1").payload("all".getBytes(StandardCharsets.UTF_8)).build()).get(30, TimeUnit.SECONDS);
        ReceivedPush last = null;
        for (int i = 0; i < 3 && (last == null || !last.messageId().equals("bcast-1")); i++) {
          last = got.poll(30, TimeUnit.SECONDS);
        }
        assertEquals("bcast-1", last == null ? null : last.messageId());
      } finally {
        app.close();
      }
    }
  }
}
