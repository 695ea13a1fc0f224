import assert from "node:assert/strict";
import { chmod, chown, mkdir, readdir, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { silentLogger } from "../core/logger.ts";
import type { ConnectorStatus } from "../status/status-api.ts";
import { assessProgress, HealthChannel, healthChannelPath, probeHealth } from "./health-channel.ts";

const T0 = Date.parse("2026-11-26T10:00:00Z");
const MIN = 60_000;

function status(over: Partial<Record<string, unknown>> = {}): ConnectorStatus {
  return {
    version: "0.1.0",
    nodeId: "n",
    pid: 1,
    startedAt: new Date(T0).toISOString(),
    memory: { rssMb: 1, heapUsedMb: 1, externalMb: 0 },
    connectivity: { state: "online", policy: "pause", history: [] },
    config: {} as ConnectorStatus["config"],
    outbox: { depth: 0, oldestUnsentAgeMs: null, quarantined: 0 },
    shipper: { delivered: 0, quarantined: 0, lastDeliveryAt: null, lastError: null, retryAt: null },
    sources: [],
    ...over,
  } as unknown as ConnectorStatus;
}

const source = (state: string, lastPollAt: number | null) => ({
  sourceId: "door",
  kind: "zk",
  state,
  startedAt: new Date(T0).toISOString(),
  lastPollAt: lastPollAt === null ? null : new Date(lastPollAt).toISOString(),
});

test("progress: polling sources and a draining outbox pass; a silent running source or a stuck outbox do not", () => {
  const now = T0 + 60 * MIN;
  assert.equal(assessProgress(status(), now, 15 * MIN).progressing, true);
  assert.equal(assessProgress(status({ sources: [source("running", now - MIN)] }), now, 15 * MIN).progressing, true);
  const silent = assessProgress(status({ sources: [source("running", now - 20 * MIN)] }), now, 15 * MIN);
  assert.deepEqual(silent, { progressing: false, reason: "source door has not polled for 1200 s" });
  // An unreachable device is in backoff: a restart would not help, so it is not a stall.
  assert.equal(assessProgress(status({ sources: [source("backoff", null)] }), now, 15 * MIN).progressing, true);
  const stuck = status({ outbox: { depth: 50, oldestUnsentAgeMs: 30 * MIN, quarantined: 0 } });
  assert.match(assessProgress(stuck, now, 15 * MIN).reason ?? "", /outbox \(50 punches\) has not drained/);
  // The cloud refusing or being away is for the status page, not for a restart.
  const offline = status({
    outbox: { depth: 50, oldestUnsentAgeMs: 30 * MIN, quarantined: 0 },
    connectivity: { state: "offline", policy: "pause", history: [] },
  });
  assert.equal(assessProgress(offline, now, 15 * MIN).progressing, true);
  assert.equal(assessProgress(status({ sources: [source("running", null)] }), T0 + MIN, 15 * MIN).progressing, true);
});

test("the channel answers over a unix socket (0600), replaces a stale socket, and a long data dir falls back", async () => {
  await using dir = await tempDir();
  const path = healthChannelPath(dir.path);
  assert.equal(path, join(dir.path, "health.sock"));
  assert.match(healthChannelPath(`/${"x".repeat(120)}`), /^\/tmp\/cams-bioapi-health-[0-9a-f]{16}\/health\.sock$/);
  assert.match(healthChannelPath("C:\\ProgramData\\CamsBioApi", "win32"), /^\\\\\.\\pipe\\cams-bioapi-health-/);
  const first = await HealthChannel.start({ path, status: () => status(), logger: silentLogger });
  await first.close();
  const channel = await HealthChannel.start({ path, status: () => status(), logger: silentLogger });
  try {
    const report = await probeHealth(path, 1000);
    assert.equal(report.pid, process.pid);
    assert.equal(report.progress.progressing, true);
  } finally {
    await channel.close();
  }
  await assert.rejects(probeHealth(join(dir.path, "none.sock"), 200), /ENOENT|ECONNREFUSED/);
});

test("the unix socket is 0600 in a 0700 directory of this account; a loose one is tightened, another's refused", async (t) => {
  await using dir = await tempDir();
  const dataDir = join(dir.path, "data");
  await mkdir(dataDir, { mode: 0o755 });
  await chmod(dataDir, 0o755);
  const path = healthChannelPath(dataDir);
  const channel = await HealthChannel.start({ path, status: () => status(), logger: silentLogger });
  try {
    assert.equal((await stat(path)).mode & 0o777, 0o600, "socket 0600");
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700, "its directory tightened to 0700");
  } finally {
    await channel.close();
  }

  const planted = join(dir.path, "planted");
  await mkdir(join(dir.path, "elsewhere"));
  await symlink(join(dir.path, "elsewhere"), planted);
  await assert.rejects(
    HealthChannel.start({ path: join(planted, "health.sock"), status: () => status(), logger: silentLogger }),
    {
      code: "SERVICE",
      message: /planted is not a directory.*Remove it/,
    },
  );
  if (process.getuid?.() !== 0) return t.skip("chown to another account needs root");
  const foreign = join(dir.path, "foreign");
  await mkdir(foreign, { mode: 0o700 });
  await chown(foreign, 12345, 12345);
  await assert.rejects(
    HealthChannel.start({ path: join(foreign, "health.sock"), status: () => status(), logger: silentLogger }),
    {
      code: "SERVICE",
      message: /owned by uid 12345, not this account/,
    },
  );
  assert.equal(await readdir(foreign).then((f) => f.length), 0, "no socket created in it");
});
