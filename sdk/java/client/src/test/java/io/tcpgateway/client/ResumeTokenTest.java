package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tcpgateway.v1.Protocol.Error;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.GoAway;
import tcpgateway.v1.Protocol.HandshakeAck;
import tcpgateway.v1.Protocol.Position;

/** R26: the resume token of a GOAWAY DRAINING is sent on the reconnect that follows it, then forgotten. */
@Timeout(30)
class ResumeTokenTest {
  FakeGateway gw;

  @BeforeEach
  void start() throws IOException {
    gw = new FakeGateway();
  }

  @AfterEach
  void stop() throws IOException {
    gw.close();
  }

  static HandshakeAck.Builder ack() {
    // A watermark, so that every later handshake resumes (with or without a token).
    return FakeGateway.ack("s-1").addPositions(Position.newBuilder().setPartition(0).setOffset(-1));
  }

  @Test
  void drainingTokenGoesOnTheReconnectUntilAcknowledgedThenIsForgotten() throws Exception {
    tokenGoesOnTheReconnectOnce(GoAway.Reason.REASON_DRAINING.getNumber(), "rt-1");
  }

  /** R42: REBALANCE moves the session like DRAINING, token included. */
  @Test
  void rebalanceTokenGoesOnTheReconnectUntilAcknowledgedThenIsForgotten() throws Exception {
    tokenGoesOnTheReconnectOnce(GoAway.Reason.REASON_REBALANCE.getNumber(), "rt-1");
  }

  /** R43: a reason this client does not know (a newer gateway's) reconnects and resumes, without the token. */
  @Test
  void unknownReasonResumesWithoutToken() throws Exception {
    tokenGoesOnTheReconnectOnce(99, "");
  }

  private void tokenGoesOnTheReconnectOnce(int reason, String want) throws Exception {
    AtomicReference<Client> client = new AtomicReference<>();
    BlockingQueue<ResumeState> exported = new LinkedBlockingQueue<>();
    BlockingQueue<HandshakeAck> acks = new LinkedBlockingQueue<>();
    Listener l = new Listener() {
      @Override
      public void onDisconnected(IOException cause) {
        exported.add(client.get().exportState());
      }

      @Override
      public void onConnected(HandshakeAck a) {
        acks.add(a);
      }
    };
    CompletableFuture<Client> connecting = CompletableFuture.supplyAsync(() -> {
      try {
        return Client.builder().address(gw.address()).token("t-1").listener(l).backoff(new Backoff(20, 100, -1)).connect();
      } catch (IOException e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    });
    FakeGateway.Peer first = gw.accept();
    first.read();
    first.write(Frame.newBuilder().setHandshakeAck(ack()));
    client.set(connecting.get(10, TimeUnit.SECONDS));
    acks.take();
    first.write(Frame.newBuilder().setGoaway(GoAway.newBuilder().setReasonValue(reason).setResumeToken("rt-1")));

    FakeGateway.Peer refused = gw.accept();
    Frame resumed = refused.read();
    assertTrue(resumed.getHandshake().hasResume());
    assertEquals(want, resumed.getHandshake().getResume().getResumeToken());
    assertEquals(want, exported.poll(5, TimeUnit.SECONDS).resumeToken(), "an export while the reconnect is pending holds the token");
    // A refused attempt is no acknowledgement: the next one carries the token again.
    refused.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_SERVER_FULL).setFatal(true)));
    refused.close();

    FakeGateway.Peer second = gw.accept();
    assertEquals(want, second.read().getHandshake().getResume().getResumeToken());
    second.write(Frame.newBuilder().setHandshakeAck(ack()));
    acks.take();
    assertEquals("", client.get().exportState().resumeToken(), "forgotten at the HANDSHAKE_ACK");

    second.close(); // a loss without GOAWAY
    FakeGateway.Peer third = gw.accept();
    Frame hs = third.read();
    assertTrue(hs.getHandshake().hasResume());
    assertEquals("", hs.getHandshake().getResume().getResumeToken(), "a loss resumes without a token");
    assertEquals("", exported.poll(5, TimeUnit.SECONDS).resumeToken());
    client.get().close();
  }
}
