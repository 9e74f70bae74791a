package io.tcpgateway.client;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** The repository's root: the tests read its shared test data and build its gateway. */
final class RepoRoot {
  private RepoRoot() {}

  static Path get() {
    String p = System.getProperty("tcpgw.repo.root");
    Path root = p != null ? Paths.get(p) : Paths.get("../../..");
    root = root.toAbsolutePath().normalize();
    if (!Files.isDirectory(root.resolve("proto"))) {
      throw new IllegalStateException("not the repository root: " + root);
    }
    return root;
  }
}
