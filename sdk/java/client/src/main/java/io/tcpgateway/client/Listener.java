package io.tcpgateway.client;

import java.io.IOException;
import tcpgateway.v1.Protocol.Error;
import tcpgateway.v1.Protocol.HandshakeAck;

/**
 * The app's view of a client: pushes, non-fatal ERRORs and state changes (docs/client-behaviour.md
 * "States"). Every method has an empty default. {@link #onPush} and {@link #onRefused} run on the
 * connection's reader thread, in order: a callback that blocks holds up every later frame,
 * PONGs included (R41), so hand work off.
 */
public interface Listener {
  /** A push, once, in order (R16–R18). Answer with {@link ReceivedPush#ack()} or reply. */
  default void onPush(ReceivedPush push) {}

  /** After every successful handshake, first and reconnects, with the gateway's ack (R7, R24). */
  default void onConnected(HandshakeAck ack) {}

  /**
   * A connection ended or was told to go away: {@link Errors.GoAwayError}, {@link
   * Errors.ServerError} (a fatal ERROR) or a transport failure. The client reconnects unless
   * {@link #onStopped} follows.
   */
  default void onDisconnected(IOException cause) {}

  /** The client stopped for good (R29, R40): {@link Errors.Closed} after close(). Called once. */
  default void onStopped(IOException reason) {}

  /** A non-fatal ERROR: one frame of this client was refused and the session goes on (R28). */
  default void onRefused(Error error) {}
}
