package io.tcpgateway.client;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * What an app stores to resume its session after the OS killed it (R36): the session id, per
 * partition the position the next resume would send (the larger of the last delivered offset and
 * the confirmed watermark, -1 for an empty partition) and the last GOAWAY's resume token.
 * Export it with {@link Client#exportState()} after the app has stored the effect of the pushes
 * it was delivered; import it with {@link Client.Builder#resumeState(ResumeState)}.
 *
 * <p>{@link #encode()} and {@link #decode(String)} give a stable text form for storage.
 */
public final class ResumeState {
  private static final String MAGIC = "tcpgw-resume 1";

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
   * Three lines: a version marker, the session id (printable ASCII, so no whitespace), then the
   * resume token (may be empty) and the positions as {@code partition:offset} separated by
   * spaces.
   */
  public String encode() {
    StringBuilder b = new StringBuilder(MAGIC).append('\n').append(sessionId).append('\n').append(resumeToken).append('\n');
    String sep = "";
    for (Map.Entry<Integer, Long> e : positions.entrySet()) {
      b.append(sep).append(e.getKey()).append(':').append(e.getValue());
      sep = " ";
    }
    return b.append('\n').toString();
  }

  /** Parses {@link #encode()}'s form. */
  public static ResumeState decode(String s) {
    String[] lines = s.split("\n", -1);
    if (lines.length < 4 || !lines[0].equals(MAGIC)) {
      throw new IllegalArgumentException("not an exported tcpgateway resume state");
    }
    Map<Integer, Long> positions = new TreeMap<>();
    if (!lines[3].isEmpty()) {
      for (String p : lines[3].split(" ")) {
        int colon = p.indexOf(':');
        if (colon <= 0) {
          throw new IllegalArgumentException("bad position " + p);
        }
        Integer partition = Integer.valueOf(p.substring(0, colon));
        if (positions.put(partition, Long.valueOf(p.substring(colon + 1))) != null) {
          throw new IllegalArgumentException("partition " + partition + " named twice");
        }
      }
    }
    return new ResumeState(lines[1], positions, lines[2]);
  }

  @Override
  public String toString() {
    return "ResumeState{session=" + sessionId + ", positions=" + positions + "}";
  }
}
