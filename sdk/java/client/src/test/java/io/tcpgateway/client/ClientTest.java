package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
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
import tcpgateway.v1.Protocol.Push;
import tcpgateway.v1.Protocol.RefreshAck;
import tcpgateway.v1.Protocol.RefreshRequest;
import tcpgateway.v1.Protocol.Response;

/** The client's behaviour against a scripted gateway on loopback (docs/client-behaviour.md). */
@Timeout(30)
class ClientTest {
  FakeGateway gw;
  final BlockingQueue<ReceivedPush> pushes = new LinkedBlockingQueue<>();
  final BlockingQueue<Error> refused = new LinkedBlockingQueue<>();
  final BlockingQueue<IOException> disconnects = new LinkedBlockingQueue<>();
  final BlockingQueue<HandshakeAck> acks = new LinkedBlockingQueue<>();
  final Listener listener = new Listener() {
    @Override
    public void onPush(ReceivedPush p) {
      pushes.add(p);
    }

    @Override
    public void onRefused(Error e) {
      refused.add(e);
    }

    @Override
    public void onDisconnected(IOException cause) {
      disconnects.add(cause);
    }

    @Override
    public void onConnected(HandshakeAck ack) {
      acks.add(ack);
    }
  };

  @BeforeEach
  void start() throws IOException {
    gw = new FakeGateway();
  }

  @AfterEach
  void stop() throws IOException {
    gw.close();
  }

  Client.Builder builder() {
    return Client.builder().address(gw.address()).token("t-1").listener(listener)
        .backoff(new Backoff(20, 100, -1));
  }

  /** Connects b while the fake answers the handshake with ack; returns the client and the peer. */
  Connected connect(Client.Builder b, HandshakeAck.Builder ack) throws Exception {
    CompletableFuture<Client> c = CompletableFuture.supplyAsync(() -> {
      try {
        return b.connect();
      } catch (IOException e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    });
    FakeGateway.Peer p = gw.accept();
    Frame hs = p.read();
    assertEquals(Frame.BodyCase.HANDSHAKE, hs.getBodyCase());
    p.write(Frame.newBuilder().setHandshakeAck(ack));
    return new Connected(c.get(10, TimeUnit.SECONDS), p, hs);
  }

  static final class Connected {
    final Client client;
    final FakeGateway.Peer peer;
    final Frame handshake;

    Connected(Client client, FakeGateway.Peer peer, Frame handshake) {
      this.client = client;
      this.peer = peer;
      this.handshake = handshake;
    }
  }

  static Frame push(String id, int partition, long offset) {
    return Frame.newBuilder().setPush(Push.newBuilder().setMessageId(id).setPayload(ByteString.copyFromUtf8("p-" + id))
        .setPosition(Position.newBuilder().setPartition(partition).setOffset(offset)).setAckRequired(true)
        .setReplyExpected(true)).build();
  }

  @Test
  void handshakeCarriesIdentityAndNoResumeForANewSession() throws Exception {
    Connected c = connect(builder().deviceId("d-1").clientVersion("test/1"), FakeGateway.ack("s-9"));
    assertEquals(2, c.handshake.getHandshake().getProtocolVersion());
    assertEquals("t-1", c.handshake.getHandshake().getToken());
    assertEquals("d-1", c.handshake.getHandshake().getDeviceId());
    assertFalse(c.handshake.getHandshake().hasResume());
    assertEquals("s-9", c.client.sessionId());
    c.client.close();
  }

  @Test
  void responsesOutOfOrderAcrossTheUnsigned64BitSeqRange() throws Exception {
    // The first seqs are 2^64-2, 2^64-1, 0, 1, 2: the wrap and the sign bit are ordinary values.
    Connected c = connect(builder().firstSeq(-3L), FakeGateway.ack("s-1"));
    List<CompletableFuture<Response>> calls = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      calls.add(c.client.request("svc", "m", new byte[] {(byte) i}));
    }
    List<Frame> got = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      got.add(c.peer.readSkippingPings());
    }
    List<String> seqs = new ArrayList<>();
    for (Frame f : got) {
      seqs.add(Long.toUnsignedString(f.getSeq()));
    }
    assertEquals(List.of("18446744073709551614", "18446744073709551615", "0", "1", "2"), seqs);
    for (int i = got.size() - 1; i >= 0; i--) { // answered in reverse order
      Frame req = got.get(i);
      c.peer.write(Frame.newBuilder().setSeq(req.getSeq()).setResponse(Response.newBuilder().setCode(ErrorCode.ERROR_CODE_OK)
          .setStatus(200).setPayload(req.getRequest().getPayload())));
    }
    for (int i = 0; i < 5; i++) {
      assertEquals(i, calls.get(i).get(5, TimeUnit.SECONDS).getPayload().byteAt(0));
    }
    c.client.close();
  }

  @Test
  void duplicatesByPositionAndMessageIdAreDroppedAndPositionsExported() throws Exception {
    HandshakeAck.Builder ack = FakeGateway.ack("s-1")
        .addPositions(Position.newBuilder().setPartition(0).setOffset(4))
        .addPositions(Position.newBuilder().setPartition(1).setOffset(-1));
    Connected c = connect(builder(), ack);
    c.peer.write(push("m-1", 0, 5));
    c.peer.write(push("m-1", 0, 5)); // replay: same position
    c.peer.write(push("m-1", 0, 9)); // publisher retry: same id, another position
    c.peer.write(push("m-2", 0, 3)); // before the position
    c.peer.write(push("m-3", 0, 10));
    assertEquals("m-1", pushes.poll(5, TimeUnit.SECONDS).messageId());
    assertEquals("m-3", pushes.poll(5, TimeUnit.SECONDS).messageId());
    assertEquals(null, pushes.poll(200, TimeUnit.MILLISECONDS));
    ResumeState s = c.client.exportState();
    Map<Integer, Long> want = new TreeMap<>();
    want.put(0, 10L);
    want.put(1, -1L); // an empty partition's watermark is a position
    assertEquals(want, s.positions());
    assertEquals("s-1", s.sessionId());
    assertEquals(s.positions(), ResumeState.decode(s.encode()).positions());
    c.client.close();
  }

  @Test
  void ackAndReplyEchoThePosition() throws Exception {
    Connected c = connect(builder(), FakeGateway.ack("s-1"));
    c.peer.write(push("m-1", 2, 7));
    ReceivedPush p = pushes.poll(5, TimeUnit.SECONDS);
    p.ack().get(5, TimeUnit.SECONDS);
    p.reply("yes".getBytes(java.nio.charset.StandardCharsets.UTF_8)).get(5, TimeUnit.SECONDS);
    Frame a = c.peer.readSkippingPings();
    assertEquals("m-1", a.getPushAck().getMessageId());
    assertEquals(7, a.getPushAck().getPosition().getOffset());
    Frame r = c.peer.readSkippingPings();
    assertEquals("yes", r.getPushReply().getPayload().toStringUtf8());
    assertEquals(2, r.getPushReply().getPosition().getPartition());
    // A non-fatal ERROR is reported and the session goes on.
    c.peer.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_UNKNOWN_PUSH).setMessage("no")));
    assertEquals(ErrorCode.ERROR_CODE_UNKNOWN_PUSH, refused.poll(5, TimeUnit.SECONDS).getCode());
    CompletableFuture<java.time.Duration> rtt = c.client.ping();
    Frame ping = c.peer.read();
    c.peer.write(Frame.newBuilder().setSeq(ping.getSeq()).setPong(tcpgateway.v1.Protocol.Pong.getDefaultInstance()));
    assertTrue(!rtt.get(5, TimeUnit.SECONDS).isNegative());
    c.client.close();
  }

  @Test
  void drainingResumesWithTokenAndPositionsAndResendsRefusedRequests() throws Exception {
    HandshakeAck.Builder ack = FakeGateway.ack("s-1")
        .addPositions(Position.newBuilder().setPartition(0).setOffset(-1))
        .addPositions(Position.newBuilder().setPartition(1).setOffset(10));
    Connected c = connect(builder(), ack);
    c.peer.write(push("m-1", 0, 3));
    assertEquals("m-1", pushes.poll(5, TimeUnit.SECONDS).messageId());
    CompletableFuture<Response> call = c.client.request("svc", "m", new byte[] {1});
    Frame req = c.peer.readSkippingPings();
    c.peer.write(Frame.newBuilder().setGoaway(GoAway.newBuilder().setReason(GoAway.Reason.REASON_DRAINING)
        .setReconnectDelayMs(50).setResumeToken("rt-1")));
    // A push after GOAWAY is ignored (R20); the request sent before it is answered DRAINING.
    c.peer.write(push("m-late", 0, 4));
    c.peer.write(Frame.newBuilder().setSeq(req.getSeq()).setResponse(Response.newBuilder().setCode(ErrorCode.ERROR_CODE_DRAINING)));
    assertInstanceOf(Errors.GoAwayError.class, disconnects.poll(5, TimeUnit.SECONDS));

    FakeGateway.Peer p2 = gw.accept();
    Frame hs = p2.read();
    assertEquals("s-1", hs.getHandshake().getSessionId());
    assertEquals("rt-1", hs.getHandshake().getResume().getResumeToken());
    Map<Integer, Long> sent = new TreeMap<>();
    for (Position p : hs.getHandshake().getResume().getPositionsList()) {
      sent.put(p.getPartition(), p.getOffset());
    }
    Map<Integer, Long> want = new TreeMap<>();
    want.put(0, 3L);
    want.put(1, 10L);
    assertEquals(want, sent);
    p2.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1")));
    p2.write(push("m-late", 0, 4)); // the replay
    assertEquals("m-late", pushes.poll(5, TimeUnit.SECONDS).messageId());
    Frame again = p2.readSkippingPings();
    assertEquals(req.getRequest(), again.getRequest());
    p2.write(Frame.newBuilder().setSeq(again.getSeq()).setResponse(Response.newBuilder().setCode(ErrorCode.ERROR_CODE_OK).setStatus(200)));
    assertEquals(200, call.get(5, TimeUnit.SECONDS).getStatus());
    c.client.close();
  }

  @Test
  void replacedStopsWithoutReconnecting() throws Exception {
    Connected c = connect(builder(), FakeGateway.ack("s-1"));
    c.peer.write(Frame.newBuilder().setGoaway(GoAway.newBuilder().setReason(GoAway.Reason.REASON_REPLACED)));
    IOException why = c.client.stopped().get(5, TimeUnit.SECONDS);
    assertInstanceOf(Errors.GoAwayError.class, why);
    assertEquals(GoAway.Reason.REASON_REPLACED, ((Errors.GoAwayError) why).reason());
    gw.server.setSoTimeout(500);
    assertThrows(java.net.SocketTimeoutException.class, gw::accept, "no reconnect after REPLACED");
    ExecutionException e = assertThrows(ExecutionException.class, () -> c.client.request("s", "m", new byte[0]).get(5, TimeUnit.SECONDS));
    assertInstanceOf(Errors.GoAwayError.class, e.getCause());
  }

  @Test
  void firstConnectFailsWithTheGatewaysRefusal() throws Exception {
    CompletableFuture<Client> c = CompletableFuture.supplyAsync(() -> {
      try {
        return builder().connect();
      } catch (IOException e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    });
    FakeGateway.Peer p = gw.accept();
    p.read();
    p.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_UNAUTHENTICATED).setMessage("invalid_token").setFatal(true)));
    ExecutionException e = assertThrows(ExecutionException.class, () -> c.get(5, TimeUnit.SECONDS));
    Errors.ServerError se = assertInstanceOf(Errors.ServerError.class, e.getCause());
    assertEquals(ErrorCode.ERROR_CODE_UNAUTHENTICATED, se.code());
    assertEquals("invalid_token", se.gatewayMessage());
  }

  @Test
  void fatalErrorsReconnectOrStopByCode() throws Exception {
    Connected c = connect(builder(), FakeGateway.ack("s-1"));
    // IDLE_TIMEOUT: the gateway closed the session; the client reconnects and resumes.
    c.peer.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_IDLE_TIMEOUT).setFatal(true)));
    assertInstanceOf(Errors.ServerError.class, disconnects.poll(5, TimeUnit.SECONDS));
    FakeGateway.Peer p2 = gw.accept();
    assertEquals("s-1", p2.read().getHandshake().getSessionId());
    p2.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1")));
    acks.poll(5, TimeUnit.SECONDS);
    // UNSUPPORTED_VERSION: the same handshake would fail again; the client stops.
    p2.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_UNSUPPORTED_VERSION).setFatal(true)));
    IOException why = c.client.stopped().get(5, TimeUnit.SECONDS);
    assertEquals(ErrorCode.ERROR_CODE_UNSUPPORTED_VERSION, ((Errors.ServerError) why).code());
  }

  @Test
  void fixedTokenStopsAtTokenExpiredButASourceReconnects() throws Exception {
    Connected fixed = connect(builder(), FakeGateway.ack("s-1"));
    fixed.peer.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_TOKEN_EXPIRED).setFatal(true)));
    assertEquals(ErrorCode.ERROR_CODE_TOKEN_EXPIRED, ((Errors.ServerError) fixed.client.stopped().get(5, TimeUnit.SECONDS)).code());

    AtomicInteger asked = new AtomicInteger();
    Connected src = connect(builder().tokenSource(() -> "t-" + asked.incrementAndGet()), FakeGateway.ack("s-2"));
    src.peer.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_TOKEN_EXPIRED).setFatal(true)));
    FakeGateway.Peer p2 = gw.accept();
    assertEquals("t-2", p2.read().getHandshake().getToken());
    src.client.close();
  }

  @Test
  void refreshRequestIsAnsweredWithTheSourcesToken() throws Exception {
    AtomicInteger asked = new AtomicInteger();
    Connected c = connect(builder().tokenSource(() -> "t-" + asked.incrementAndGet()), FakeGateway.ack("s-1"));
    c.peer.write(Frame.newBuilder().setRefreshRequest(RefreshRequest.newBuilder()
        .setTokenExpiresAtMs(System.currentTimeMillis() + 1000).setDeadlineMs(System.currentTimeMillis() + 5000)));
    Frame r = c.peer.readSkippingPings();
    assertEquals("t-2", r.getRefresh().getToken());
    c.peer.write(Frame.newBuilder().setSeq(r.getSeq()).setRefreshAck(RefreshAck.newBuilder().setCode(ErrorCode.ERROR_CODE_OK)));
    c.client.close();
  }

  @Test
  void aFrameAboveTheLimitIsRefusedLocallyAndTheConnectionStays() throws Exception {
    Connected c = connect(builder().maxFrameBytes(1024), FakeGateway.ack("s-1"));
    ExecutionException e = assertThrows(ExecutionException.class,
        () -> c.client.request("svc", "m", new byte[2048]).get(5, TimeUnit.SECONDS));
    assertInstanceOf(Frames.FrameTooLargeException.class, e.getCause());
    CompletableFuture<Response> ok = c.client.request("svc", "m", new byte[10]);
    Frame req = c.peer.readSkippingPings();
    c.peer.write(Frame.newBuilder().setSeq(req.getSeq()).setResponse(Response.newBuilder().setCode(ErrorCode.ERROR_CODE_NO_ROUTE)));
    assertEquals(ErrorCode.ERROR_CODE_NO_ROUTE, ok.get(5, TimeUnit.SECONDS).getCode());
    c.client.close();
  }

  @Test
  void theAcksSmallerLimitCapsWhatIsSentAndTheConnectionStays() throws Exception {
    Connected c = connect(builder(), FakeGateway.ack("s-1").setMaxFrameBytes(1000));
    c.peer.write(push("m-1", 0, 1));
    ReceivedPush p = pushes.poll(5, TimeUnit.SECONDS);
    ExecutionException req = assertThrows(ExecutionException.class,
        () -> c.client.request("svc", "big", new byte[2000]).get(5, TimeUnit.SECONDS));
    assertInstanceOf(Frames.FrameTooLargeException.class, req.getCause());
    ExecutionException reply = assertThrows(ExecutionException.class, () -> p.reply(new byte[2000]).get(5, TimeUnit.SECONDS));
    assertInstanceOf(Frames.FrameTooLargeException.class, reply.getCause());
    // The first frame the gateway reads after them is the next call's: nothing was written,
    // and it goes out on the same connection.
    CompletableFuture<Response> ok = c.client.request("svc", "small", new byte[10]);
    Frame f = c.peer.readSkippingPings();
    assertEquals("small", f.getRequest().getMethod());
    c.peer.write(Frame.newBuilder().setSeq(f.getSeq()).setResponse(Response.newBuilder().setCode(ErrorCode.ERROR_CODE_OK)));
    assertEquals(ErrorCode.ERROR_CODE_OK, ok.get(5, TimeUnit.SECONDS).getCode());
    assertTrue(disconnects.isEmpty(), "disconnected by a refused call: " + disconnects);
    c.client.close();
  }

  @Test
  void sendLimitIsTheSmallerOfOwnAndTheAcks() {
    assertEquals(65536, Conn.sendLimit(65536, 0), "the ack names none");
    assertEquals(4096, Conn.sendLimit(65536, 4096));
    assertEquals(1024, Conn.sendLimit(1024, 65536));
    assertEquals(65536, Conn.sendLimit(65536, -1), "max_frame_bytes is unsigned: 2^32-1 is larger");
  }

  @Test
  void aLostConnectionFailsCallsInFlightAndResumesAfterTheSpread() throws Exception {
    Connected c = connect(builder(), FakeGateway.ack("s-1").addPositions(Position.newBuilder().setPartition(0).setOffset(7)));
    CompletableFuture<Response> call = c.client.request("svc", "m", new byte[] {1});
    c.peer.readSkippingPings();
    c.peer.close();
    ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(5, TimeUnit.SECONDS));
    assertInstanceOf(Errors.ConnectionLost.class, e.getCause());
    FakeGateway.Peer p2 = gw.accept();
    Frame hs = p2.read();
    assertTrue(hs.getHandshake().hasResume());
    assertEquals(7, hs.getHandshake().getResume().getPositions(0).getOffset());
    c.client.close();
    assertInstanceOf(Errors.Closed.class, c.client.stopped().get(5, TimeUnit.SECONDS));
  }

  @Test
  void importedStateResumesTheSessionOnTheFirstConnect() throws Exception {
    Map<Integer, Long> pos = new TreeMap<>();
    pos.put(0, 41L);
    pos.put(3, -1L);
    ResumeState saved = ResumeState.decode(new ResumeState("s-7", pos, "").encode());
    Connected c = connect(builder().resumeState(saved), FakeGateway.ack("s-7"));
    assertEquals("s-7", c.handshake.getHandshake().getSessionId());
    assertEquals(2, c.handshake.getHandshake().getResume().getPositionsCount());
    assertEquals(-1, c.handshake.getHandshake().getResume().getPositions(1).getOffset());
    c.client.close();
  }

  @Test
  void aRequestWithoutAnswerTimesOutAndTheSessionGoesOn() throws Exception {
    Connected c = connect(builder(), FakeGateway.ack("s-1"));
    CompletableFuture<Response> call = c.client.request(tcpgateway.v1.Protocol.Request.newBuilder().setService("svc").build(),
        java.time.Duration.ofMillis(200));
    c.peer.readSkippingPings(); // received, never answered
    ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(5, TimeUnit.SECONDS));
    assertInstanceOf(Errors.Timeout.class, e.getCause());
    CompletableFuture<java.time.Duration> rtt = c.client.ping();
    Frame ping = c.peer.read();
    c.peer.write(Frame.newBuilder().setSeq(ping.getSeq()).setPong(tcpgateway.v1.Protocol.Pong.getDefaultInstance()));
    rtt.get(5, TimeUnit.SECONDS);
    c.client.close();
  }

  @Test
  void backoffStaysWithinItsBounds() {
    Backoff b = new Backoff(250, 30_000, 3_000);
    java.util.Random r = new java.util.Random(1);
    for (int i = 0; i < 1000; i++) {
      long d = b.delayMs(3, r);
      assertTrue(d >= 1000 && d <= 2000, "attempt 3: " + d);
      long big = b.delayMs(40, r);
      assertTrue(big >= 15_000 && big <= 30_000, "capped: " + big);
      long spread = b.afterLossMs(r);
      assertTrue(spread >= 0 && spread <= 3000, "spread: " + spread);
    }
    long noSpread = new Backoff(250, 30_000, -1).afterLossMs(r);
    assertTrue(noSpread >= 125 && noSpread <= 250);
  }
}
