package io.tcpgateway.push;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tcpgateway.v1.DownlinkOuterClass.Target;

/**
 * The shared vectors of gateway/push/testdata/partitions.json, written by the Go push SDK's test
 * from kafka-go's Murmur2Balancer: this SDK puts every key in the same partition, and keys every
 * kind of target the same way.
 */
class PartitionerTest {
  static String vectors() throws Exception {
    String root = System.getProperty("tcpgw.repo.root", "../../..");
    return Files.readString(Path.of(root, "gateway/push/testdata/partitions.json"), StandardCharsets.UTF_8);
  }

  @Test
  void keysLandInTheGoSdksPartitions() throws Exception {
    Matcher m = Pattern.compile("\"key\": \"((?:[^\"\\\\]|\\\\.)*)\",\\s*\"partitions\": (\\d+),\\s*\"partition\": (\\d+)").matcher(vectors());
    int n = 0;
    while (m.find()) {
      String key = unescape(m.group(1));
      int partitions = Integer.parseInt(m.group(2));
      assertEquals(Integer.parseInt(m.group(3)), Partitioner.partition(key, partitions), "key \"" + key + "\" over " + partitions);
      n++;
    }
    assertTrue(n >= 50, "vectors read: " + n);
  }

  @Test
  void targetsAreKeyedLikeTheGoSdk() throws Exception {
    Matcher m = Pattern.compile("\"kind\": \"(\\w+)\",\\s*\"id\": \"([^\"]*)\",\\s*(?:\"session_id\": \"([^\"]*)\",\\s*)?"
        + "\"message_id\": \"([^\"]*)\",\\s*\"key\": \"([^\"]*)\"").matcher(vectors());
    int n = 0;
    while (m.find()) {
      Target t;
      switch (m.group(1)) {
        case "user": t = Targets.user(m.group(2)); break;
        case "session": t = Targets.session(m.group(2), m.group(3)); break;
        case "group": t = Targets.group(m.group(2)); break;
        default: t = Targets.all();
      }
      assertEquals(m.group(5), Targets.key(t, m.group(4)), m.group(1));
      n++;
    }
    assertEquals(4, n);
  }

  /** JSON string escapes (Go writes \\u00XX for some characters). */
  static String unescape(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c != '\\') {
        b.append(c);
        continue;
      }
      char e = s.charAt(++i);
      switch (e) {
        case 'u': b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16)); i += 4; break;
        case 'n': b.append('\n'); break;
        case 't': b.append('\t'); break;
        default: b.append(e);
      }
    }
    return b.toString();
  }
}
