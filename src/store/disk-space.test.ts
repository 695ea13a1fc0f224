import assert from "node:assert/strict";
import { existsSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { enospc, sqliteFull } from "../../test/helpers/disk-full-errors.ts";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { BioError, describeError, isDiskFullError } from "../core/errors.ts";
import { createLogger } from "../core/logger.ts";
import { DiskSpace, volumeOf } from "./disk-space.ts";

function sqliteConstraint(): Error {
  const db = new DatabaseSync(":memory:");
  try {
    db.exec("CREATE TABLE t (x TEXT NOT NULL); INSERT INTO t VALUES (NULL)");
  } catch (error) {
    return error as Error;
  } finally {
    db.close();
  }
  throw new Error("SQLite accepted a NULL");
}

const linux = process.platform === "linux";

test("a write refused for want of room is recognised, through wrappers; other failures are not", {
  skip: !linux,
}, () => {
  assert.equal(isDiskFullError(enospc()), true, "ENOSPC");
  assert.equal(isDiskFullError(sqliteFull()), true, "SQLITE_FULL");
  // EDQUOT cannot be produced without a quota-enabled file system; its shape is what Node gives any errno error.
  assert.equal(
    isDiskFullError(Object.assign(new Error("EDQUOT: disk quota exceeded, write"), { code: "EDQUOT" })),
    true,
  );
  const wrapped = new BioError("STORE", "Cannot open the local store.", { cause: sqliteFull() });
  assert.equal(isDiskFullError(wrapped), true, "a cause is looked through");
  assert.equal(isDiskFullError(sqliteConstraint()), false, "a constraint violation is not a full disk");
  let eisdir: unknown;
  try {
    openSync("/", "w");
  } catch (error) {
    eisdir = error;
  }
  assert.equal(isDiskFullError(eisdir), false, "EISDIR");
  assert.equal(isDiskFullError(undefined), false);
  // Before: INTERNAL with "retries with backoff". A bare ENOSPC now says what it is wherever it is described.
  assert.equal(describeError(enospc()).code, "STORE_FULL");
});

/** A data directory on a "disk" the test fills and frees: the probe port refuses with a real ENOSPC while full. */
async function fixture() {
  const dir = await tempDir();
  const data = join(dir.path, "data");
  mkdirSync(data);
  const lines: string[] = [];
  let full = false;
  const probes: string[] = [];
  const hooks: { beforeProbe?: () => void } = {};
  const space = new DiskSpace({
    dir: data,
    clock: { now: () => Date.UTC(2026, 11, 3, 12) },
    logger: createLogger({ level: "debug", format: "json", write: (l) => lines.push(l) }),
    write: (path, bytes) => {
      probes.push(`${path}:${bytes}`);
      hooks.beforeProbe?.();
      if (full) throw enospc();
    },
    probeInitialMs: 1,
    probeMaxMs: 2,
  });
  return {
    dir,
    data,
    space,
    lines,
    probes,
    hooks,
    fill: () => {
      full = true;
    },
    free: () => {
      full = false;
    },
  };
}

test("a full disk is a state: entered once however many writers fail, left when a probe write succeeds", {
  skip: !linux,
}, async () => {
  const f = await fixture();
  await using _ = f.dir;
  assert.equal(f.space.isFull, false);
  assert.equal(f.space.status().state, "ok");
  f.fill();

  const first = f.space.fail(sqliteFull());
  assert.ok(first instanceof BioError && first.code === "STORE_FULL");
  assert.match(first.message, /^The data disk is full \(STORE_FULL\): cannot write to .*data\. Free space on /);
  assert.ok(first.message.includes(f.space.volume), "the volume is named");
  assert.equal(isDiskFullError(first), true, "named so the shipper holds and a command exits 75 (try again)");
  const second = f.space.fail(enospc());
  assert.ok(second instanceof BioError && second.code === "STORE_FULL");
  assert.equal(f.space.isFull, true);
  const status = f.space.status();
  assert.equal(status.state, "full");
  assert.equal(status.dataDir, f.data);
  assert.equal(status.volume, volumeOf(f.data));
  assert.equal(status.since, "2026-12-03T12:00:00.000Z");
  assert.equal(typeof status.freeBytes, "number");
  assert.equal(f.lines.filter((l) => l.includes('"code":"STORE_FULL"')).length, 1, "logged once, not per writer");

  // Still full: the probe fails and nothing changes.
  assert.equal(f.space.probe(), false);
  assert.equal(f.space.isFull, true);
  // Room again: a probe write succeeds, the state clears, and whoever waits for room goes on.
  const waiting = f.space.waitRoom(AbortSignal.timeout(60_000));
  f.free();
  assert.equal(f.space.probe(), true);
  await waiting;
  assert.equal(f.space.status().state, "ok");
  assert.equal(f.space.status().since, null);
  assert.ok(f.lines.some((l) => l.includes("The data disk has room again: resuming.")));
  assert.ok(
    f.probes.every((p) => p.endsWith(":1048576")),
    "the probe asks for room for real work (1 MiB), not a byte",
  );
});

test("a failure that is not about room leaves the state alone and comes back as it was", { skip: !linux }, async () => {
  const f = await fixture();
  await using _ = f.dir;
  const constraint = sqliteConstraint();
  assert.equal(f.space.fail(constraint), constraint);
  assert.equal(f.space.isFull, false);
  // An I/O error is settled by a probe: EDQUOT reaches SQLite as SQLITE_IOERR_WRITE.
  const ioError = Object.assign(new Error("disk I/O error"), { errcode: 778 });
  assert.equal(f.space.fail(ioError), ioError, "with room, an I/O error is a failing disk, not a full one");
  assert.equal(f.space.isFull, false);
  f.fill();
  const named = f.space.fail(ioError);
  assert.ok(named instanceof BioError && named.code === "STORE_FULL", "without room it is a full disk");
  assert.equal(f.space.isFull, true);
});

test("the probe loop probes with backoff while full, and resumes by itself", { skip: !linux }, async () => {
  const f = await fixture();
  await using _ = f.dir;
  f.fill();
  f.space.fail(enospc());
  const controller = new AbortController();
  // Three probes find no room; before the fourth, someone frees space.
  f.hooks.beforeProbe = () => {
    if (f.probes.length === 4) f.free();
  };
  const loop = f.space.run(controller.signal);
  await f.space.waitRoom(AbortSignal.timeout(60_000));
  assert.equal(f.probes.length, 4);
  assert.equal(f.space.isFull, false);
  controller.abort();
  await loop.catch(() => undefined);
});

test("a start on a full disk ends in one line naming STORE_FULL and the volume", { skip: !linux }, async () => {
  const f = await fixture();
  await using _ = f.dir;
  f.fill();
  const refused = f.space.tryWrite();
  assert.equal(isDiskFullError(refused), true);
  assert.equal(f.space.isFull, false, "a start check changes no state");
  assert.equal(f.lines.length, 0, "and logs nothing");
  const error = f.space.startError(refused);
  assert.equal(error.code, "STORE_FULL");
  assert.equal(error.message.includes("\n"), false);
  assert.match(error.message, /^The data disk is full \(STORE_FULL\): the connector cannot start\. Free space on /);
  assert.ok(error.message.includes(f.space.volume));
});

test("the volume is the mount point holding the directory", () => {
  assert.equal(volumeOf("/"), "/");
  const volume = volumeOf(process.cwd());
  assert.ok(process.cwd().startsWith(volume));
});

test("the probe never writes through a link or into a file left at its name", { skip: !linux }, async () => {
  await using dir = await tempDir();
  const precious = join(dir.path, "precious.db");
  writeFileSync(precious, "rows");
  symlinkSync(precious, join(dir.path, ".disk-probe"));
  const space = new DiskSpace({ dir: dir.path, clock: { now: () => 0 }, logger: createLogger({ write: () => {} }) });
  assert.equal(space.tryWrite(), undefined, "the probe found room");
  assert.equal(readFileSync(precious, "utf8"), "rows", "the link's target is untouched");
  assert.equal(existsSync(join(dir.path, ".disk-probe")), false, "and the probe file is gone");
});
