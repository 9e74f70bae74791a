package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tcpgateway.v1.Protocol.Error;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.Ping;
import tcpgateway.v1.Protocol.Response;

/**
 * The WebSocket transport against a scripted WebSocket gateway on loopback: the upgrade, masked
 * messages of every length encoding, pings, closes, and every refusal of docs/client-behaviour.md,
 * "WebSocket transport".
 */
@Timeout(60)
class WebSocketTest {
  FakeWebSocketGateway gw;

  @BeforeEach
  void start() throws IOException {
    gw = new FakeWebSocketGateway();
  }

  @AfterEach
  void stop() throws IOException {
    gw.close();
  }

  Client.Builder builder() {
    return Client.builder().address(gw.url()).token("t-1").noReconnect(true).maxFrameBytes(1 << 20);
  }

  CompletableFuture<Client> connectAsync(Client.Builder b) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return b.connect();
      } catch (IOException e) {
        throw new CompletionException(e);
      }
    });
  }

  /** Upgrades the next connection and acknowledges its HANDSHAKE. */
  FakeWebSocketGateway.Peer handshake() throws IOException {
    FakeWebSocketGateway.Peer p = gw.upgrade();
    assertEquals(Frame.BodyCase.HANDSHAKE, p.read().getBodyCase());
    p.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1").setMaxFrameBytes(1 << 20)));
    return p;
  }

  static IOException failure(CompletableFuture<?> f) throws Exception {
    ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS));
    return assertInstanceOf(IOException.class, e.getCause());
  }

  @Test
  void upgradesThenSendsEveryFrameAsOneMaskedBinaryMessage() throws Exception {
    CompletableFuture<Client> fc = connectAsync(builder());
    try (FakeWebSocketGateway.Peer p = gw.accept()) {
      assertEquals("GET /tcpgw HTTP/1.1", p.request[0]);
      assertEquals("127.0.0.1:" + gw.server.getLocalPort(), p.header("Host"));
      assertEquals("websocket", p.header("Upgrade"));
      assertEquals("Upgrade", p.header("Connection"));
      assertEquals("13", p.header("Sec-WebSocket-Version"));
      assertEquals("tcpgw.v2", p.header("Sec-WebSocket-Protocol"));
      assertEquals(16, Base64.getDecoder().decode(p.header("Sec-WebSocket-Key")).length);
      assertNull(p.header("Origin"), "a native client sends no Origin");
      p.answer101("tcpgw.v2");
      assertEquals("t-1", p.read().getHandshake().getToken());
      p.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1").setMaxFrameBytes(1 << 20)));
      Client c = fc.get(10, TimeUnit.SECONDS);
      try {
        // Payloads whose messages take each length encoding: 7 bits, 16 bits, 64 bits.
        for (int size : new int[] {10, 1000, 100_000}) {
          byte[] payload = new byte[size];
          for (int i = 0; i < size; i++) {
            payload[i] = (byte) (i * 7);
          }
          CompletableFuture<Response> r = c.request("echo", "m", payload);
          Frame req = p.readSkippingPings();
          assertArrayEquals(payload, req.getRequest().getPayload().toByteArray(), "size " + size);
          p.write(Frame.newBuilder().setSeq(req.getSeq()).setResponse(Response.newBuilder()
              .setCode(ErrorCode.ERROR_CODE_OK).setPayload(ByteString.copyFrom(payload))));
          assertArrayEquals(payload, r.get(10, TimeUnit.SECONDS).getPayload().toByteArray());
        }
        // A WebSocket ping is answered with a pong carrying its payload.
        p.raw(FakeWebSocketGateway.serverFrame(0x89, "are you there".getBytes(StandardCharsets.UTF_8)));
        FakeWebSocketGateway.ClientFrame pong = p.readFrame();
        assertEquals(WebSocketTransport.OP_PONG, pong.op);
        assertTrue(pong.masked && pong.fin);
        assertEquals("are you there", new String(pong.payload, StandardCharsets.UTF_8));
        // The protocol's own PING goes as a binary message.
        CompletableFuture<java.time.Duration> rtt = c.ping();
        Frame ping = p.read();
        assertEquals(Frame.BodyCase.PING, ping.getBodyCase());
        p.write(Frame.newBuilder().setSeq(ping.getSeq()).setPong(tcpgateway.v1.Protocol.Pong.newBuilder()));
        rtt.get(10, TimeUnit.SECONDS);
      } finally {
        c.close();
      }
      assertEquals(1000, p.clientClose(), "the client closes with a close frame 1000");
    }
  }

  @Test
  void anUpgradeOtherThanAValid101FailsTheDial() throws Exception {
    Map<String, String> answers = new LinkedHashMap<>();
    answers.put("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "HTTP 403 Forbidden");
    answers.put("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Accept: " + WebSocketUpgrade.accept("another key") + "\r\n\r\n", "wrong Sec-WebSocket-Accept");
    answers.put("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "without Upgrade: websocket");
    answers.put("SSH-2.0-OpenSSH\r\n\r\n", "not HTTP");
    for (Map.Entry<String, String> a : answers.entrySet()) {
      CompletableFuture<Client> fc = connectAsync(builder());
      try (FakeWebSocketGateway.Peer p = gw.accept()) {
        p.answer(a.getKey());
        IOException e = failure(fc);
        assertFalse(e instanceof Errors.ServerError, a.getValue());
        assertTrue(e.getMessage().contains(a.getValue()), e.getMessage());
      }
    }
    // A valid 101 that selects an extension or a subprotocol the client did not offer.
    for (String extra : new String[] {"Sec-WebSocket-Extensions: permessage-deflate", "Sec-WebSocket-Protocol: chat"}) {
      CompletableFuture<Client> fc = connectAsync(builder());
      try (FakeWebSocketGateway.Peer p = gw.accept()) {
        p.answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: " + WebSocketUpgrade.accept(p.header("Sec-WebSocket-Key")) + "\r\n" + extra + "\r\n\r\n");
        IOException e = failure(fc);
        assertTrue(e.getMessage().contains(extra.startsWith("Sec-WebSocket-Ext") ? "extension" : "subprotocol chat"), e.getMessage());
      }
    }
    // An answer that never ends is read no further than 16 KiB.
    CompletableFuture<Client> fc = connectAsync(builder());
    try (FakeWebSocketGateway.Peer p = gw.accept()) {
      StringBuilder b = new StringBuilder("HTTP/1.1 101 Switching Protocols\r\n");
      while (b.length() <= WebSocketUpgrade.MAX_ANSWER_BYTES) {
        b.append("X-Filler: 0123456789012345678901234567890123456789\r\n");
      }
      p.answer(b.toString());
      assertTrue(failure(fc).getMessage().contains("longer than 16384 bytes"));
    }
    // A 101 without a subprotocol is accepted (RFC 6455 4.1 lets the server select none).
    CompletableFuture<Client> ok = connectAsync(builder());
    try (FakeWebSocketGateway.Peer p = gw.accept()) {
      p.answer101(null);
      p.read();
      p.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1")));
      ok.get(10, TimeUnit.SECONDS).close();
    }
  }

  /** The message bytes of a frame with its length prefix. */
  static byte[] frameBytes(Frame f) throws IOException {
    return Frames.encode(f, 1 << 20);
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      b.write(p, 0, p.length);
    }
    return b.toByteArray();
  }

  @Test
  void messagesTheWireFormatRefusesEndTheConnection() throws Exception {
    byte[] ping = frameBytes(Frame.newBuilder().setSeq(1).setPing(Ping.newBuilder()).build());
    byte[] prefix1MiB = ByteBuffer.allocate(4).putInt(1 << 21).array();
    Map<String, byte[]> cases = new LinkedHashMap<>();
    cases.put("text message", FakeWebSocketGateway.serverFrame(0x81, "hello".getBytes(StandardCharsets.UTF_8)));
    cases.put("fragmented websocket message", FakeWebSocketGateway.serverFrame(0x02, ping));
    cases.put("continuation frame", FakeWebSocketGateway.serverFrame(0x80, ping));
    cases.put("reserved bits", FakeWebSocketGateway.serverFrame(0xC2, ping));
    cases.put("reserved opcode 3", FakeWebSocketGateway.serverFrame(0x83, ping));
    cases.put("masked websocket frame", concat(new byte[] {(byte) 0x82, (byte) (0x80 | ping.length), 1, 2, 3, 4}, ping));
    cases.put("shorter than a frame's length prefix", FakeWebSocketGateway.serverFrame(0x82, new byte[] {0, 0, 1}));
    cases.put("does not hold exactly one frame (its length prefix says " + (ping.length - 4) + ")",
        FakeWebSocketGateway.serverFrame(0x82, concat(ping, ping)));
    cases.put("its length prefix says 1000)", FakeWebSocketGateway.serverFrame(0x82, concat(new byte[] {0, 0, 3, (byte) 232}, new byte[10])));
    cases.put("frame of length 0", FakeWebSocketGateway.serverFrame(0x82, new byte[4]));
    cases.put("undecodable frame", FakeWebSocketGateway.serverFrame(0x82, new byte[] {0, 0, 0, 2, (byte) 0xFF, (byte) 0xFF}));
    cases.put("control frame fragmented or over 125 bytes", FakeWebSocketGateway.serverFrame(0x89, new byte[126]));
    cases.put("close frame of 1 byte", FakeWebSocketGateway.serverFrame(0x88, new byte[] {3}));
    cases.put("reason that is not UTF-8", FakeWebSocketGateway.serverFrame(0x88, new byte[] {3, (byte) 232, (byte) 0xC3, 0x28}));
    // A header naming a 2 GiB message: refused from its length prefix, nothing more is read.
    cases.put("2147483652 bytes does not hold exactly one frame", concat(
        new byte[] {(byte) 0x82, 127, 0, 0, 0, 0, (byte) 0x80, 0, 0, 4}, ping));
    for (Map.Entry<String, byte[]> k : cases.entrySet()) {
      CompletableFuture<Client> fc = connectAsync(builder());
      try (FakeWebSocketGateway.Peer p = handshake()) {
        Client c = fc.get(10, TimeUnit.SECONDS);
        p.raw(k.getValue());
        IOException why = c.stopped().get(10, TimeUnit.SECONDS);
        assertInstanceOf(Frames.ProtocolException.class, why, k.getKey());
        assertFalse(why instanceof Frames.FrameTooLargeException, k.getKey());
        assertTrue(why.getMessage().contains(k.getKey()), k.getKey() + ": " + why.getMessage());
        assertEquals(1000, p.clientClose(), k.getKey() + ": the client closes with 1000");
      }
    }
    // A length prefix above the limit is frame_too_large, whatever the message holds (R3).
    for (byte[] m : new byte[][] {prefix1MiB, concat(prefix1MiB, new byte[100])}) {
      CompletableFuture<Client> fc = connectAsync(builder());
      try (FakeWebSocketGateway.Peer p = handshake()) {
        Client c = fc.get(10, TimeUnit.SECONDS);
        p.raw(FakeWebSocketGateway.serverFrame(0x82, m));
        assertInstanceOf(Frames.FrameTooLargeException.class, c.stopped().get(10, TimeUnit.SECONDS));
      }
    }
  }

  @Test
  void theGatewaysCloseEndsTheStream() throws Exception {
    Map<byte[], Predicate<IOException>> cases = new LinkedHashMap<>();
    byte[] shutdown = concat(new byte[] {3, (byte) 233}, "shutdown".getBytes(StandardCharsets.UTF_8));
    cases.put(FakeWebSocketGateway.serverFrame(0x88, shutdown),
        e -> e instanceof EOFException && e.getMessage().contains("websocket closed: 1001 shutdown"));
    cases.put(FakeWebSocketGateway.serverFrame(0x88, new byte[0]),
        e -> e instanceof EOFException && e.getMessage().contains("websocket closed: 1005"));
    byte[] policy = concat(new byte[] {3, (byte) 240}, "websocket_text".getBytes(StandardCharsets.UTF_8));
    cases.put(FakeWebSocketGateway.serverFrame(0x88, policy),
        e -> !(e instanceof EOFException) && e.getMessage().equals("websocket closed: 1008 websocket_text"));
    cases.put(new byte[0], e -> !(e instanceof EOFException) && e.getMessage().contains("websocket closed: 1006"));
    for (Map.Entry<byte[], Predicate<IOException>> k : cases.entrySet()) {
      CompletableFuture<Client> fc = connectAsync(builder());
      try (FakeWebSocketGateway.Peer p = handshake()) {
        Client c = fc.get(10, TimeUnit.SECONDS);
        p.raw(k.getKey());
        p.s.shutdownOutput();
        IOException why = c.stopped().get(10, TimeUnit.SECONDS);
        assertTrue(k.getValue().test(why), String.valueOf(why));
      }
    }
  }

  @Test
  void aFatalErrorBeforeTheCloseIsTheCause() throws Exception {
    CompletableFuture<Client> fc = connectAsync(builder());
    try (FakeWebSocketGateway.Peer p = handshake()) {
      Client c = fc.get(10, TimeUnit.SECONDS);
      CompletableFuture<Response> call = c.request("echo", "m", new byte[] {1});
      p.readSkippingPings();
      p.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_RATE_LIMITED)
          .setMessage("too_many_requests").setFatal(true)));
      p.raw(FakeWebSocketGateway.serverFrame(0x88, new byte[] {3, (byte) 232}));
      p.s.shutdownOutput();
      Errors.ServerError e = assertInstanceOf(Errors.ServerError.class, c.stopped().get(10, TimeUnit.SECONDS));
      assertEquals(ErrorCode.ERROR_CODE_RATE_LIMITED, e.code());
      assertInstanceOf(Errors.ConnectionLost.class, failure(call));
    }
  }

  @Test
  void addressesAreCheckedBeforeAnyDial() {
    for (String bad : new String[] {"ws://127.0.0.1:1/tcpgw#frag", "ws://user@127.0.0.1:1/tcpgw", "ws:///tcpgw",
        "wss://[::1/tcpgw", "ws://127.0.0.1:70000/tcpgw", "http://127.0.0.1:1/tcpgw", "127.0.0.1"}) {
      assertThrows(IllegalArgumentException.class, () -> Client.builder().address(bad).token("t").connect(), bad);
    }
    IllegalArgumentException plain = assertThrows(IllegalArgumentException.class,
        () -> Client.builder().address("ws://127.0.0.1:1/tcpgw").tls().token("t").connect());
    assertTrue(plain.getMessage().contains("use wss://"), plain.getMessage());
  }

  @Test
  void endpointsParseLikeUrls() {
    Endpoint e = Endpoint.parse("WSS://[::1]:8443/tcpgw?x=1");
    assertTrue(e.webSocket && e.secure);
    assertEquals("::1", e.host);
    assertEquals(8443, e.port);
    assertEquals("/tcpgw?x=1", e.target);
    assertEquals("[::1]:8443", e.hostHeader);
    Endpoint d = Endpoint.parse("ws://gw.example.com");
    assertFalse(d.secure);
    assertEquals(80, d.port);
    assertEquals("/", d.target);
    assertEquals("gw.example.com", d.hostHeader);
    assertEquals("gw.example.com", Endpoint.parse("wss://gw.example.com:443/tcpgw").hostHeader);
    assertEquals(443, Endpoint.parse("wss://gw.example.com/tcpgw").port);
    Endpoint t = Endpoint.parse("[::1]:7000");
    assertFalse(t.webSocket);
    assertEquals("::1", t.host);
    assertEquals(7000, t.port);
  }

  @Test
  void acceptIsRfc6455s() {
    // RFC 6455 1.3's example.
    assertEquals("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebSocketUpgrade.accept("dGhlIHNhbXBsZSBub25jZQ=="));
  }
}
