package io.tcpgateway.client;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The client side of the WebSocket opening handshake (RFC 6455 4.1): a GET with the upgrade
 * headers, then the gateway's answer, which must be 101 with a matching Sec-WebSocket-Accept,
 * no extension and no subprotocol but the one offered. Anything else fails the dial.
 */
final class WebSocketUpgrade {
  private WebSocketUpgrade() {}

  /** The subprotocol offered (docs/protocol.md, "WebSocket"); the gateway selects it. */
  static final String SUBPROTOCOL = "tcpgw.v2";
  /** RFC 6455 1.3: appended to the key before hashing it into Sec-WebSocket-Accept. */
  private static final String ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  /** The most the answer's status line and headers may take: the gateway's bound on requests. */
  static final int MAX_ANSWER_BYTES = 16 * 1024;

  /** The gateway answered the upgrade with something other than a valid 101. */
  static final class Refused extends IOException {
    private static final long serialVersionUID = 1L;

    Refused(String message) {
      super(message);
    }
  }

  /**
   * Sends the upgrade request for {@code e} and reads the answer from {@code in}, which is left
   * at the first byte after it. Socket timeouts bound the wait.
   */
  static void run(Endpoint e, InputStream in, OutputStream out, SecureRandom random) throws IOException {
    byte[] nonce = new byte[16];
    random.nextBytes(nonce);
    String key = Base64.getEncoder().encodeToString(nonce);
    String request = "GET " + e.target + " HTTP/1.1\r\n"
        + "Host: " + e.hostHeader + "\r\n"
        + "Upgrade: websocket\r\n"
        + "Connection: Upgrade\r\n"
        + "Sec-WebSocket-Key: " + key + "\r\n"
        + "Sec-WebSocket-Version: 13\r\n"
        + "Sec-WebSocket-Protocol: " + SUBPROTOCOL + "\r\n"
        + "\r\n";
    out.write(request.getBytes(StandardCharsets.ISO_8859_1));
    out.flush();
    check(readHead(in), key);
  }

  /** The answer's status line and header lines, read up to the blank line that ends them. */
  static String[] readHead(InputStream in) throws IOException {
    StringBuilder b = new StringBuilder();
    int n = 0;
    while (true) {
      int c = in.read();
      if (c < 0) {
        throw new EOFException("connection closed during the WebSocket upgrade");
      }
      if (++n > MAX_ANSWER_BYTES) {
        throw new Refused("WebSocket upgrade answer longer than " + MAX_ANSWER_BYTES + " bytes");
      }
      b.append((char) c);
      int len = b.length();
      if (len >= 4 && b.charAt(len - 4) == '\r' && b.charAt(len - 3) == '\n' && b.charAt(len - 2) == '\r' && b.charAt(len - 1) == '\n') {
        return b.substring(0, len - 4).split("\r\n", -1);
      }
    }
  }

  /** Checks the answer to a request that sent {@code key} (RFC 6455 4.1, the client's checks). */
  static void check(String[] head, String key) throws Refused {
    String[] status = head[0].split(" ", 3);
    if (status.length < 2 || !status[0].startsWith("HTTP/")) {
      throw new Refused("WebSocket upgrade answer is not HTTP: " + printable(head[0]));
    }
    if (!status[1].equals("101")) {
      throw new Refused("WebSocket upgrade refused: HTTP " + printable(head[0].substring(status[0].length()).trim()));
    }
    Map<String, String> h = new HashMap<>();
    for (int i = 1; i < head.length; i++) {
      int colon = head[i].indexOf(':');
      if (colon <= 0) {
        throw new Refused("WebSocket upgrade answer has a malformed header line: " + printable(head[i]));
      }
      String name = head[i].substring(0, colon).trim().toLowerCase(Locale.ROOT);
      String value = head[i].substring(colon + 1).trim();
      h.merge(name, value, (a, v) -> a + ", " + v);
    }
    if (!"websocket".equalsIgnoreCase(h.getOrDefault("upgrade", ""))) {
      throw new Refused("WebSocket upgrade answer without Upgrade: websocket");
    }
    if (!hasToken(h.getOrDefault("connection", ""), "upgrade")) {
      throw new Refused("WebSocket upgrade answer without Connection: Upgrade");
    }
    if (!accept(key).equals(h.get("sec-websocket-accept"))) {
      throw new Refused("WebSocket upgrade answer with a wrong Sec-WebSocket-Accept");
    }
    if (h.containsKey("sec-websocket-extensions")) {
      throw new Refused("WebSocket upgrade answer selects an extension none was offered: " + printable(h.get("sec-websocket-extensions")));
    }
    String proto = h.get("sec-websocket-protocol");
    if (proto != null && !proto.equals(SUBPROTOCOL)) {
      throw new Refused("WebSocket upgrade answer selects subprotocol " + printable(proto) + ", not the offered " + SUBPROTOCOL);
    }
  }

  /** Sec-WebSocket-Accept for a key: base64 of the SHA-1 of key and the GUID. */
  static String accept(String key) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-1").digest((key + ACCEPT_GUID).getBytes(StandardCharsets.ISO_8859_1));
      return Base64.getEncoder().encodeToString(d);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-1 is required of every Java platform", e);
    }
  }

  private static boolean hasToken(String list, String token) {
    for (String t : list.split(",")) {
      if (t.trim().equalsIgnoreCase(token)) {
        return true;
      }
    }
    return false;
  }

  /** A line of the answer as an error message may quote it: bounded, control characters escaped. */
  private static String printable(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length() && b.length() < 200; i++) {
      char c = s.charAt(i);
      b.append(c < 0x20 || c > 0x7e ? '?' : c);
    }
    return b.toString();
  }
}
