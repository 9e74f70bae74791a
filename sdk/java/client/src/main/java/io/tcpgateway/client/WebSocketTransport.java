package io.tcpgateway.client;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import tcpgateway.v1.Protocol.Frame;

/**
 * Frames as WebSocket messages (RFC 6455, client side) on a socket whose upgrade succeeded: each
 * binary message carries exactly one frame with its length prefix, both ways
 * (docs/client-behaviour.md, "WebSocket transport"). Sent messages are masked and never
 * fragmented; pings are answered with pongs; the gateway's close ends the stream. A text
 * message, a fragment, a masked or reserved frame, or a message that is not exactly one frame is
 * a {@link Frames.ProtocolException}, refused before its payload is read where its header
 * already says so.
 */
final class WebSocketTransport implements FrameTransport {
  static final int OP_CONTINUATION = 0x0;
  static final int OP_TEXT = 0x1;
  static final int OP_BINARY = 0x2;
  static final int OP_CLOSE = 0x8;
  static final int OP_PING = 0x9;
  static final int OP_PONG = 0xA;

  /** Close codes of an end the gateway meant (normal, going away, no status): like a FIN. */
  static boolean cleanClose(int code) {
    return code == 1000 || code == 1001 || code == 1005;
  }

  /** How long close() gives its close frame before it closes the socket anyway. */
  static final long CLOSE_FRAME_WAIT_MS = 1000;

  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;
  private final SecureRandom random;
  /** Serialises writes: the caller's frames and the reader's pongs. */
  private final ReentrantLock wlock = new ReentrantLock();
  /** Guarded by wlock: a write failed, so nothing more is written (R37). */
  private boolean writeFailed;
  private final AtomicBoolean closed = new AtomicBoolean();

  WebSocketTransport(Socket socket, DataInputStream in, OutputStream out, SecureRandom random) {
    this.socket = socket;
    this.in = in;
    this.out = out;
    this.random = random;
  }

  @Override
  public Frame read(int max) throws IOException {
    while (true) {
      int b0;
      int b1;
      try {
        b0 = in.readUnsignedByte();
        b1 = in.readUnsignedByte();
      } catch (EOFException e) {
        throw new IOException("websocket closed: 1006 (the connection ended without a close frame)", e);
      }
      boolean fin = (b0 & 0x80) != 0;
      int op = b0 & 0x0F;
      if ((b0 & 0x70) != 0) {
        throw new Frames.ProtocolException("websocket frame with reserved bits set (no extension was negotiated)");
      }
      if ((b1 & 0x80) != 0) {
        throw new Frames.ProtocolException("masked websocket frame from the gateway (a server never masks)");
      }
      long len = length(b1 & 0x7F);
      switch (op) {
        case OP_BINARY:
          if (!fin) {
            throw new Frames.ProtocolException("fragmented websocket message (a message carries one whole frame)");
          }
          return message(len, max);
        case OP_TEXT:
          throw new Frames.ProtocolException("websocket text message (frames travel in binary messages)");
        case OP_CONTINUATION:
          throw new Frames.ProtocolException("websocket continuation frame (messages are never fragmented)");
        case OP_PING:
        case OP_PONG:
        case OP_CLOSE:
          if (!fin || len > 125) {
            throw new Frames.ProtocolException("websocket control frame fragmented or over 125 bytes");
          }
          byte[] payload = new byte[(int) len];
          readPayload(payload);
          if (op == OP_PING) {
            pong(payload);
          } else if (op == OP_CLOSE) {
            throw closedBy(payload);
          }
          break; // a pong: nothing asked for one, nothing to do
        default:
          throw new Frames.ProtocolException("websocket frame with reserved opcode " + op);
      }
    }
  }

  /** The payload length after the first two header bytes (RFC 6455 5.2). */
  private long length(int len7) throws IOException {
    if (len7 == 126) {
      return readHeader(2);
    }
    if (len7 == 127) {
      long n = readHeader(8);
      if (n < 0) {
        throw new Frames.ProtocolException("websocket frame length with its most significant bit set");
      }
      return n;
    }
    return len7;
  }

  /** Reads a big-endian number of 2, 4 or 8 bytes (a length of the frame or of the message). */
  private long readHeader(int bytes) throws IOException {
    try {
      return bytes == 2 ? in.readUnsignedShort() : bytes == 4 ? in.readInt() : in.readLong();
    } catch (EOFException e) {
      throw new IOException("websocket closed: 1006 (the connection ended inside a frame)", e);
    }
  }

  private void readPayload(byte[] b) throws IOException {
    try {
      in.readFully(b);
    } catch (EOFException e) {
      throw new IOException("websocket closed: 1006 (the connection ended inside a frame)", e);
    }
  }

  /**
   * A binary message of {@code len} bytes: its length prefix is checked first (above {@code max}
   * is frame_too_large whatever the message holds), then that it names the rest of the message
   * exactly; only then is the body allocated and read.
   */
  private Frame message(long len, int max) throws IOException {
    if (len < 4) {
      throw new Frames.ProtocolException("websocket message of " + len + " bytes, shorter than a frame's length prefix");
    }
    long n = Integer.toUnsignedLong((int) readHeader(4));
    Frames.checkLength(n, max);
    if (n != len - 4) {
      throw new Frames.ProtocolException("websocket message of " + len + " bytes does not hold exactly one frame (its length prefix says " + n + ")");
    }
    byte[] body = new byte[(int) n];
    readPayload(body);
    return Frames.parse(body);
  }

  /**
   * Why the gateway's close ends the stream: a clean close (1000, 1001, none) is the end of the
   * stream, like a FIN; any other code is an error naming it.
   */
  static IOException closedBy(byte[] payload) {
    if (payload.length == 1) {
      return new Frames.ProtocolException("websocket close frame of 1 byte");
    }
    int code = payload.length == 0 ? 1005 : ((payload[0] & 0xFF) << 8) | (payload[1] & 0xFF);
    String reason = "";
    if (payload.length > 2) {
      try {
        reason = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(payload, 2, payload.length - 2)).toString();
      } catch (CharacterCodingException e) {
        return new Frames.ProtocolException("websocket close frame with a reason that is not UTF-8");
      }
    }
    String what = "websocket closed: " + code + (reason.isEmpty() ? "" : " " + reason);
    return cleanClose(code) ? new EOFException("connection closed by the gateway (" + what + ")") : new IOException(what);
  }

  /** Sends one frame as one masked binary message. */
  @Override
  public void write(byte[] frame) throws IOException {
    send(OP_BINARY, frame);
  }

  /** Answers a ping with its payload; a failure is the writer's to notice: the reader reads on (R37). */
  private void pong(byte[] payload) {
    try {
      send(OP_PONG, payload);
    } catch (IOException ignored) {
      // the next write fails too, and the reader goes on to the end of the stream
    }
  }

  private void send(int op, byte[] payload) throws IOException {
    byte[] m = encode(op, payload, random.nextInt());
    wlock.lock();
    try {
      if (writeFailed) {
        throw new IOException("websocket: an earlier write failed");
      }
      try {
        out.write(m);
        out.flush();
      } catch (IOException e) {
        writeFailed = true;
        throw e;
      }
    } finally {
      wlock.unlock();
    }
  }

  /** One final frame of a client: header, the mask key, the payload masked with it (RFC 6455 5.2, 5.3). */
  static byte[] encode(int op, byte[] payload, int mask) {
    int n = payload.length;
    int header = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
    byte[] m = new byte[header + 4 + n];
    m[0] = (byte) (0x80 | op);
    if (n < 126) {
      m[1] = (byte) (0x80 | n);
    } else if (n <= 0xFFFF) {
      m[1] = (byte) (0x80 | 126);
      m[2] = (byte) (n >>> 8);
      m[3] = (byte) n;
    } else {
      m[1] = (byte) (0x80 | 127);
      for (int i = 0; i < 8; i++) {
        m[2 + i] = (byte) ((long) n >>> (56 - 8 * i));
      }
    }
    byte[] key = {(byte) (mask >>> 24), (byte) (mask >>> 16), (byte) (mask >>> 8), (byte) mask};
    System.arraycopy(key, 0, m, header, 4);
    int at = header + 4;
    for (int i = 0; i < n; i++) {
      m[at + i] = (byte) (payload[i] ^ key[i & 3]);
    }
    return m;
  }

  /**
   * Sends a close 1000 when no write is in progress, then closes the socket. The close frame is
   * written by a thread of its own and given {@link #CLOSE_FRAME_WAIT_MS}: a write cannot time
   * out, and one blocked on a gateway that stopped reading must not hold up the close.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    Thread t = new Thread(this::sendClose, "tcpgw-ws-close");
    t.setDaemon(true);
    t.start();
    try {
      t.join(CLOSE_FRAME_WAIT_MS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Conn.closeQuietly(socket); // also ends a close frame still blocked
  }

  private void sendClose() {
    if (!wlock.tryLock()) {
      return; // a write is in progress (maybe blocked): the socket's close ends it
    }
    try {
      if (!writeFailed) {
        out.write(encode(OP_CLOSE, new byte[] {(byte) (1000 >>> 8), (byte) (1000 & 0xFF)}, random.nextInt()));
        out.flush();
      }
    } catch (IOException ignored) {
      // the connection is ending anyway
    } finally {
      wlock.unlock();
    }
  }

}
