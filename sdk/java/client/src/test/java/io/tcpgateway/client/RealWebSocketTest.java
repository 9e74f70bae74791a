package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.GoAway;
import tcpgateway.v1.Protocol.Response;

/** The SDK over WebSocket against real gateway processes (cmd/gateway): ws:// and wss://. */
@Timeout(120)
class RealWebSocketTest {
  static GatewayProcess plain;
  static GatewayProcess secure;

  @BeforeAll
  static void start() throws Exception {
    plain = GatewayProcess.webSocket(GatewayProcess.WebSocket.PLAIN);
    secure = GatewayProcess.webSocket(GatewayProcess.WebSocket.TLS);
  }

  @AfterAll
  static void stop() throws Exception {
    for (GatewayProcess g : new GatewayProcess[] {plain, secure}) {
      if (g != null) {
        g.close();
      }
    }
  }

  static ByteArrayInputStream pem(String s) {
    return new ByteArrayInputStream(s.getBytes(StandardCharsets.UTF_8));
  }

  /** Requests, a ping, and a session kept past the idle timeout by the protocol's heartbeats. */
  static void exercise(Client.Builder b) throws Exception {
    BlockingQueue<IOException> lost = new LinkedBlockingQueue<>();
    Client c = b.tokenSource(() -> GatewayProcess.token("alice", 3600)).listener(new Listener() {
      @Override
      public void onDisconnected(IOException cause) {
        lost.add(cause);
      }
    }).connect();
    try {
      assertFalse(c.sessionId().isEmpty(), "the gateway assigned a session id");
      List<CompletableFuture<Response>> calls = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        calls.add(c.request("echo", "m" + i, ("hello " + i).getBytes(StandardCharsets.UTF_8)));
      }
      for (int i = 0; i < 20; i++) {
        Response r = calls.get(i).get(10, TimeUnit.SECONDS);
        assertEquals(ErrorCode.ERROR_CODE_OK, r.getCode());
        assertEquals("hello " + i, r.getPayload().toStringUtf8());
      }
      // A frame near the gateway's limit (64 KiB): a message with a 16-bit length.
      byte[] big = new byte[60_000];
      assertEquals(60_000, c.request("echo", "big", big).get(10, TimeUnit.SECONDS).getPayload().size());
      assertTrue(c.ping().get(5, TimeUnit.SECONDS).toNanos() > 0);
      // The gateway closes a session silent for 1.2 s: the SDK's heartbeat keeps this one.
      assertNull(lost.poll(2500, TimeUnit.MILLISECONDS), "the session outlives the idle timeout");
      assertEquals(ErrorCode.ERROR_CODE_OK, c.request("echo", "m", new byte[] {1}).get(10, TimeUnit.SECONDS).getCode());
    } finally {
      c.close();
    }
    assertInstanceOf(Errors.Closed.class, c.stopped().get(5, TimeUnit.SECONDS));
  }

  @Test
  void requestsPingsAndHeartbeatsOverWs() throws Exception {
    exercise(Client.builder().address(plain.webSocketUrl));
  }

  @Test
  void requestsPingsAndHeartbeatsOverWssTrustingTheGivenCa() throws Exception {
    exercise(Client.builder().address(secure.webSocketUrl).tlsTrusting(pem(secure.caPem)));
    // The certificate names localhost too; the name checked is the URL's host.
    exercise(Client.builder().address(secure.webSocketUrl.replace("127.0.0.1", "localhost")).tlsTrusting(pem(secure.caPem)));
  }

  @Test
  void wssVerifiesTheCertificate() throws Exception {
    // Without TLS options wss:// trusts the system's roots, which do not hold the test CA.
    IOException untrusted = assertThrows(IOException.class,
        () -> Client.builder().address(secure.webSocketUrl).token(GatewayProcess.token("bob", 60)).connect());
    assertInstanceOf(SSLHandshakeException.class, untrusted.getCause(), String.valueOf(untrusted));
    // A name the certificate does not hold.
    IOException wrongName = assertThrows(IOException.class, () -> Client.builder().address(secure.webSocketUrl)
        .tlsTrusting(pem(secure.caPem)).tlsServerName("elsewhere.example").token(GatewayProcess.token("bob", 60)).connect());
    assertInstanceOf(SSLHandshakeException.class, wrongName.getCause(), String.valueOf(wrongName));
  }

  @Test
  void refusalsOverWebSocket() throws Exception {
    // The gateway's ERROR arrives in a binary message before its close.
    Errors.ServerError e = assertThrows(Errors.ServerError.class,
        () -> Client.builder().address(plain.webSocketUrl).token("not-a-jwt").connect());
    assertEquals(ErrorCode.ERROR_CODE_UNAUTHENTICATED, e.code());
    assertEquals("invalid_token", e.gatewayMessage());
    // Another path: HTTP 404, a dial failure.
    IOException notFound = assertThrows(IOException.class, () -> Client.builder()
        .address(plain.webSocketUrl.replace("/tcpgw", "/elsewhere")).token(GatewayProcess.token("bob", 60)).connect());
    assertFalse(notFound instanceof Errors.ServerError);
    assertTrue(notFound.getMessage().contains("HTTP 404"), notFound.getMessage());
  }

  @Test
  void aSecondConnectionOfTheSessionReplacesTheFirstOverWebSocket() throws Exception {
    Client first = Client.builder().address(plain.webSocketUrl).token(GatewayProcess.token("carol", 3600)).connect();
    Client second = Client.builder().address(plain.webSocketUrl).token(GatewayProcess.token("carol", 3600))
        .sessionId(first.sessionId()).connect();
    try {
      Errors.GoAwayError g = assertInstanceOf(Errors.GoAwayError.class, first.stopped().get(10, TimeUnit.SECONDS));
      assertEquals(GoAway.Reason.REASON_REPLACED, g.reason());
      assertEquals(ErrorCode.ERROR_CODE_OK, second.request("echo", "m", new byte[] {1}).get(10, TimeUnit.SECONDS).getCode());
    } finally {
      second.close();
      first.close();
    }
  }
}
