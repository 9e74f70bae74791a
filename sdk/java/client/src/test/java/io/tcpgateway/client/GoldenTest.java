package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import tcpgateway.v1.DownlinkOuterClass.Downlink;
import tcpgateway.v1.DownlinkOuterClass.Receipt;
import tcpgateway.v1.Protocol.Frame;

/**
 * The shared golden vectors (sdk/go/protocol/testdata/golden): every .hex decodes to the
 * content of its .textproto, and encodes back to the same bytes (protobuf-javalite writes
 * fields in number order, and maps in the order parsed, like Go's deterministic marshal).
 */
class GoldenTest {
  static final Path DIR = RepoRoot.get().resolve("sdk/go/protocol/testdata/golden");

  @TestFactory
  Stream<DynamicTest> everyVector() throws IOException {
    List<Path> hexes;
    try (Stream<Path> s = Files.list(DIR)) {
      hexes = s.filter(p -> p.toString().endsWith(".hex")).sorted().collect(Collectors.toList());
    }
    assertTrue(hexes.size() >= 20, "golden vectors found: " + hexes.size());
    return hexes.stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> check(p)));
  }

  @Test
  void everyFrameKindHasAVector() throws IOException {
    for (Frame.BodyCase kind : Frame.BodyCase.values()) {
      if (kind == Frame.BodyCase.BODY_NOT_SET) {
        continue;
      }
      String name = kind.name().toLowerCase(java.util.Locale.ROOT);
      assertTrue(Files.exists(DIR.resolve(name + ".hex")), "no golden vector for " + name);
    }
  }

  private static void check(Path hexFile) throws Exception {
    String name = hexFile.getFileName().toString().replaceFirst("\\.hex$", "");
    byte[] wire = hex(Files.readString(hexFile).trim());
    TextProto.Node want = TextProto.parse(Files.readString(DIR.resolve(name + ".textproto")));
    MessageLite got;
    byte[] again;
    if (name.startsWith("downlink_")) {
      Downlink d = Downlink.parseFrom(wire);
      got = d;
      again = d.toByteArray();
    } else if (name.startsWith("receipt_")) {
      Receipt r = Receipt.parseFrom(wire);
      got = r;
      again = r.toByteArray();
    } else {
      Frame f = Frames.read(new ByteArrayInputStream(wire), 1 << 16);
      got = f;
      again = Frames.encode(f, 1 << 16);
    }
    compare(name, want, got);
    assertArrayEquals(wire, again, name + ": re-encoded bytes differ");
  }

  /** Checks that every field of the textproto has the same value in the message. */
  private static void compare(String where, TextProto.Node want, Object msg) throws Exception {
    Map<String, List<Object>> fields = want.fields;
    for (Map.Entry<String, List<Object>> e : fields.entrySet()) {
      String field = e.getKey();
      List<Object> values = e.getValue();
      String camel = camel(field);
      Method list = find(msg, "get" + camel + "List");
      Method map = find(msg, "get" + camel + "Map");
      if (map != null) {
        Map<?, ?> got = (Map<?, ?>) map.invoke(msg);
        assertEquals(values.size(), got.size(), where + "." + field + " entries");
        for (Object v : values) {
          TextProto.Node entry = (TextProto.Node) v;
          Object key = entry.fields.get("key").get(0);
          Object value = entry.fields.get("value").get(0);
          assertEquals(value, got.get(key), where + "." + field + "[" + key + "]");
        }
      } else if (list != null) {
        List<?> got = (List<?>) list.invoke(msg);
        assertEquals(values.size(), got.size(), where + "." + field + " count");
        for (int i = 0; i < values.size(); i++) {
          compareValue(where + "." + field + "[" + i + "]", values.get(i), got.get(i));
        }
      } else {
        Method get = find(msg, "get" + camel);
        if (get == null) {
          fail(where + ": no field " + field + " in " + msg.getClass().getSimpleName());
        }
        assertEquals(1, values.size(), where + "." + field + " repeated in the textproto");
        compareValue(where + "." + field, values.get(0), get.invoke(msg));
      }
    }
  }

  private static void compareValue(String where, Object want, Object got) throws Exception {
    if (want instanceof TextProto.Node) {
      compare(where, (TextProto.Node) want, got);
    } else if (got instanceof ByteString) {
      assertEquals(want, ((ByteString) got).toString(StandardCharsets.ISO_8859_1), where);
    } else if (got instanceof Enum) {
      assertEquals(want, ((Enum<?>) got).name(), where);
    } else if (got instanceof Boolean) {
      assertEquals(want, got.toString(), where);
    } else if (got instanceof Number) {
      // uint64 values are printed unsigned in textproto.
      String g = got instanceof Long ? Long.toUnsignedString((Long) got) : got.toString();
      if (got instanceof Integer && ((Integer) got) < 0) {
        g = got.toString();
      }
      if (got instanceof Long && ((Long) got) < 0 && ((String) want).startsWith("-")) {
        g = got.toString();
      }
      assertEquals(want, g, where);
    } else {
      assertEquals(want, got, where);
    }
  }

  private static Method find(Object o, String name) {
    for (Method m : o.getClass().getMethods()) {
      if (m.getName().equals(name) && m.getParameterCount() == 0) {
        return m;
      }
    }
    return null;
  }

  static String camel(String field) {
    StringBuilder b = new StringBuilder();
    for (String part : field.split("_")) {
      b.append(Character.toUpperCase(part.charAt(0))).append(part.substring(1));
    }
    return b.toString();
  }

  static byte[] hex(String s) {
    byte[] out = new byte[s.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }

  /** The smallest textproto reader the golden files need: fields, messages, strings, scalars. */
  static final class TextProto {
    static final class Node {
      final Map<String, List<Object>> fields = new java.util.LinkedHashMap<>();
    }

    private final String s;
    private int i;

    private TextProto(String s) {
      this.s = s;
    }

    static Node parse(String text) {
      TextProto p = new TextProto(text);
      Node n = p.message(false);
      return n;
    }

    private Node message(boolean nested) {
      Node n = new Node();
      while (true) {
        skip();
        if (i >= s.length()) {
          if (nested) {
            throw new IllegalArgumentException("unterminated message");
          }
          return n;
        }
        if (s.charAt(i) == '}') {
          i++;
          return n;
        }
        int start = i;
        while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_')) {
          i++;
        }
        String name = s.substring(start, i);
        skip();
        if (s.charAt(i) == ':') {
          i++;
          skip();
        }
        Object v;
        if (s.charAt(i) == '{') {
          i++;
          v = message(true);
        } else if (s.charAt(i) == '"') {
          v = string();
        } else {
          int b = i;
          while (i < s.length() && !Character.isWhitespace(s.charAt(i)) && s.charAt(i) != '}') {
            i++;
          }
          v = s.substring(b, i);
        }
        n.fields.computeIfAbsent(name, k -> new ArrayList<>()).add(v);
      }
    }

    /** A quoted string with C escapes, as ISO-8859-1 text of its bytes. */
    private String string() {
      StringBuilder b = new StringBuilder();
      i++;
      while (s.charAt(i) != '"') {
        char c = s.charAt(i++);
        if (c != '\\') {
          b.append(c);
          continue;
        }
        char e = s.charAt(i++);
        switch (e) {
          case 'n': b.append('\n'); break;
          case 't': b.append('\t'); break;
          case 'r': b.append('\r'); break;
          case 'x': b.append((char) Integer.parseInt(s.substring(i, i + 2), 16)); i += 2; break;
          default:
            if (e >= '0' && e <= '7') {
              b.append((char) Integer.parseInt(s.substring(i - 1, i + 2), 8));
              i += 2;
            } else {
              b.append(e);
            }
        }
      }
      i++;
      return b.toString();
    }

    private void skip() {
      while (i < s.length()) {
        char c = s.charAt(i);
        if (c == '#') {
          while (i < s.length() && s.charAt(i) != '\n') {
            i++;
          }
        } else if (Character.isWhitespace(c)) {
          i++;
        } else {
          return;
        }
      }
    }
  }
}
