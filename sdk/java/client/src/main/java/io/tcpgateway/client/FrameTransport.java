package io.tcpgateway.client;

import java.io.IOException;
import tcpgateway.v1.Protocol.Frame;

/**
 * How a connection's frames cross the network: the TCP byte stream ({@link TcpTransport}) or
 * one WebSocket message per frame ({@link WebSocketTransport}). {@link Conn} runs the protocol
 * above it the same way for both.
 */
interface FrameTransport {
  /**
   * Reads the next frame; called by one thread at a time. A length above {@code max} is a
   * {@link Frames.FrameTooLargeException}, read no further; malformed input a {@link
   * Frames.ProtocolException}; the end of the stream an {@link java.io.EOFException} or another
   * IOException saying why.
   */
  Frame read(int max) throws IOException;

  /** Sends one encoded frame (length prefix included) and flushes it; callers serialise writes. */
  void write(byte[] frame) throws IOException;

  /** Ends the connection; idempotent, never blocks on the peer for long. */
  void close();
}
