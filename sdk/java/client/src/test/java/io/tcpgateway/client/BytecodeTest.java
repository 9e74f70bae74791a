package io.tcpgateway.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The SDK runs on Java 11 and Android (API 26+): its classes must be Java 11 class files. */
class BytecodeTest {
  static final int JAVA_11 = 55;

  @Test
  void sdkClassesAreJava11() throws Exception {
    Path classes = Paths.get(Client.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    List<Path> files;
    try (Stream<Path> s = Files.walk(classes)) {
      files = s.filter(p -> p.toString().endsWith(".class")).collect(Collectors.toList());
    }
    assertTrue(files.size() > 10, "classes found in " + classes + ": " + files.size());
    for (Path f : files) {
      try (InputStream in = Files.newInputStream(f)) {
        assertEquals(JAVA_11, major(in), f.toString());
      }
    }
  }

  @Test
  void generatedMessagesAreJava11() throws Exception {
    try (InputStream in = tcpgateway.v1.Protocol.Frame.class.getResourceAsStream("Protocol$Frame.class")) {
      assertEquals(JAVA_11, major(in));
    }
  }

  static int major(InputStream in) throws IOException {
    DataInputStream d = new DataInputStream(in);
    assertEquals(0xCAFEBABE, d.readInt(), "class file magic");
    d.readUnsignedShort(); // minor
    return d.readUnsignedShort();
  }
}
