package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The stored form is shared with the Go and TypeScript SDKs (docs/sdks.md). */
class ResumeStateTest {
  // What Go's ResumeState.MarshalText and TypeScript's encodeResumeState write for this state.
  private static final String SHARED = "tcpgw-resume 1\ns1\nrt-1\n0:4 1:-1\n";

  @Test
  void encodesTheFormTheOtherSdksWrite() {
    Map<Integer, Long> pos = new TreeMap<>();
    pos.put(1, -1L);
    pos.put(0, 4L);
    assertEquals(SHARED, new ResumeState("s1", pos, "rt-1").encode());
    ResumeState back = ResumeState.decode(SHARED);
    assertEquals("s1", back.sessionId());
    assertEquals("rt-1", back.resumeToken());
    assertEquals(pos, back.positions());
    ResumeState empty = ResumeState.decode("tcpgw-resume 1\ns2\n\n\n");
    assertEquals("s2", empty.sessionId());
    assertTrue(empty.positions().isEmpty());
  }

  // Stored state is input like any other: a tampered or truncated one is refused with a reason.
  // The same inputs as Go's TestResumeStateRefusesMalformedText (sdk/go/client/resume_test.go).
  @Test
  void refusesMalformedText() {
    Map<String, String> bad = new LinkedHashMap<>();
    bad.put("other format", "{\"session_id\":\"s1\"}");
    bad.put("other version", "tcpgw-resume 2\ns1\n\n0:1\n");
    bad.put("truncated", "tcpgw-resume 1\ns1\n");
    bad.put("no session", "tcpgw-resume 1\n\n\n0:1\n");
    bad.put("space in session", "tcpgw-resume 1\ns 1\n\n0:1\n");
    bad.put("no colon", "tcpgw-resume 1\ns1\n\n0\n");
    bad.put("offset not int", "tcpgw-resume 1\ns1\n\n0:x\n");
    bad.put("partition 2^31", "tcpgw-resume 1\ns1\n\n2147483648:1\n");
    bad.put("negative part", "tcpgw-resume 1\ns1\n\n-1:1\n");
    bad.put("offset below -1", "tcpgw-resume 1\ns1\n\n0:-2\n");
    bad.put("partition twice", "tcpgw-resume 1\ns1\n\n0:1 0:2\n");
    bad.put("double space", "tcpgw-resume 1\ns1\n\n0:1  1:2\n");
    bad.put("too large", "tcpgw-resume 1\ns1\n\n" + String.join("", Collections.nCopies(1 << 20, "0")) + "\n");
    // Java-only: Integer.parseInt reads other scripts' digits, Go's ParseInt does not.
    bad.put("non-ASCII digit", "tcpgw-resume 1\ns1\n\n\u0661:1\n");
    for (Map.Entry<String, String> e : bad.entrySet()) {
      assertThrows(IllegalArgumentException.class, () -> ResumeState.decode(e.getValue()), e.getKey());
    }
    assertThrows(
        IllegalArgumentException.class,
        () -> new ResumeState("s1", Collections.emptyMap(), "a\nb").encode(),
        "a resume token with a line break was encoded");
  }
}
