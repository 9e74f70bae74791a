package io.tcpgateway.client;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;

/**
 * Where a client connects, parsed from an address the builder was given: {@code host:port}
 * (TCP, TLS when the builder has TLS options) or a {@code ws://} / {@code wss://} URL (WebSocket;
 * {@code wss://} is TLS, with the builder's TLS options or else the system's roots).
 */
final class Endpoint {
  /** The host to dial and, unless the builder names another, to verify; IPv6 without brackets. */
  final String host;
  final int port;
  /** Whether the connection is WebSocket. */
  final boolean webSocket;
  /** Whether the URL asks for TLS ({@code wss://}); host:port follows the builder's TLS options. */
  final boolean secure;
  /** The upgrade request's target: path (at least "/") and query; null for host:port. */
  final String target;
  /** The upgrade request's Host header: host, with the port unless it is the scheme's default. */
  final String hostHeader;

  private Endpoint(String host, int port, boolean webSocket, boolean secure, String target, String hostHeader) {
    this.host = host;
    this.port = port;
    this.webSocket = webSocket;
    this.secure = secure;
    this.target = target;
    this.hostHeader = hostHeader;
  }

  /** Whether the address is a WebSocket URL (scheme ws or wss, any case). */
  static boolean isWebSocket(String address) {
    String a = address.toLowerCase(Locale.ROOT);
    return a.startsWith("ws://") || a.startsWith("wss://");
  }

  /**
   * Parses an address; {@link IllegalArgumentException} says what is wrong with it. A WebSocket
   * URL may not carry a fragment or user info (nothing would send them).
   */
  static Endpoint parse(String address) {
    if (address == null || address.isEmpty()) {
      throw new IllegalArgumentException("empty gateway address");
    }
    return isWebSocket(address) ? parseUrl(address) : parseHostPort(address);
  }

  private static Endpoint parseHostPort(String address) {
    int colon = address.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("address " + address + " is not host:port nor a ws:// or wss:// URL");
    }
    String host = address.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new Endpoint(host, port(address, address.substring(colon + 1)), false, false, null, null);
  }

  private static Endpoint parseUrl(String address) {
    URI u;
    try {
      u = new URI(address);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("address " + address + " is not a URL: " + e.getMessage(), e);
    }
    if (u.getRawFragment() != null || address.contains("#")) {
      throw new IllegalArgumentException("address " + address + ": a WebSocket URL has no fragment");
    }
    if (u.getRawUserInfo() != null) {
      throw new IllegalArgumentException("address " + address + ": user info in a WebSocket URL is not supported");
    }
    String raw = u.getHost();
    if (raw == null || raw.isEmpty()) {
      throw new IllegalArgumentException("address " + address + " has no host");
    }
    boolean secure = u.getScheme().equalsIgnoreCase("wss");
    int dflt = secure ? 443 : 80;
    int port = u.getPort() == -1 ? dflt : u.getPort();
    if (port <= 0 || port > 65535) {
      throw new IllegalArgumentException("address " + address + ": port " + port + " out of range");
    }
    String host = raw.startsWith("[") && raw.endsWith("]") ? raw.substring(1, raw.length() - 1) : raw;
    String path = u.getRawPath() == null || u.getRawPath().isEmpty() ? "/" : u.getRawPath();
    String target = u.getRawQuery() == null ? path : path + "?" + u.getRawQuery();
    String hostHeader = port == dflt ? raw : raw + ":" + port;
    return new Endpoint(host, port, true, secure, target, hostHeader);
  }

  private static int port(String address, String p) {
    int port;
    try {
      port = Integer.parseInt(p);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("address " + address + ": port " + p + " is not a number", e);
    }
    if (port <= 0 || port > 65535) {
      throw new IllegalArgumentException("address " + address + ": port " + port + " out of range");
    }
    return port;
  }
}
