import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { waitFor } from "../../test/helpers/wait-for.ts";
import { createLogger, silentLogger } from "../core/logger.ts";
import { EVENT_IDS, type EventLevel, type EventLog } from "../platform/event-log.ts";
import { fixedHealthPath, HealthChannel } from "../status/health-channel.ts";
import type { ConnectorStatus } from "../status/status-api.ts";
import { Monitor, type MonitorOptions } from "./monitor.ts";
import { readMonitorRecord, writeIntent } from "./monitor-state.ts";
import type { ServiceController, ServiceSnapshot } from "./service-controller.ts";

/** A service manager whose connector is down: crashed (exit code 1) or stopped in an orderly way. */
class FakeManager implements ServiceController {
  readonly kind = "systemd";
  starts = 0;
  snapshot: ServiceSnapshot;
  kills = 0;
  constructor(snapshot: ServiceSnapshot) {
    this.snapshot = snapshot;
  }
  async query(): Promise<ServiceSnapshot> {
    return this.snapshot;
  }
  async start(): Promise<void> {
    this.starts++;
  }
  async kill(): Promise<void> {
    this.kills++;
  }
  lastOutput(): readonly string[] {
    return [];
  }
  async close(): Promise<void> {}
}

const crashed: ServiceSnapshot = { state: "stopped", pid: null, stoppedCleanly: false, exit: "exit code 1" };

async function monitorWith(dataDir: string, controller: ServiceController, overrides: Partial<MonitorOptions> = {}) {
  const events: Array<{ level: EventLevel; id: number | undefined; message: string }> = [];
  const lines: string[] = [];
  const eventLog: EventLog = {
    write: async (level, message, id) => {
      events.push({ level, id, message });
    },
  };
  const monitor = await Monitor.create({
    dataDir,
    health: fixedHealthPath(join(dataDir, "health.sock")),
    controller,
    logger: createLogger({ write: (l) => lines.push(l) }),
    eventLog,
    clock: { now: () => Date.now() },
    policy: { initialDelayMs: 0, maxDelayMs: 0, maxRestarts: 2, windowMs: 60_000, resetAfterMs: 60_000 },
    intervalMs: 5,
    // No test here is about a slow answer: on a busy machine a 100 ms budget could read the answering fake as hung.
    probeTimeoutMs: 10_000,
    strikes: 1,
    startGraceMs: 0,
    ...overrides,
  });
  const abort = new AbortController();
  const done = monitor.run(abort.signal);
  return {
    monitor,
    events,
    lines,
    stop: () => {
      abort.abort();
      return done;
    },
  };
}

test("crash loop under a service manager: restarts, gives up with Event Log ids 110/111, re-armed by a start", async () => {
  await using dir = await tempDir();
  const manager = new FakeManager(crashed);
  const m = await monitorWith(dir.path, manager);
  try {
    await waitFor("give-up", () => m.monitor.state === "gave-up", 20_000, 5);
    assert.equal(manager.starts, 2);
    assert.deepEqual(
      m.events.map((e) => `${e.level}:${e.id}`),
      [
        `warning:${EVENT_IDS.monitorRestart}`,
        `warning:${EVENT_IDS.monitorRestart}`,
        `error:${EVENT_IDS.monitorGaveUp}`,
      ],
    );
    assert.match(
      m.events.at(-1)?.message ?? "",
      /gave up after 2 restarts in 1 min; .*exit code 1.*bioapi service start/,
    );
    assert.ok(m.lines.some((l) => l.includes("Monitor gave up restarting the connector")));
    // Given up means given up: no further starts while nobody intervenes.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(manager.starts, 2);

    // `bioapi service start` records a newer intent, which re-arms the monitor.
    await new Promise((r) => setTimeout(r, 5));
    await writeIntent(dir.path, "running", "test");
    await waitFor("a restart after re-arming", () => manager.starts > 2, 20_000, 5);
  } finally {
    await m.stop();
  }
  const record = await readMonitorRecord(dir.path);
  assert.ok(record?.actions.some((a) => a.action === "give-up"));
});

test("a connector that cannot start on a full disk (exit 75) is restarted for as long as it takes, never given up", async () => {
  await using dir = await tempDir();
  for (const exit of ["exit code 75", "exit-code (status 75)", "service exit code 75"]) {
    const manager = new FakeManager({ state: "stopped", pid: null, stoppedCleanly: false, exit });
    const m = await monitorWith(dir.path, manager);
    try {
      // maxRestarts is 2: a crash loop would have given up after the second start.
      await waitFor(`five starts after ${exit}`, () => manager.starts >= 5, 5_000, 5);
      assert.notEqual(m.monitor.state, "gave-up");
      assert.ok(m.lines.some((l) => l.includes("the data disk is full (STORE_FULL")));
    } finally {
      await m.stop();
    }
  }
});

test("an orderly stop or an administrator's intent is left alone", async () => {
  await using dir = await tempDir();
  const manager = new FakeManager({ state: "stopped", pid: null, stoppedCleanly: true, exit: null });
  const m = await monitorWith(dir.path, manager);
  try {
    await waitFor("stopped-by-admin", () => m.monitor.state === "stopped-by-admin", 20_000, 5);
    await writeIntent(dir.path, "stopped", "test");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(manager.starts, 0);
    assert.equal(m.events.length, 0);
  } finally {
    await m.stop();
  }
  // A crashed connector with the intent "stopped" is not restarted either.
  await using dir2 = await tempDir();
  await writeIntent(dir2.path, "stopped", "test");
  const crashedManager = new FakeManager(crashed);
  const m2 = await monitorWith(dir2.path, crashedManager);
  try {
    await waitFor("stopped-by-admin", () => m2.monitor.state === "stopped-by-admin", 20_000, 5);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(crashedManager.starts, 0);
  } finally {
    await m2.stop();
  }
});

test("a stall (answers, but a running source has not polled for the stall time) is killed and restarted", async () => {
  await using dir = await tempDir();
  const long = new Date(Date.now() - 60 * 60_000).toISOString();
  const stalled = {
    version: "0.1.0",
    startedAt: long,
    connectivity: { state: "online" },
    outbox: { depth: 0, oldestUnsentAgeMs: null },
    shipper: { lastDeliveryAt: null, lastError: null, retryAt: null },
    sources: [{ sourceId: "door", state: "running", startedAt: long, lastPollAt: long }],
  } as unknown as ConnectorStatus;
  const channel = await HealthChannel.start({
    path: join(dir.path, "health.sock"),
    status: () => stalled,
    logger: silentLogger,
    stallMs: 15 * 60_000,
  });
  const manager = new FakeManager({ state: "running", pid: 4242, stoppedCleanly: false, exit: null });
  // The grace after the restart keeps the fake (still stalled) from being killed again during the assertions.
  const m = await monitorWith(dir.path, manager, { startGraceMs: 60_000 });
  try {
    await waitFor("a kill and a restart", () => manager.kills === 1 && manager.starts === 1, 20_000, 5);
  } finally {
    await m.stop();
    await channel.close();
  }
  const record = await readMonitorRecord(dir.path);
  assert.deepEqual(
    record?.actions.map((a) => a.action),
    ["kill", "restart"],
  );
  assert.match(record?.actions[0]?.reason ?? "", /^stalled: source door has not polled for 3600 s/);
  assert.equal(record?.lastProbe?.responsive, true);
  assert.equal(m.events[0]?.id, EVENT_IDS.monitorRestart);
});

test("a channel that answers for another process than the one verified counts as unresponsive, and is restarted", async () => {
  await using dir = await tempDir();
  const now = new Date().toISOString();
  const healthy = {
    version: "0.1.0",
    startedAt: now,
    connectivity: { state: "online" },
    outbox: { depth: 0, oldestUnsentAgeMs: null },
    shipper: { lastDeliveryAt: null, lastError: null, retryAt: null },
    sources: [],
  } as unknown as ConnectorStatus;
  const path = join(dir.path, "health.sock");
  // The channel runs in this process, so it reports this pid; the locator verified another one.
  const channel = await HealthChannel.start({ path, status: () => healthy, logger: silentLogger });
  const manager = new FakeManager({ state: "running", pid: 4242, stoppedCleanly: false, exit: null });
  const m = await monitorWith(dir.path, manager, {
    health: { locate: async () => ({ path, pid: process.pid + 1 }) },
    startGraceMs: 60_000,
  });
  try {
    await waitFor("a kill and a restart", () => manager.kills === 1 && manager.starts === 1, 20_000, 5);
  } finally {
    await m.stop();
    await channel.close();
  }
  const record = await readMonitorRecord(dir.path);
  assert.match(
    record?.actions[0]?.reason ?? "",
    new RegExp(`unresponsive: the health channel answered for process ${process.pid}, not the connector`),
  );
});

/**
 * A service manager whose connector sits in a pending state, on a clock that moves `stepMs` per query: one query is
 * one check, so the test walks through minutes of checks without waiting for them.
 */
class PendingManager extends FakeManager {
  now = Date.parse("2026-11-26T10:00:00.000Z");
  stepMs = 10_000;
  queries = 0;
  readonly clock = { now: () => this.now };
  override async query(): Promise<ServiceSnapshot> {
    this.queries++;
    this.now += this.stepMs;
    return this.snapshot;
  }
}

test("a connector stuck in start-pending past the pending deadline strikes once per check, then is killed and started", async () => {
  await using dir = await tempDir();
  const manager = new PendingManager({ state: "starting", pid: 4242, stoppedCleanly: false, exit: null });
  const original = manager.start.bind(manager);
  manager.start = async () => {
    await original();
    // The restarted connector starts normally: its clock no longer runs, so it never overruns again.
    manager.stepMs = 0;
  };
  const m = await monitorWith(dir.path, manager, { clock: manager.clock, strikes: 3, pendingDeadlineMs: 120_000 });
  try {
    await waitFor("a kill and a start", () => manager.kills === 1 && manager.starts === 1, 20_000, 5);
    const after = manager.queries;
    await waitFor("more checks after the restart", () => manager.queries > after + 20, 20_000, 5);
    assert.equal(manager.kills, 1, "a fresh start-pending is counted afresh");
  } finally {
    await m.stop();
  }
  // First seen at 10 s: 120 s later is still within the deadline; 130, 140 and 150 s are the three strikes.
  const strikes = m.lines.filter((l) => l.includes("Connector check failed."));
  assert.equal(strikes.length, 3, m.lines.join("\n"));
  assert.match(strikes[0] ?? "", /stuck in start-pending for 130 s/);
  const record = await readMonitorRecord(dir.path);
  assert.deepEqual(
    record?.actions.map((a) => a.action),
    ["kill", "restart"],
  );
  assert.equal(record?.actions[0]?.reason, "stuck in start-pending for 150 s (3 checks)");
  assert.equal(m.events[0]?.id, EVENT_IDS.monitorRestart);
});

test("a connector stuck in stop-pending is killed and started too; the status message names the reason", async () => {
  await using dir = await tempDir();
  const manager = new PendingManager({ state: "stopping", pid: 4242, stoppedCleanly: false, exit: null });
  const m = await monitorWith(dir.path, manager, {
    clock: manager.clock,
    strikes: 2,
    pendingDeadlineMs: 60_000,
    // The restart waits (until the test ends), so the record written before the kill is still there to read.
    policy: { initialDelayMs: 60_000, maxDelayMs: 60_000, maxRestarts: 2, windowMs: 60_000, resetAfterMs: 60_000 },
  });
  try {
    await waitFor("a kill", () => manager.kills === 1, 20_000, 5);
    const record = await readMonitorRecord(dir.path);
    assert.equal(record?.state, "restarting");
    assert.equal(record?.message, "restarting in 60 s: stuck in stop-pending for 80 s (2 checks)");
  } finally {
    await m.stop();
  }
  assert.ok(m.lines.some((l) => l.includes("Connector check failed.") && l.includes("stuck in stop-pending for 70 s")));
  assert.equal(manager.starts, 0, "the restart is still waiting out its delay");
});

test("a normal start-pending (shorter than the pending deadline) is no strike", async () => {
  await using dir = await tempDir();
  const manager = new PendingManager({ state: "starting", pid: 4242, stoppedCleanly: false, exit: null });
  const m = await monitorWith(dir.path, manager, { clock: manager.clock, strikes: 1, pendingDeadlineMs: 120_000 });
  try {
    // 10 s to 110 s: eleven checks in start-pending, then the connector is up (here: stopped in an orderly way).
    await waitFor("eleven checks", () => manager.queries >= 11, 20_000, 5);
    manager.snapshot = { state: "stopped", pid: null, stoppedCleanly: true, exit: null };
    manager.stepMs = 0;
    await waitFor("stopped-by-admin", () => m.monitor.state === "stopped-by-admin", 20_000, 5);
  } finally {
    await m.stop();
  }
  assert.equal(manager.kills, 0);
  assert.equal(manager.starts, 0);
  assert.ok(!m.lines.some((l) => l.includes("Connector check failed.")), m.lines.join("\n"));
});
