package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.Pong;
import tcpgateway.v1.Protocol.Position;
import tcpgateway.v1.Protocol.Push;

/** Answers the gateway would refuse are refused locally, writing nothing (client-behaviour.md R19). */
@Timeout(30)
class AnswersTest {
  final ClientTest t = new ClientTest(); // its fake gateway, listener and connect helper

  @BeforeEach
  void start() throws IOException {
    t.start();
  }

  @AfterEach
  void stop() throws IOException {
    t.stop();
  }

  static Frame push(String id, long offset, boolean ack, boolean reply) {
    return Frame.newBuilder().setPush(Push.newBuilder().setMessageId(id).setAckRequired(ack).setReplyExpected(reply)
        .setPosition(Position.newBuilder().setPartition(0).setOffset(offset))).build();
  }

  /** The frames the client wrote before a PING sent now: frames go out in order. */
  static List<Frame> written(Client c, FakeGateway.Peer peer) throws Exception {
    CompletableFuture<java.time.Duration> rtt = c.ping();
    List<Frame> out = new ArrayList<>();
    while (true) {
      Frame f = peer.read(); // fails after the socket timeout
      if (f.getBodyCase() != Frame.BodyCase.PING) {
        out.add(f);
        continue;
      }
      peer.write(Frame.newBuilder().setSeq(f.getSeq()).setPong(Pong.getDefaultInstance()));
      rtt.get(5, TimeUnit.SECONDS);
      return out;
    }
  }

  static Throwable failure(CompletableFuture<Void> f) throws Exception {
    try {
      f.get(5, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return e.getCause();
    }
    throw new AssertionError("the answer did not fail");
  }

  @Test
  void unaskedAndRepeatedAnswersFailWithoutWriting() throws Exception {
    ClientTest.Connected c = t.connect(t.builder(), FakeGateway.ack("s-1"));
    c.peer.write(push("plain", 1, false, false));
    c.peer.write(push("both", 2, true, true));
    ReceivedPush plain = t.pushes.poll(5, TimeUnit.SECONDS);
    ReceivedPush both = t.pushes.poll(5, TimeUnit.SECONDS);
    assertNotNull(both);

    assertInstanceOf(Errors.NotRequested.class, failure(plain.ack()));
    assertInstanceOf(Errors.NotRequested.class, failure(plain.reply(new byte[] {1})));
    both.ack().get(5, TimeUnit.SECONDS);
    assertInstanceOf(Errors.AlreadyAnswered.class, failure(both.ack()));
    both.reply("r".getBytes(java.nio.charset.StandardCharsets.UTF_8)).get(5, TimeUnit.SECONDS);
    assertInstanceOf(Errors.AlreadyAnswered.class, failure(both.reply(new byte[] {2})));

    List<Frame> got = written(c.client, c.peer);
    assertEquals(2, got.size(), "frames written: " + got);
    assertEquals("both", got.get(0).getPushAck().getMessageId());
    assertEquals(2, got.get(0).getPushAck().getPosition().getOffset());
    assertEquals("r", got.get(1).getPushReply().getPayload().toStringUtf8());
    c.client.close();
  }

  @Test
  void racingAcksWriteOne() throws Exception {
    ClientTest.Connected c = t.connect(t.builder(), FakeGateway.ack("s-1"));
    c.peer.write(push("m", 1, true, false));
    ReceivedPush p = t.pushes.poll(5, TimeUnit.SECONDS);
    assertNotNull(p);
    int racers = 16;
    ExecutorService pool = Executors.newFixedThreadPool(racers);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<CompletableFuture<Void>>> acks = new ArrayList<>();
      for (int i = 0; i < racers; i++) {
        acks.add(pool.submit(() -> {
          go.await();
          return p.ack();
        }));
      }
      go.countDown();
      int won = 0;
      for (Future<CompletableFuture<Void>> a : acks) {
        try {
          a.get(5, TimeUnit.SECONDS).get(5, TimeUnit.SECONDS);
          won++;
        } catch (ExecutionException e) {
          assertInstanceOf(Errors.AlreadyAnswered.class, e.getCause());
        }
      }
      assertEquals(1, won);
    } finally {
      pool.shutdownNow();
    }
    List<Frame> got = written(c.client, c.peer);
    assertEquals(1, got.size(), "frames written: " + got);
    assertEquals("m", got.get(0).getPushAck().getMessageId());
    c.client.close();
  }

  @Test
  void pushDeliveredBeforeAReconnectIsAnsweredAfterIt() throws Exception {
    ClientTest.Connected c = t.connect(t.builder(), FakeGateway.ack("s-1"));
    t.acks.poll(5, TimeUnit.SECONDS);
    c.peer.write(push("m", 1, true, false));
    ReceivedPush p = t.pushes.poll(5, TimeUnit.SECONDS);
    assertNotNull(p);
    c.peer.close(); // a loss: the client reconnects
    FakeGateway.Peer p2 = t.gw.accept();
    assertEquals(Frame.BodyCase.HANDSHAKE, p2.read().getBodyCase());
    p2.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1")));
    assertNotNull(t.acks.poll(5, TimeUnit.SECONDS));
    // After a resume the client pings to confirm the watermarks (R24).
    Frame ping = p2.read();
    assertEquals(Frame.BodyCase.PING, ping.getBodyCase());
    p2.write(Frame.newBuilder().setSeq(ping.getSeq()).setPong(Pong.getDefaultInstance()));
    p.ack().get(5, TimeUnit.SECONDS);
    List<Frame> got = written(c.client, p2);
    assertEquals(1, got.size(), "frames written: " + got);
    assertEquals("m", got.get(0).getPushAck().getMessageId());
    c.client.close();
  }
}
