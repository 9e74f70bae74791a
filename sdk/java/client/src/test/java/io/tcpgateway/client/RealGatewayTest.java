package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.GoAway;
import tcpgateway.v1.Protocol.HandshakeAck;
import tcpgateway.v1.Protocol.Response;

/** The SDK against a real gateway process (cmd/gateway) on loopback. */
@Timeout(120)
class RealGatewayTest {
  static GatewayProcess gw;

  @BeforeAll
  static void start() throws Exception {
    gw = new GatewayProcess();
  }

  @AfterAll
  static void stop() throws Exception {
    if (gw != null) {
      gw.close();
    }
  }

  @Test
  void requestsPingsAndHeartbeatsOnARealGateway() throws Exception {
    BlockingQueue<IOException> lost = new LinkedBlockingQueue<>();
    BlockingQueue<HandshakeAck> acks = new LinkedBlockingQueue<>();
    Client c = Client.builder().address(gw.clientAddr).tokenSource(() -> GatewayProcess.token("alice", 3600))
        .deviceId("d-1").listener(new Listener() {
          @Override
          public void onDisconnected(IOException cause) {
            lost.add(cause);
          }

          @Override
          public void onConnected(HandshakeAck ack) {
            acks.add(ack);
          }
        }).connect();
    try {
      HandshakeAck ack = acks.poll(5, TimeUnit.SECONDS);
      assertEquals("alice", ack.getUserId());
      assertEquals(ack.getSessionId(), c.sessionId());
      assertFalse(c.sessionId().isEmpty(), "the gateway assigned a session id");
      assertTrue(ack.getTokenExpiresAtMs() > System.currentTimeMillis());

      List<CompletableFuture<Response>> calls = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        calls.add(c.request("echo", "m" + i, ("hello " + i).getBytes(StandardCharsets.UTF_8)));
      }
      for (int i = 0; i < 20; i++) {
        Response r = calls.get(i).get(10, TimeUnit.SECONDS);
        assertEquals(ErrorCode.ERROR_CODE_OK, r.getCode());
        assertEquals(200, r.getStatus());
        assertEquals("hello " + i, r.getPayload().toStringUtf8());
        assertEquals("/rpc/m" + i, r.getHeadersMap().get("method"));
      }
      Response noRoute = c.request("nope", "m", new byte[0]).get(10, TimeUnit.SECONDS);
      assertEquals(ErrorCode.ERROR_CODE_NO_ROUTE, noRoute.getCode());
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
  void aBadTokenFailsTheFirstConnect() {
    Errors.ServerError e = assertThrows(Errors.ServerError.class,
        () -> Client.builder().address(gw.clientAddr).token("not-a-jwt").connect());
    assertEquals(ErrorCode.ERROR_CODE_UNAUTHENTICATED, e.code());
    assertEquals("invalid_token", e.gatewayMessage());
    Errors.ServerError expired = assertThrows(Errors.ServerError.class,
        () -> Client.builder().address(gw.clientAddr).token(GatewayProcess.token("bob", -120)).connect());
    assertEquals("expired_token", expired.gatewayMessage());
  }

  @Test
  void aSecondConnectionOfTheSessionReplacesTheFirstWhichStops() throws Exception {
    Client first = Client.builder().address(gw.clientAddr).token(GatewayProcess.token("carol", 3600)).connect();
    Client second = Client.builder().address(gw.clientAddr).token(GatewayProcess.token("carol", 3600))
        .sessionId(first.sessionId()).connect();
    try {
      IOException why = first.stopped().get(10, TimeUnit.SECONDS);
      Errors.GoAwayError g = assertInstanceOf(Errors.GoAwayError.class, why);
      assertEquals(GoAway.Reason.REASON_REPLACED, g.reason());
      assertEquals(ErrorCode.ERROR_CODE_OK, second.request("echo", "m", new byte[] {1}).get(10, TimeUnit.SECONDS).getCode());
      assertFalse(second.stopped().isDone());
    } finally {
      second.close();
      first.close();
    }
  }
}
