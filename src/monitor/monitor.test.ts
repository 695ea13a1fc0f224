import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { waitFor } from "../../test/helpers/wait-for.ts";
import { createLogger } from "../core/logger.ts";
import { EVENT_IDS, type EventLevel, type EventLog } from "../service/event-log.ts";
import { Monitor } from "./monitor.ts";
import { readMonitorRecord, writeIntent } from "./monitor-state.ts";
import type { ServiceController, ServiceSnapshot } from "./service-controller.ts";

/** A service manager whose connector is down: crashed (exit code 1) or stopped in an orderly way. */
class FakeManager implements ServiceController {
  readonly kind = "systemd";
  starts = 0;
  readonly snapshot: ServiceSnapshot;
  constructor(snapshot: ServiceSnapshot) {
    this.snapshot = snapshot;
  }
  async query(): Promise<ServiceSnapshot> {
    return this.snapshot;
  }
  async start(): Promise<void> {
    this.starts++;
  }
  async kill(): Promise<void> {}
  lastOutput(): readonly string[] {
    return [];
  }
  async close(): Promise<void> {}
}

const crashed: ServiceSnapshot = { state: "stopped", pid: null, stoppedCleanly: false, exit: "exit code 1" };

async function monitorWith(dataDir: string, controller: ServiceController) {
  const events: Array<{ level: EventLevel; id: number | undefined; message: string }> = [];
  const lines: string[] = [];
  const eventLog: EventLog = {
    write: async (level, message, id) => {
      events.push({ level, id, message });
    },
  };
  const monitor = await Monitor.create({
    dataDir,
    healthPath: join(dataDir, "health.sock"),
    controller,
    logger: createLogger({ write: (l) => lines.push(l) }),
    eventLog,
    clock: { now: () => Date.now() },
    policy: { initialDelayMs: 0, maxDelayMs: 0, maxRestarts: 2, windowMs: 60_000, resetAfterMs: 60_000 },
    intervalMs: 5,
    probeTimeoutMs: 100,
    strikes: 1,
    startGraceMs: 0,
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
    await waitFor("give-up", () => m.monitor.state === "gave-up", 5_000, 5);
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
    await waitFor("a restart after re-arming", () => manager.starts > 2, 5_000, 5);
  } finally {
    await m.stop();
  }
  const record = await readMonitorRecord(dir.path);
  assert.ok(record?.actions.some((a) => a.action === "give-up"));
});

test("an orderly stop or an administrator's intent is left alone", async () => {
  await using dir = await tempDir();
  const manager = new FakeManager({ state: "stopped", pid: null, stoppedCleanly: true, exit: null });
  const m = await monitorWith(dir.path, manager);
  try {
    await waitFor("stopped-by-admin", () => m.monitor.state === "stopped-by-admin", 5_000, 5);
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
    await waitFor("stopped-by-admin", () => m2.monitor.state === "stopped-by-admin", 5_000, 5);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(crashedManager.starts, 0);
  } finally {
    await m2.stop();
  }
});
