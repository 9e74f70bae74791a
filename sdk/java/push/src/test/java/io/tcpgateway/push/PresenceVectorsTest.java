package io.tcpgateway.push;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import tcpgateway.v1.DownlinkOuterClass.SessionEvent;

/**
 * The shared vectors of gateway/push/testdata/presence.txt (the format is described at its top),
 * which the Go push SDK's TestPresenceVectors folds too: both SDKs keep the same view of the same
 * records.
 */
class PresenceVectorsTest {
  static final Map<String, Integer> KINDS = Map.of("connected", SessionEvent.Kind.KIND_CONNECTED_VALUE,
      "disconnected", SessionEvent.Kind.KIND_DISCONNECTED_VALUE, "replaced", SessionEvent.Kind.KIND_REPLACED_VALUE,
      "resumed", SessionEvent.Kind.KIND_RESUMED_VALUE);

  @Test
  void foldsLikeTheGoSdk() throws Exception {
    String root = System.getProperty("tcpgw.repo.root", "../../..");
    List<String> lines = Files.readAllLines(Path.of(root, "gateway/push/testdata/presence.txt"), StandardCharsets.UTF_8);
    Presence p = null;
    String name = "";
    int cases = 0;
    List<String> errors = new ArrayList<>();
    for (int n = 1; n <= lines.size(); n++) {
      String line = lines.get(n - 1);
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int sp = line.indexOf(' ');
      String verb = sp < 0 ? line : line.substring(0, sp);
      String rest = sp < 0 ? "" : line.substring(sp + 1);
      if (verb.equals("case")) {
        p = new Presence();
        name = rest;
        cases++;
        continue;
      }
      assertNotNull(p, "line " + n + " before the first case");
      String[] f = rest.isEmpty() ? new String[0] : rest.trim().split(" +");
      String at = "line " + n + " (" + name + ")";
      switch (verb) {
        case "event":
        case "bad": {
          Presence.Result want = verb.equals("bad") ? Presence.Result.INVALID_EVENT : Presence.Result.APPLIED;
          Presence.Result got = p.applyRecord(event(f).toByteArray());
          if (got != want) {
            errors.add(at + ": " + got + ", want " + want);
          }
          break;
        }
        case "record": {
          byte[] value = f[0].equals("-") ? new byte[0] : hex(f[0]);
          Presence.Result got = p.applyRecord(value);
          String gotName = got == Presence.Result.APPLIED ? "applied" : got.reason();
          if (!gotName.equals(f[1])) {
            errors.add(at + ": " + gotName + ", want " + f[1]);
          }
          break;
        }
        case "online": {
          List<String> parts = new ArrayList<>();
          for (Presence.Online o : p.user(expand(f[0]))) {
            parts.add(o.sessionId() + "@" + o.connectionId());
          }
          String want = f.length > 1 ? f[1] : "";
          if (!String.join(",", parts).equals(want)) {
            errors.add(at + ": online \"" + String.join(",", parts) + "\", want \"" + want + "\"");
          }
          break;
        }
        case "users":
          if (p.users() != Integer.parseInt(f[0])) {
            errors.add(at + ": " + p.users() + " users, want " + f[0]);
          }
          break;
        case "stats": {
          Presence.Stats st = p.stats();
          String got = st.applied() + " " + st.skipped(Presence.SKIP_UNDECODABLE) + " " + st.skipped(Presence.SKIP_INVALID) + " " + st.missing();
          if (!got.equals(String.join(" ", f))) {
            errors.add(at + ": stats " + got + ", want " + String.join(" ", f) + " (applied undecodable invalid missing)");
          }
          break;
        }
        default:
          fail("line " + n + ": unknown verb " + verb);
      }
    }
    assertTrue(cases >= 10, "cases read: " + cases);
    assertEquals(List.of(), errors);
  }

  /** The event of an event or bad line: KIND SERVER EPOCH SEQ CONN USER SESSION [REMOTE]. */
  static SessionEvent event(String[] f) {
    assertTrue(f.length >= 7, "event fields: " + String.join(" ", f));
    Integer kind = KINDS.get(f[0]);
    SessionEvent.Builder b = SessionEvent.newBuilder().setKindValue(kind != null ? kind : Integer.parseInt(f[0]))
        .setServerId(expand(f[1])).setEpoch(Long.parseLong(f[2])).setSeq(Long.parseUnsignedLong(f[3]))
        .setConnectionId(expand(f[4])).setUserId(expand(f[5])).setSessionId(expand(f[6]));
    if (f.length > 7) {
      b.setRemoteAddress(expand(f[7]));
    }
    return b.build();
  }

  /** "-" is empty, "T*N" is T repeated N times. */
  static String expand(String s) {
    if (s.equals("-")) {
      return "";
    }
    int star = s.indexOf('*');
    if (star > 0) {
      try {
        return s.substring(0, star).repeat(Integer.parseInt(s.substring(star + 1)));
      } catch (NumberFormatException notACount) {
        return s;
      }
    }
    return s;
  }

  static byte[] hex(String s) {
    byte[] out = new byte[s.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }
}
