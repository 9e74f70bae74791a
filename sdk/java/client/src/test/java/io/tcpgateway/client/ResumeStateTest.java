package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
  }
}
