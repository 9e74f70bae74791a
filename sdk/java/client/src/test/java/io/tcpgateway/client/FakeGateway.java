package io.tcpgateway.client;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.HandshakeAck;

/** A scripted gateway on loopback: each test reads and writes the frames it wants. */
final class FakeGateway implements AutoCloseable {
  final ServerSocket server;

  FakeGateway() throws IOException {
    server = new ServerSocket();
    server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    server.setSoTimeout(10_000);
  }

  String address() {
    return "127.0.0.1:" + server.getLocalPort();
  }

  Peer accept() throws IOException {
    return new Peer(server.accept());
  }

  @Override
  public void close() throws IOException {
    server.close();
  }

  static HandshakeAck.Builder ack(String session) {
    return HandshakeAck.newBuilder().setProtocolVersion(2).setSessionId(session).setUserId("u-1")
        .setHeartbeatIntervalMs(30_000).setIdleTimeoutMs(90_000).setMaxFrameBytes(65536).setServerId("fake");
  }

  /** One accepted connection. */
  static final class Peer implements AutoCloseable {
    final Socket s;
    final DataInputStream in;
    final OutputStream out;

    Peer(Socket s) throws IOException {
      this.s = s;
      s.setSoTimeout(10_000);
      in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
      out = s.getOutputStream();
    }

    Frame read() throws IOException {
      return Frames.read(in, 1 << 20);
    }

    /** The next frame that is not a PING (heartbeats and watermark confirmations are answered). */
    Frame readSkippingPings() throws IOException {
      while (true) {
        Frame f = read();
        if (f.getBodyCase() != Frame.BodyCase.PING) {
          return f;
        }
        write(Frame.newBuilder().setSeq(f.getSeq()).setPong(tcpgateway.v1.Protocol.Pong.newBuilder()
            .setClientTimeMs(f.getPing().getClientTimeMs())).build());
      }
    }

    void write(Frame f) throws IOException {
      out.write(Frames.encode(f, 1 << 20));
      out.flush();
    }

    void write(Frame.Builder f) throws IOException {
      write(f.build());
    }

    /** Whether the client closed the connection (EOF) within the socket timeout. */
    boolean closedByClient() throws IOException {
      try {
        while (true) {
          read();
        }
      } catch (java.io.EOFException | java.net.SocketException e) {
        return true;
      } catch (SocketTimeoutException e) {
        return false;
      }
    }

    @Override
    public void close() throws IOException {
      s.close();
    }
  }
}
