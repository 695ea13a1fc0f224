import assert from "node:assert/strict";
import { test } from "node:test";
import { OutboxGate, type OutboxLimits } from "./outbox-gate.ts";

function gate(state: { depth: number; full: boolean; online: boolean; limits: OutboxLimits }) {
  return new OutboxGate({
    depth: () => state.depth,
    space: {
      get isFull() {
        return state.full;
      },
    },
    connectivity: {
      get isOnline() {
        return state.online;
      },
      waitChange: async () => {
        state.depth = 0;
      },
    },
    limits: () => state.limits,
  });
}

const limits: OutboxLimits = { policy: "pause", highWater: 100, maxDepth: 1000 };

test("the gate pauses the sources on a full disk, whatever else holds", () => {
  assert.equal(gate({ depth: 0, full: true, online: true, limits }).blockedBy(), "paused");
});

test("offline: policy pause pauses; policy buffer reads on up to maxDepth", () => {
  assert.equal(gate({ depth: 0, full: false, online: false, limits }).blockedBy(), "paused");
  const buffer = { ...limits, policy: "buffer" } as const;
  assert.equal(gate({ depth: 999, full: false, online: false, limits: buffer }).blockedBy(), null);
  assert.equal(gate({ depth: 1000, full: false, online: false, limits: buffer }).blockedBy(), "throttled");
});

test("online: the sources throttle at the high-water mark, and the gate opens when the outbox drains", async () => {
  const state = { depth: 100, full: false, online: true, limits };
  const g = gate(state);
  assert.equal(g.blockedBy(), "throttled");
  state.depth = 99;
  assert.equal(g.blockedBy(), null);
  state.depth = 100;
  await g.waitOpen(new AbortController().signal);
  assert.equal(g.blockedBy(), null);
});
