package io.tcpgateway.client;

import java.util.Random;

/**
 * Reconnect delays (docs/client-behaviour.md R30, R31): a failed attempt n waits a random delay
 * in [d/2, d] with d = min(max, initial·2ⁿ); the first reconnect after a connection lost without
 * GOAWAY waits a uniform random delay in [0, lostSpread], so the clients of a crashed pod do not
 * all come back at once. Immutable.
 */
public final class Backoff {
  /** 250 ms, 30 s and 3 s: the Go SDK's defaults. */
  public static final Backoff DEFAULT = new Backoff(250, 30_000, 3_000);

  private final long initialMs;
  private final long maxMs;
  private final long lostSpreadMs;

  /**
   * @param initialMs d for attempt 0 (0 keeps the default, 250)
   * @param maxMs the cap of d (0 keeps the default, 30000)
   * @param lostSpreadMs the spread after an unexpected loss (0 keeps the default, 3000; negative:
   *     no spread, the first wait is then {@code delay(0)})
   */
  public Backoff(long initialMs, long maxMs, long lostSpreadMs) {
    this.initialMs = initialMs > 0 ? initialMs : 250;
    this.maxMs = maxMs > 0 ? maxMs : 30_000;
    this.lostSpreadMs = lostSpreadMs == 0 ? 3_000 : lostSpreadMs;
  }

  /** The wait after failed attempt {@code attempt} (0, 1, 2, … in a row), in ms. */
  public long delayMs(int attempt, Random rnd) {
    long d = initialMs;
    for (int i = 0; i < attempt && d < maxMs; i++) {
      d *= 2;
    }
    d = Math.min(d, maxMs);
    return d / 2 + nextLong(rnd, d / 2 + 1);
  }

  /** The wait before the first reconnect after an unexpected loss, in ms. */
  public long afterLossMs(Random rnd) {
    if (lostSpreadMs < 0) {
      return delayMs(0, rnd);
    }
    return nextLong(rnd, lostSpreadMs + 1);
  }

  public long initialMs() {
    return initialMs;
  }

  public long maxMs() {
    return maxMs;
  }

  public long lostSpreadMs() {
    return lostSpreadMs;
  }

  /** Uniform in [0, bound). */
  private static long nextLong(Random rnd, long bound) {
    return (long) (rnd.nextDouble() * bound);
  }
}
