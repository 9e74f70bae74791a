package io.tcpgateway.client;

import com.google.protobuf.InvalidProtocolBufferException;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import tcpgateway.v1.Protocol.Frame;

/**
 * The wire framing: a 4-byte big-endian length, then exactly that many bytes of a protobuf
 * {@link Frame} (docs/protocol.md, "Framing").
 */
public final class Frames {
  private Frames() {}

  /** Encodes {@code f} with its length prefix; a body above {@code max} bytes is refused. */
  public static byte[] encode(Frame f, int max) throws FrameTooLargeException {
    int n = f.getSerializedSize();
    if (n > max) {
      throw new FrameTooLargeException(n, max);
    }
    byte[] out = new byte[4 + n];
    out[0] = (byte) (n >>> 24);
    out[1] = (byte) (n >>> 16);
    out[2] = (byte) (n >>> 8);
    out[3] = (byte) n;
    byte[] body = f.toByteArray();
    System.arraycopy(body, 0, out, 4, n);
    return out;
  }

  /**
   * Reads one frame. The length is checked before the body is read or allocated, so a hostile
   * peer cannot make the client allocate more than {@code max} bytes; a length of 0, a body
   * that is not a Frame, or a Frame without a body is a {@link ProtocolException}.
   *
   * @throws EOFException when the stream ends before or inside a frame
   */
  public static Frame read(InputStream in, int max) throws IOException {
    DataInputStream d = in instanceof DataInputStream ? (DataInputStream) in : new DataInputStream(in);
    long n = Integer.toUnsignedLong(d.readInt());
    checkLength(n, max);
    byte[] body = new byte[(int) n];
    d.readFully(body);
    return parse(body);
  }

  /** Checks a frame's length prefix before its body is read: 0 and above {@code max} are refused. */
  static void checkLength(long n, int max) throws ProtocolException {
    if (n == 0) {
      throw new ProtocolException("frame of length 0 (a frame needs a body)");
    }
    if (n > max) {
      throw new FrameTooLargeException(n, max);
    }
  }

  /** Decodes a frame's body; one that is not a Frame, or a Frame without a body, is refused. */
  static Frame parse(byte[] body) throws ProtocolException {
    Frame f;
    try {
      f = Frame.parseFrom(body);
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolException("undecodable frame: " + e.getMessage());
    }
    if (f.getBodyCase() == Frame.BodyCase.BODY_NOT_SET) {
      throw new ProtocolException("frame without a body (an unknown kind?)");
    }
    return f;
  }

  /** A frame the peer sent was malformed. */
  public static class ProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String message) {
      super(message);
    }
  }

  /** A frame longer than the agreed maximum (received or about to be sent). */
  public static final class FrameTooLargeException extends ProtocolException {
    private static final long serialVersionUID = 1L;

    FrameTooLargeException(long length, int max) {
      super("frame of " + length + " bytes exceeds the maximum of " + max);
    }
  }
}
