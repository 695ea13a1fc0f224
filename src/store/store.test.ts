import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { makePunch, type Punch } from "../core/punch.ts";
import { MIGRATIONS } from "./migrations.ts";
import { Store } from "./store.ts";

function punch(serial: string, user: string, second: number): Punch {
  const local = `2026-11-26T08:00:${String(second).padStart(2, "0")}`;
  return makePunch({
    deviceSerial: serial,
    userId: user,
    local,
    iso: `${local}+00:00`,
    stateCode: 0,
    verifyCode: 1,
    source: "database",
    collectedAt: "2026-11-26T08:01:00.000Z",
  });
}

test("emit commits punches and cursor together; a re-read is dropped by id", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  const first = store.emit("src", [punch("A", "1", 1), punch("A", "2", 2)], { A: 2 });
  assert.deepEqual(first, { enqueued: 2, duplicates: 0, quarantined: 0, quarantinedKinds: {} });
  const again = store.emit("src", [punch("A", "1", 1), punch("A", "3", 3)], { A: 3 });
  assert.deepEqual(again, { enqueued: 1, duplicates: 1, quarantined: 0, quarantinedKinds: {} });
  assert.deepEqual([...store.cursors("src")], [["A", 3]]);
  assert.equal(store.outboxStats().depth, 3);
  store.close();
});

test("a failing emit rolls back both punches and cursor", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.emit("src", [punch("A", "1", 1)], { A: 1 });
  const poisoned = { ...punch("A", "9", 9), id: null } as unknown as Punch;
  assert.throws(() => store.emit("src", [punch("A", "2", 2), poisoned], { A: 99 }));
  assert.equal(store.outboxStats().depth, 1);
  assert.deepEqual([...store.cursors("src")], [["A", 1]]);
  store.close();
});

test("acknowledged punches leave the outbox in order, and a later re-read does not enqueue them again", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.emit("src", [punch("A", "1", 1), punch("A", "2", 2), punch("A", "3", 3)], { A: 3 });
  const batch = store.peek(2);
  assert.deepEqual(
    batch.map((e) => JSON.parse(e.body).userId),
    ["1", "2"],
  );
  store.ack(batch.map((e) => e.id));
  assert.equal(store.outboxStats().depth, 1);
  const reread = store.emit("src", [punch("A", "1", 1), punch("A", "2", 2)], null);
  assert.equal(reread.enqueued, 0);
  assert.equal(store.deliveredCount(), 2);
  store.close();
});

test("quarantine keeps the row and its reason; rejected outbox punches stop blocking the queue", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.emit("src", [punch("A", "1", 1), punch("A", "2", 2)], { A: 5 }, [
    { reason: "user is empty", payload: { id: 4, user: null } },
  ]);
  const [head] = store.peek(1);
  assert.ok(head);
  store.quarantineOutbox([{ id: head.id, reason: "cloud: bad time" }]);
  assert.equal(store.peek(10).length, 1);
  const q = store.quarantine();
  assert.equal(q.length, 2);
  assert.deepEqual(
    q.map((e) => [e.stage, e.reason]),
    [
      ["sink", "cloud: bad time"],
      ["source", "user is empty"],
    ],
  );
  assert.equal(JSON.parse(q[1]?.payload ?? "{}").id, 4);
  store.close();
});

test("delivered ids are pruned after retention", async () => {
  await using dir = await tempDir();
  let now = 1_000_000;
  const store = Store.open(join(dir.path, "s.db"), { clock: { now: () => now } });
  store.emit("src", [punch("A", "1", 1)], null);
  store.ack(store.peek(1).map((e) => e.id));
  now += 10_000;
  assert.equal(store.pruneDelivered(60_000), 0);
  now += 60_000;
  assert.equal(store.pruneDelivered(60_000), 1);
  store.close();
});

test("migrations are recorded; a store from a newer version is refused with a clear error", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "s.db");
  const store = Store.open(path);
  assert.equal(store.schemaVersion, MIGRATIONS.length);
  store.close();
  const { DatabaseSync } = await import("node:sqlite");
  const raw = new DatabaseSync(path);
  raw.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
  raw.close();
  assert.throws(() => Store.open(path), /Cannot open the local store/);
});

test("the outbox survives reopening (WAL on disk)", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "s.db");
  const a = Store.open(path);
  a.emit("src", [punch("A", "1", 1)], { A: 1 });
  a.close();
  const b = Store.open(path);
  assert.equal(b.outboxStats().depth, 1);
  assert.deepEqual([...b.cursors("src")], [["A", 1]]);
  b.close();
});

test("a read-only store reads beside a writer, refuses every write, and never migrates", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "s.db");
  const writer = Store.open(path);
  writer.emit("src", [punch("A", "1", 1)], { A: 1 });
  const reader = Store.openReadOnly(path);
  assert.deepEqual([...reader.cursors("src")], [["A", 1]]);
  assert.throws(() => reader.emit("src", [punch("A", "2", 2)], { A: 2 }), /readonly/);
  writer.emit("src", [punch("A", "3", 3)], { A: 3 });
  assert.deepEqual([...reader.cursors("src")], [["A", 3]], "sees the writer's later commits");
  reader.close();
  writer.close();

  const { DatabaseSync } = await import("node:sqlite");
  const old = join(dir.path, "old.db");
  new DatabaseSync(old).close();
  assert.throws(
    () => Store.openReadOnly(old),
    (e: Error & { code?: string }) => e.code === "STORE",
  );
  const untouched = new DatabaseSync(old, { readOnly: true });
  assert.equal((untouched.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, 0);
  untouched.close();
});

test("source rows are quarantined once per row key, and counted by kind", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  const bad = (key: string, kind: string) => ({ reason: `${kind} (row ${key})`, kind, payload: { key }, rowKey: key });
  const first = store.emit("src", [], null, [
    bad("a", "time is not a calendar date"),
    bad("b", "time is not a calendar date"),
    bad("c", "id is not an integer"),
  ]);
  assert.deepEqual(first.quarantinedKinds, { "time is not a calendar date": 2, "id is not an integer": 1 });
  assert.equal(first.quarantined, 3);
  const again = store.emit("src", [], null, [
    bad("a", "time is not a calendar date"),
    bad("d", "id is not an integer"),
  ]);
  assert.deepEqual([again.quarantined, again.quarantinedKinds], [1, { "id is not an integer": 1 }]);
  assert.equal(store.quarantineCount(), 4);
  store.close();
});
