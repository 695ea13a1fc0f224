import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "./clock.ts";
import { silentLogger } from "./logger.ts";
import { loopPart, type Part, Parts, within } from "./part.ts";

function recorder() {
  const events: string[] = [];
  const part = (name: string, extra: Partial<Part> = {}): Part => ({
    name,
    start: () => void events.push(`start ${name}`),
    stop: () => void events.push(`stop ${name}`),
    ...extra,
  });
  return { events, part };
}

test("parts start in their order and stop in reverse, once", async () => {
  const { events, part } = recorder();
  const parts = new Parts([part("store"), part("status"), part("workers")], systemClock);
  await parts.start();
  assert.equal(await parts.stop(1000), true);
  assert.equal(await parts.stop(1000), true, "a second stop has nothing left to stop");
  assert.deepEqual(events, [
    "start store",
    "start status",
    "start workers",
    "stop workers",
    "stop status",
    "stop store",
  ]);
});

test("a part that fails to start stops the ones already up, in reverse, and its error reaches the caller", async () => {
  const { events, part } = recorder();
  const refused = new Error("port in use");
  const parts = new Parts(
    [
      part("store"),
      part("status"),
      part("health", {
        start: () => {
          throw refused;
        },
      }),
      part("workers"),
    ],
    systemClock,
  );
  await assert.rejects(parts.start(), (e) => e === refused);
  assert.deepEqual(events, ["start store", "start status", "stop status", "stop store"]);
});

test("a part that left work unfinished makes the stop unclean; the others still stop", async () => {
  const { events, part } = recorder();
  const parts = new Parts([part("store"), part("workers", { stop: () => false })], systemClock);
  await parts.start();
  assert.equal(await parts.stop(1000), false);
  assert.deepEqual(events, ["start store", "start workers", "stop store"]);
});

test("within: work that never settles is given up at the deadline, and says so", async () => {
  assert.equal(await within(new Promise(() => undefined), systemClock.now() + 20, systemClock), false);
  assert.equal(await within(Promise.resolve(), systemClock.now() + 60_000, systemClock), true);
});

test("a loop part runs its loop under a signal that its stop aborts, and waits for the loop to end", async () => {
  let seen: AbortSignal | undefined;
  let ended = false;
  const part = loopPart(
    "probe",
    async (signal) => {
      seen = signal;
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      ended = true;
    },
    { logger: silentLogger, clock: systemClock },
  );
  const parent = new AbortController();
  await part.start(parent.signal);
  assert.ok(seen && !seen.aborted);
  await part.stop(systemClock.now() + 60_000);
  assert.equal(seen.aborted, true);
  assert.equal(ended, true);
  assert.equal(parent.signal.aborted, false, "stopping one part leaves the others' signal alone");
});

test("once the first part has stopped, every part below is aborted together, before any of their stops", async () => {
  const { events, part } = recorder();
  const loop = (name: string) => part(name, { abort: () => void events.push(`abort ${name}`) });
  const parts = new Parts([part("store"), loop("connectivity"), loop("shipper"), part("workers")], systemClock);
  await parts.start();
  events.length = 0;
  await parts.stop(1000);
  assert.deepEqual(events, [
    "stop workers",
    "abort shipper",
    "abort connectivity",
    "stop shipper",
    "stop connectivity",
    "stop store",
  ]);
});

test("a first part that takes the whole bound still leaves the parts below their grace to wind down", async () => {
  let now = 1_000_000;
  const clock = { now: () => now };
  const deadlines: number[] = [];
  const parts = new Parts(
    [
      { name: "store", start: () => undefined, stop: (d) => void deadlines.push(d) },
      { name: "shipper", start: () => undefined, stop: (d) => void deadlines.push(d) },
      {
        name: "workers",
        start: () => undefined,
        stop: (d) => {
          deadlines.push(d);
          now = d + 5000;
          return false;
        },
      },
    ],
    clock,
  );
  await parts.start();
  assert.equal(await parts.stop(10_000), false);
  assert.deepEqual(deadlines, [1_010_000, 1_015_100, 1_015_100]);
});
