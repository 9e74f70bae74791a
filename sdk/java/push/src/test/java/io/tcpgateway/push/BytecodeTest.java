package io.tcpgateway.push;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The push SDK runs on Java 11 backends (kafka-clients 4 needs 11 too): Java 11 class files. */
class BytecodeTest {
  @Test
  void classesAreJava11() throws Exception {
    Path classes = Path.of(Publisher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    List<Path> files;
    try (Stream<Path> s = Files.walk(classes)) {
      files = s.filter(p -> p.toString().endsWith(".class")).collect(Collectors.toList());
    }
    assertTrue(files.size() >= 5, "classes found: " + files.size());
    for (Path f : files) {
      try (InputStream in = Files.newInputStream(f)) {
        DataInputStream d = new DataInputStream(in);
        assertEquals(0xCAFEBABE, d.readInt());
        d.readUnsignedShort();
        assertEquals(55, d.readUnsignedShort(), f.toString());
      }
    }
  }
}
