package io.tcpgateway.client;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * What an app stores to resume its session after the OS killed it (R36): the session id, per
 * partition the position the next resume would send (the larger of the last delivered offset and
 * the confirmed watermark, -1 for an empty partition) and, while the reconnect a GOAWAY DRAINING
 * or REBALANCE asked for is pending, that GOAWAY's resume token (R26). Export it with {@link Client#exportState()} after the app has stored the effect of the pushes
 * it was delivered; import it with {@link Client.Builder#resumeState(ResumeState)}.
 *
 * <p>{@link #encode()} and {@link #decode(String)} give a stable text form for storage.
 */
public final class ResumeState {
  private static final String MAGIC = "tcpgw-resume 1";
  // Stored state may have been tampered with or truncated; a gateway topic has far fewer
  // partitions than this allows. Counted in chars (UTF-16 units), as the TypeScript SDK does.
  private static final int MAX_CHARS = 1 << 20;
  // What Go's strconv.ParseInt takes: ASCII digits only (Integer.parseInt also takes other
  // scripts' digits, which Go and TypeScript refuse).
  private static final Pattern NUMBER = Pattern.compile("[+-]?[0-9]+");

  private final String sessionId;
  private final Map<Integer, Long> positions;
  private final String resumeToken;

  public ResumeState(String sessionId, Map<Integer, Long> positions, String resumeToken) {
    if (sessionId == null || sessionId.isEmpty()) {
      throw new IllegalArgumentException("a resume state needs a session id");
    }
    this.sessionId = sessionId;
    this.positions = Collections.unmodifiableMap(new TreeMap<>(positions));
    this.resumeToken = resumeToken == null ? "" : resumeToken;
  }

  public String sessionId() {
    return sessionId;
  }

  /** Partition → offset, in partition order. */
  public Map<Integer, Long> positions() {
    return positions;
  }

  public String resumeToken() {
    return resumeToken;
  }

  /**
   * Four lines: a version marker, the session id (printable ASCII, so no whitespace), the
   * resume token (may be empty) and the positions as {@code partition:offset} separated by
   * spaces, in partition order.
   *
   * @throws IllegalArgumentException if {@link #decode(String)} would refuse the result: a
   *     session id with whitespace, a resume token with a line break, a negative partition or an
   *     offset below -1
   */
  public String encode() {
    check(sessionId, positions, resumeToken);
    StringBuilder b = new StringBuilder(MAGIC).append('\n').append(sessionId).append('\n').append(resumeToken).append('\n');
    String sep = "";
    for (Map.Entry<Integer, Long> e : positions.entrySet()) {
      b.append(sep).append(e.getKey()).append(':').append(e.getValue());
      sep = " ";
    }
    return b.append('\n').toString();
  }

  /**
   * Parses {@link #encode()}'s form, refusing what Go's {@code ResumeState.UnmarshalText} and
   * TypeScript's {@code decodeResumeState} refuse.
   *
   * @throws IllegalArgumentException on anything else: another format or version, more than 1
   *     MiB, a missing session id or one with whitespace, a resume token with a line break, a
   *     position that is not {@code partition:offset} in 32 and 64 bits, a negative partition, an
   *     offset below -1, a partition named twice
   */
  public static ResumeState decode(String s) {
    if (s.length() > MAX_CHARS) {
      throw new IllegalArgumentException("resume state of " + s.length() + " characters, more than " + MAX_CHARS);
    }
    String[] lines = s.split("\n", -1);
    if (lines.length < 4 || !lines[0].equals(MAGIC)) {
      throw new IllegalArgumentException("not an exported tcpgateway resume state");
    }
    Map<Integer, Long> positions = new TreeMap<>();
    if (!lines[3].isEmpty()) {
      for (String p : lines[3].split(" ", -1)) {
        int colon = p.indexOf(':');
        String ps = colon < 0 ? "" : p.substring(0, colon);
        String os = colon < 0 ? "" : p.substring(colon + 1);
        int partition;
        long offset;
        try {
          if (!NUMBER.matcher(ps).matches() || !NUMBER.matcher(os).matches()) {
            throw new NumberFormatException();
          }
          partition = Integer.parseInt(ps);
          offset = Long.parseLong(os);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("resume state: bad position \"" + p + "\"");
        }
        if (positions.put(partition, offset) != null) {
          throw new IllegalArgumentException("resume state: partition " + partition + " named twice");
        }
      }
    }
    check(lines[1], positions, lines[2]);
    return new ResumeState(lines[1], positions, lines[2]);
  }

  // check refuses what no gateway sent: the handshake would be refused or resume nothing.
  private static void check(String sessionId, Map<Integer, Long> positions, String resumeToken) {
    if (sessionId.isEmpty()) {
      throw new IllegalArgumentException("a resume state needs a session id");
    }
    if (containsAny(sessionId, "\n \t\r") || containsAny(resumeToken, "\n\r")) {
      throw new IllegalArgumentException("resume state: session id or resume token holds a line break or space");
    }
    for (Map.Entry<Integer, Long> e : positions.entrySet()) {
      if (e.getKey() < 0 || e.getValue() < -1) {
        throw new IllegalArgumentException(
            "resume state: position " + e.getKey() + ":" + e.getValue() + " (partitions from 0, offsets from -1)");
      }
    }
  }

  private static boolean containsAny(String s, String chars) {
    for (int i = 0; i < s.length(); i++) {
      if (chars.indexOf(s.charAt(i)) >= 0) {
        return true;
      }
    }
    return false;
  }

  @Override
  public String toString() {
    return "ResumeState{session=" + sessionId + ", positions=" + positions + "}";
  }
}
