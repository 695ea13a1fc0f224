import assert from "node:assert/strict";
import { chmod, chown, mkdir, readdir, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { silentLogger } from "../core/logger.ts";
import {
  assessProgress,
  HealthChannel,
  healthChannelPath,
  probeHealth,
  readHealthRecord,
  recordedHealthChannel,
  writeHealthRecord,
} from "./health-channel.ts";
import type { ConnectorStatus } from "./status-api.ts";

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

test("Windows pipe names are fresh for every start; the unix socket stays where its private directory is", () => {
  const a = healthChannelPath("C:\\ProgramData\\CamsBioApi", "win32");
  const b = healthChannelPath("C:\\ProgramData\\CamsBioApi", "win32");
  assert.match(a, /^\\\\\.\\pipe\\cams-bioapi-health-[0-9a-f]{32}$/);
  assert.notEqual(a, b, "a name that a squatter could compute ahead is no longer used");
  assert.equal(healthChannelPath("/var/lib/cams-bioapi", "linux"), healthChannelPath("/var/lib/cams-bioapi", "linux"));
});

test("the monitor trusts a recorded channel only when the record and the pipe's server are the running connector", async () => {
  await using dir = await tempDir();
  const servers = new Map<string, number>();
  const asked: string[] = [];
  const locator = recordedHealthChannel(dir.path, async (path) => {
    asked.push(path);
    const pid = servers.get(path);
    if (pid === undefined) throw new Error("no such pipe");
    return pid;
  });
  assert.match(JSON.stringify(await locator.locate(700)), /has not opened its health channel yet/);

  const path = "\\\\.\\pipe\\cams-bioapi-health-aa";
  await writeHealthRecord(dir.path, { path, pid: 700, startedAt: new Date(T0).toISOString() });
  assert.equal(((await stat(join(dir.path, "health-channel.json"))).mode & 0o777).toString(8), "600");
  assert.deepEqual(await readHealthRecord(dir.path), { path, pid: 700, startedAt: new Date(T0).toISOString() });

  servers.set(path, 700);
  assert.deepEqual(await locator.locate(700), { path, pid: 700 });
  // The service manager runs a newer connector: the record is the old one's, and its name may be anyone's now.
  const stale = await locator.locate(701);
  assert.match(
    "problem" in stale ? stale.problem : "",
    /belongs to process 700, not the running connector \(pid 701\)/,
  );
  // Another program serves the recorded name (it took it while the connector restarted).
  servers.set(path, 666);
  const squatted = await locator.locate(700);
  assert.match(
    "problem" in squatted ? squatted.problem : "",
    /served by process 666, not the connector \(pid 700\): another program holds its name; no request was sent/,
  );
  servers.delete(path);
  assert.match(JSON.stringify(await locator.locate(700)), /could not be opened: no such pipe/);
  assert.equal(asked.length, 3, "the server is asked only when the record names the running connector");
});
