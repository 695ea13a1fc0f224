import assert from "node:assert/strict";
import { test } from "node:test";
import { RestartPolicy } from "./restart-policy.ts";

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const options = {
  initialDelayMs: 10_000,
  maxDelayMs: 300_000,
  maxRestarts: 5,
  windowMs: 30 * 60_000,
  resetAfterMs: 10 * 60_000,
};

test("delays double up to the cap; a crash loop gives up after maxRestarts within the window", () => {
  const clock = fakeClock();
  const policy = new RestartPolicy(options, clock);
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const d = policy.onFailure();
    assert.equal(d.action, "restart");
    if (d.action === "restart") delays.push(d.delayMs);
    clock.advance(60_000);
  }
  assert.deepEqual(delays, [10_000, 20_000, 40_000, 80_000, 160_000]);
  assert.deepEqual(policy.onFailure(), { action: "give-up", restarts: 5, windowMs: options.windowMs });
});

test("restarts older than the window are forgotten; the delay is capped", () => {
  const clock = fakeClock();
  const policy = new RestartPolicy({ ...options, maxRestarts: 3 }, clock);
  for (let i = 0; i < 8; i++) {
    const d = policy.onFailure();
    assert.equal(d.action, "restart", `failure ${i}`);
    if (d.action === "restart") assert.ok(d.delayMs <= options.maxDelayMs);
    clock.advance(11 * 60_000);
  }
});

test("ten minutes healthy resets the backoff; a short healthy spell does not", () => {
  const clock = fakeClock();
  const policy = new RestartPolicy({ ...options, maxRestarts: 100 }, clock);
  policy.onFailure();
  policy.onFailure();
  policy.onHealthy();
  clock.advance(5 * 60_000);
  policy.onHealthy();
  const short = policy.onFailure();
  assert.equal(short.action === "restart" && short.delayMs, 40_000);
  policy.onHealthy();
  clock.advance(10 * 60_000);
  policy.onHealthy();
  const fresh = policy.onFailure();
  assert.equal(fresh.action === "restart" && fresh.delayMs, 10_000);
});

test("jitter stays within ±20 %; history survives a monitor restart", () => {
  const clock = fakeClock();
  const low = new RestartPolicy({ ...options, jitter: 0.2, random: () => 0 }, clock).onFailure();
  const high = new RestartPolicy({ ...options, jitter: 0.2, random: () => 0.999999 }, clock).onFailure();
  assert.equal(low.action === "restart" && low.delayMs, 8_000);
  assert.equal(high.action === "restart" && high.delayMs, 12_000);

  const first = new RestartPolicy(options, clock);
  for (let i = 0; i < 4; i++) first.onFailure();
  const revived = new RestartPolicy(options, clock, first.history);
  assert.equal(revived.onFailure().action, "restart");
  assert.equal(revived.onFailure().action, "give-up");
  revived.reset();
  assert.equal(revived.onFailure().action, "restart");
});

test("a start refused by a full disk is retried with the backoff for as long as it lasts, and is no crash loop", () => {
  const clock = fakeClock();
  const policy = new RestartPolicy(options, clock);
  const delays: number[] = [];
  for (let i = 0; i < 20; i++) {
    const d = policy.onTemporaryFailure();
    assert.equal(d.action, "restart");
    delays.push(d.delayMs);
    clock.advance(d.delayMs);
  }
  assert.deepEqual(delays.slice(0, 6), [10_000, 20_000, 40_000, 80_000, 160_000, 300_000]);
  assert.equal(Math.max(...delays), 300_000, "at most 5 min between tries: room is noticed within that");
  // Real crashes afterwards are still judged as a crash loop of their own.
  for (let i = 0; i < 5; i++) assert.equal(policy.onFailure().action, "restart");
  assert.equal(policy.onFailure().action, "give-up");
});
