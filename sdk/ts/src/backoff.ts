// Reconnect delays (docs/client-behaviour.md R30-R32), the Go SDK's client.Backoff.

/** Backoff shapes reconnect delays; every field in milliseconds. */
export interface Backoff {
  /** First delay of the exponential backoff. Default 250. */
  initialMs?: number;
  /** Cap of the exponential backoff. Default 30000. */
  maxMs?: number;
  /**
   * The first reconnect after a connection is lost without a GOAWAY waits a uniform random
   * delay in [0, lostSpreadMs], so the clients of a crashed pod do not all come back within
   * initialMs. Default 3000; negative: no spread (the first wait is delay(0)).
   */
  lostSpreadMs?: number;
}

export const DEFAULT_BACKOFF: Required<Backoff> = { initialMs: 250, maxMs: 30000, lostSpreadMs: 3000 };

/** withDefaults fills the fields left 0 or unset. */
export function withDefaults(b: Backoff | undefined): Required<Backoff> {
  return {
    initialMs: b?.initialMs || DEFAULT_BACKOFF.initialMs,
    maxMs: b?.maxMs || DEFAULT_BACKOFF.maxMs,
    lostSpreadMs: b?.lostSpreadMs || DEFAULT_BACKOFF.lostSpreadMs,
  };
}

/** randomInt is uniform in [0, n]. */
function randomInt(n: number, random: () => number): number {
  return Math.floor(random() * (Math.floor(n) + 1));
}

/**
 * delay of failed attempt n (0, 1, ...): uniform in [d/2, d] with d = min(max, initial·2ⁿ).
 * Half jitter: no near-zero waits, and no lockstep.
 */
export function delay(b: Required<Backoff>, attempt: number, random: () => number = Math.random): number {
  let d = b.initialMs;
  for (let i = 0; i < attempt && d < b.maxMs; i++) {
    d *= 2;
  }
  d = Math.min(d, b.maxMs);
  const half = Math.floor(d / 2);
  return half + randomInt(d - half, random);
}

/** afterLoss is the wait before the first reconnect after an unexpected loss (R30). */
export function afterLoss(b: Required<Backoff>, random: () => number = Math.random): number {
  if (b.lostSpreadMs <= 0) {
    return delay(b, 0, random);
  }
  return randomInt(b.lostSpreadMs, random);
}
