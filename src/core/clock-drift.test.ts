import assert from "node:assert/strict";
import { test } from "node:test";
import { driftAdvice, driftKey, driftWords, looksLikeTimeZone } from "./clock-drift.ts";
import { formatDuration } from "./duration.ts";

const H = 3_600_000;
const MIN = 60_000;

test("a clock off by a whole number of half-hours is taken for a wrong time zone", () => {
  for (const ms of [5.5 * H, -5.5 * H, 5.5 * H + 90_000, -8 * H, 0.5 * H, 13 * H])
    assert.ok(looksLikeTimeZone(ms), `${ms}`);
  for (const ms of [0, 90_000, 20 * MIN, 3 * H + 10 * MIN, -(2 * H + 13 * MIN)])
    assert.ok(!looksLikeTimeZone(ms), `${ms}`);
  const advice = driftAdvice(5.5 * H, "UTC");
  assert.equal(
    advice.message,
    "The terminal's clock is 5 h 30 min ahead of this machine; punches carry its time. A whole number of half-hours is most likely a wrong time zone, not a wrong clock.",
  );
  assert.match(advice.fix, /^Check the source's timezone \(now UTC\)/);
  assert.doesNotMatch(driftAdvice(-3 * MIN, "UTC").message, /time zone/);
});

test("drift in words: no '0 s behind of', one rounding, and a key that moves only with the minute", () => {
  assert.equal(driftWords(0), "in step with this machine");
  assert.equal(driftWords(-3000), "3 s behind this machine");
  assert.equal(driftWords(5.5 * H - 2000), "5 h 30 min ahead of this machine");
  assert.equal(formatDuration(6 * H - 20_000), "6 h");
  assert.equal(driftKey(5.5 * H + 1500), driftKey(5.5 * H - 2500));
  assert.notEqual(driftKey(5.5 * H), driftKey(5.5 * H + 2 * MIN));
});
