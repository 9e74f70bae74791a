// Reconnect delays (R30, R31) and the message id window (R18): pure functions, checked at the
// ends of their random ranges.
import { test } from "node:test";
import assert from "node:assert/strict";
import { afterLoss, delay, withDefaults } from "../src/backoff.js";
import { IdWindow } from "../src/dedup.js";

const low = () => 0;
const high = () => 0.999999;

test("attempt n waits in [d/2, d], d = min(max, initial·2ⁿ)", () => {
  const b = withDefaults(undefined);
  assert.deepEqual(b, { initialMs: 250, maxMs: 30000, lostSpreadMs: 3000 });
  for (const [n, d] of [[0, 250], [1, 500], [2, 1000], [6, 16000], [7, 30000], [50, 30000]] as const) {
    assert.equal(delay(b, n, low), d / 2, `attempt ${n} low`);
    assert.equal(delay(b, n, high), d, `attempt ${n} high`);
  }
});

test("the first wait after a loss is uniform in [0, lostSpread]; negative spread: delay(0)", () => {
  const b = withDefaults({});
  assert.equal(afterLoss(b, low), 0);
  assert.equal(afterLoss(b, high), 3000);
  const none = withDefaults({ lostSpreadMs: -1 });
  assert.equal(afterLoss(none, low), 125);
  assert.equal(afterLoss(none, high), 250);
});

test("the id window drops repeats within its size and forgets the oldest", () => {
  const w = new IdWindow(2);
  assert.ok(w.add("a"));
  assert.ok(!w.add("a"));
  assert.ok(w.add("b"));
  assert.ok(w.add("c")); // forgets a
  assert.ok(w.add("a"));
  assert.ok(!w.add("c"));
  assert.ok(w.add(""), "empty ids are never duplicates");
  assert.ok(w.add(""));
  const off = new IdWindow(-1);
  assert.ok(off.add("x") && off.add("x"), "a negative window is off");
});
