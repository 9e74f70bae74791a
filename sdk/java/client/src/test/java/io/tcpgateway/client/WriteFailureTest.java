package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tcpgateway.v1.Protocol.Error;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.Response;

/**
 * R37: the reader decides the cause of a connection's end. The reader is held up in the app's
 * push listener while the gateway sends a fatal ERROR and resets the connection, so the client's
 * writes fail first; the ERROR must still be the cause.
 */
@Timeout(30)
class WriteFailureTest {
  FakeGateway gw;

  @BeforeEach
  void start() throws IOException {
    gw = new FakeGateway();
  }

  @AfterEach
  void stop() throws IOException {
    gw.close();
  }

  @Test
  void aFatalErrorReadAfterAFailedWriteIsTheCause() throws Exception {
    CountDownLatch held = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    BlockingQueue<IOException> disconnects = new LinkedBlockingQueue<>();
    Listener l = new Listener() {
      @Override
      public void onPush(ReceivedPush p) {
        held.countDown();
        try {
          release.await(20, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }

      @Override
      public void onDisconnected(IOException cause) {
        disconnects.add(cause);
      }
    };
    CompletableFuture<Client> connecting = CompletableFuture.supplyAsync(() -> {
      try {
        return Client.builder().address(gw.address()).token("t-1").listener(l).backoff(new Backoff(20, 100, -1)).connect();
      } catch (IOException e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    });
    FakeGateway.Peer peer = gw.accept();
    peer.read();
    peer.write(Frame.newBuilder().setHandshakeAck(FakeGateway.ack("s-1")));
    Client client = connecting.get(10, TimeUnit.SECONDS);
    Conn cn = client.currentConn();

    peer.write(ClientTest.push("hold", 0, 1));
    held.await(10, TimeUnit.SECONDS);
    // The ERROR waits behind the held push; then FIN and a reset.
    peer.write(Frame.newBuilder().setError(Error.newBuilder().setCode(ErrorCode.ERROR_CODE_INTERNAL).setMessage("bye").setFatal(true)));
    peer.s.setSoLinger(true, 0);
    peer.close();

    // Requests until one's write fails (the first may still go out before the reset arrived).
    List<CompletableFuture<Response>> calls = new ArrayList<>();
    for (int i = 0; i < 50 && cn.writeError() == null; i++) {
      calls.add(client.request("svc", "m", new byte[] {1}));
      for (int j = 0; j < 20 && cn.writeError() == null; j++) {
        Thread.sleep(10); // polling the connection's state: no event says a write failed
      }
    }
    assertNotNull(cn.writeError(), "no write failed");
    assertNull(disconnects.poll(100, TimeUnit.MILLISECONDS), "disconnected before the reader decided the cause");
    release.countDown();

    IOException cause = disconnects.poll(5, TimeUnit.SECONDS);
    assertInstanceOf(Errors.ServerError.class, cause, String.valueOf(cause));
    assertEquals(ErrorCode.ERROR_CODE_INTERNAL, ((Errors.ServerError) cause).code());
    for (CompletableFuture<Response> c : calls) {
      ExecutionException e = assertThrows(ExecutionException.class, () -> c.get(5, TimeUnit.SECONDS));
      assertInstanceOf(Errors.ConnectionLost.class, e.getCause());
    }
    client.close();
  }
}
