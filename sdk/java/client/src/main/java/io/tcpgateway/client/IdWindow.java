package io.tcpgateway.client;

import java.util.HashSet;
import java.util.Set;

/**
 * The last n message ids delivered, to drop a publisher's duplicate records (same message id,
 * another position; R18). Bounded: a ring of n ids and a set of the same ids. Not thread-safe:
 * the client's lock guards it.
 */
final class IdWindow {
  private final String[] ring;
  private final Set<String> set;
  private int next;
  private int size;

  /** Remembers n ids; n &lt;= 0 remembers none (dedup by id off). */
  IdWindow(int n) {
    ring = new String[Math.max(n, 0)];
    set = new HashSet<>(Math.max(n, 0) * 2);
  }

  /** Records id and reports whether it is new. Empty ids are always new: they cannot be told apart. */
  boolean add(String id) {
    if (id.isEmpty() || ring.length == 0) {
      return true;
    }
    if (set.contains(id)) {
      return false;
    }
    if (size == ring.length) {
      set.remove(ring[next]);
    } else {
      size++;
    }
    ring[next] = id;
    next = (next + 1) % ring.length;
    set.add(id);
    return true;
  }
}
