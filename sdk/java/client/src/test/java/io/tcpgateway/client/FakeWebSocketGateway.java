package io.tcpgateway.client;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.Pong;

/**
 * A scripted WebSocket gateway on loopback (the server side of RFC 6455, written for the tests):
 * each test answers the upgrade as it wants, then reads the client's messages (unmasking them)
 * and writes any frame, well-formed or not.
 */
final class FakeWebSocketGateway implements AutoCloseable {
  final ServerSocket server;

  FakeWebSocketGateway() throws IOException {
    server = new ServerSocket();
    server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    server.setSoTimeout(10_000);
  }

  String url() {
    return "ws://127.0.0.1:" + server.getLocalPort() + "/tcpgw";
  }

  /** Accepts a connection and reads its upgrade request, not answered yet. */
  Peer accept() throws IOException {
    return new Peer(server.accept());
  }

  /** Accepts a connection and upgrades it with a valid 101. */
  Peer upgrade() throws IOException {
    Peer p = accept();
    p.answer101(WebSocketUpgrade.SUBPROTOCOL);
    return p;
  }

  @Override
  public void close() throws IOException {
    server.close();
  }

  /** A frame as a server sends it: unmasked, with the given first byte (FIN, RSV, opcode). */
  static byte[] serverFrame(int b0, byte[] payload) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.write(b0);
    int n = payload.length;
    if (n < 126) {
      b.write(n);
    } else if (n <= 0xFFFF) {
      b.write(126);
      b.write(n >>> 8);
      b.write(n);
    } else {
      b.write(127);
      for (int i = 0; i < 8; i++) {
        b.write((int) ((long) n >>> (56 - 8 * i)));
      }
    }
    b.write(payload, 0, n);
    return b.toByteArray();
  }

  /** A client frame as read: opcode, FIN, whether it was masked, and the unmasked payload. */
  static final class ClientFrame {
    final int op;
    final boolean fin;
    final boolean masked;
    final byte[] payload;

    ClientFrame(int op, boolean fin, boolean masked, byte[] payload) {
      this.op = op;
      this.fin = fin;
      this.masked = masked;
      this.payload = payload;
    }
  }

  /** One accepted connection. */
  static final class Peer implements AutoCloseable {
    final Socket s;
    final DataInputStream in;
    final OutputStream out;
    /** The upgrade request: the request line, then the header lines. */
    final String[] request;

    Peer(Socket s) throws IOException {
      this.s = s;
      s.setSoTimeout(10_000);
      in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
      out = s.getOutputStream();
      request = WebSocketUpgrade.readHead(in);
    }

    /** The value of a request header (name in any case), or null. */
    String header(String name) {
      for (int i = 1; i < request.length; i++) {
        int colon = request[i].indexOf(':');
        if (colon > 0 && request[i].substring(0, colon).trim().toLowerCase(Locale.ROOT).equals(name.toLowerCase(Locale.ROOT))) {
          return request[i].substring(colon + 1).trim();
        }
      }
      return null;
    }

    /** A 101 with the right accept, selecting {@code protocol} (null: none). */
    void answer101(String protocol) throws IOException {
      answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          + "Sec-WebSocket-Accept: " + WebSocketUpgrade.accept(header("Sec-WebSocket-Key")) + "\r\n"
          + (protocol == null ? "" : "Sec-WebSocket-Protocol: " + protocol + "\r\n") + "\r\n");
    }

    void answer(String head) throws IOException {
      raw(head.getBytes(StandardCharsets.ISO_8859_1));
    }

    void raw(byte[] b) throws IOException {
      out.write(b);
      out.flush();
    }

    /** Sends a frame as one binary message. */
    void write(Frame f) throws IOException {
      raw(serverFrame(0x82, Frames.encode(f, 1 << 20)));
    }

    void write(Frame.Builder f) throws IOException {
      write(f.build());
    }

    ClientFrame readFrame() throws IOException {
      int b0 = in.readUnsignedByte();
      int b1 = in.readUnsignedByte();
      long n = b1 & 0x7F;
      if (n == 126) {
        n = in.readUnsignedShort();
      } else if (n == 127) {
        n = in.readLong();
      }
      byte[] key = new byte[4];
      boolean masked = (b1 & 0x80) != 0;
      if (masked) {
        in.readFully(key);
      }
      byte[] p = new byte[(int) n];
      in.readFully(p);
      for (int i = 0; i < p.length; i++) {
        p[i] ^= key[i & 3];
      }
      return new ClientFrame(b0 & 0x0F, (b0 & 0x80) != 0, masked, p);
    }

    /** The next protocol frame: a binary message's, which must be masked and hold one frame. */
    Frame read() throws IOException {
      ClientFrame m = readFrame();
      if (m.op != WebSocketTransport.OP_BINARY || !m.fin || !m.masked) {
        throw new IOException("expected a masked final binary message, got opcode " + m.op + " fin " + m.fin + " masked " + m.masked);
      }
      DataInputStream d = new DataInputStream(new java.io.ByteArrayInputStream(m.payload));
      Frame f = Frames.read(d, 1 << 20);
      if (d.available() != 0) {
        throw new IOException("a message holding more than one frame");
      }
      return f;
    }

    /** The next protocol frame that is not a PING (those are answered). */
    Frame readSkippingPings() throws IOException {
      while (true) {
        Frame f = read();
        if (f.getBodyCase() != Frame.BodyCase.PING) {
          return f;
        }
        write(Frame.newBuilder().setSeq(f.getSeq()).setPong(Pong.newBuilder().setClientTimeMs(f.getPing().getClientTimeMs())));
      }
    }

    /**
     * The close code the client sent before ending the connection, -1 for none (EOF first), skipping
     * its other messages; 0 when it did neither within the socket timeout.
     */
    int clientClose() throws IOException {
      try {
        while (true) {
          ClientFrame f = readFrame();
          if (f.op == WebSocketTransport.OP_CLOSE) {
            return f.payload.length >= 2 ? ((f.payload[0] & 0xFF) << 8) | (f.payload[1] & 0xFF) : 1005;
          }
        }
      } catch (EOFException | SocketException e) {
        return -1;
      } catch (SocketTimeoutException e) {
        return 0;
      }
    }

    @Override
    public void close() throws IOException {
      s.close();
    }
  }
}
