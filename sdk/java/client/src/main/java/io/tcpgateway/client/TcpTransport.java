package io.tcpgateway.client;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import tcpgateway.v1.Protocol.Frame;

/** Frames as a byte stream on a TCP (or TLS) socket: docs/protocol.md, "Framing". */
final class TcpTransport implements FrameTransport {
  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;

  TcpTransport(Socket socket, DataInputStream in, OutputStream out) {
    this.socket = socket;
    this.in = in;
    this.out = out;
  }

  @Override
  public Frame read(int max) throws IOException {
    return Frames.read(in, max);
  }

  @Override
  public void write(byte[] frame) throws IOException {
    out.write(frame);
    out.flush();
  }

  @Override
  public void close() {
    Conn.closeQuietly(socket);
  }
}
