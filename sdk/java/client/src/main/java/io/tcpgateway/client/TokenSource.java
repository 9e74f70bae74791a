package io.tcpgateway.client;

/**
 * Supplies the token for the next handshake or REFRESH (R33). It is asked before every
 * (re)connect and on every REFRESH_REQUEST, on a thread of the client (never the app's main
 * thread), and should return a token valid now, fetching a new one when the cached one is near
 * its expiry. A thrown exception is retried with backoff and does not count as a refusal.
 */
@FunctionalInterface
public interface TokenSource {
  String token() throws Exception;
}
