import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff } from "./backoff.ts";

test("backoff grows exponentially, stays within [ceiling/2, ceiling], caps at max, and resets", () => {
  const lows = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  const highs = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999_999 });
  const low = Array.from({ length: 6 }, () => lows.next());
  const high = Array.from({ length: 6 }, () => highs.next());
  assert.deepEqual(low, [50, 100, 200, 400, 500, 500]);
  assert.deepEqual(high, [100, 200, 400, 800, 1000, 1000]);
  lows.reset();
  assert.equal(lows.next(), 50);
});

test("jitter spreads retries of many workers", () => {
  const delays = new Set(Array.from({ length: 50 }, () => new Backoff({ initialMs: 1000, maxMs: 60_000 }).next()));
  assert.ok(delays.size > 10, `expected spread, got ${delays.size} distinct delays`);
});
