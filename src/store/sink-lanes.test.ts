import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { tempDir } from "../../test/helpers/temp-dir.ts";
import { makePunch, type Punch } from "../core/punch.ts";
import { journalRoom } from "./delivered-retention.ts";
import { MIGRATIONS } from "./migrations.ts";
import { Store } from "./store.ts";

function punch(user: string, minute: number): Punch {
  const local = `2026-11-26T08:${String(minute).padStart(2, "0")}:00`;
  return makePunch({
    deviceSerial: "A",
    userId: user,
    local,
    iso: `${local}+03:00`,
    stateCode: 0,
    verifyCode: 1,
    source: "database",
    collectedAt: "2026-11-26T08:01:00.000Z",
  });
}

const ids = (entries: ReadonlyArray<{ id: string }>) => entries.map((e) => e.id);

test("the first sinks of a store that never had one get its whole backlog, as a single cloud did", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  const punches = [punch("1", 1), punch("2", 2), punch("3", 3)];
  store.emit("src", punches, null);
  store.lanes.sync([{ id: "cams-cloud", kind: "cams-cloud" }]);
  const lane = store.lanes.lane("cams-cloud");
  assert.deepEqual(ids(lane.peek(10)), ids(punches));
  assert.equal(lane.backlog(), 3);
  lane.ack(ids(punches.slice(0, 2)));
  assert.equal(store.depth, 1);
  assert.equal(store.emit("src", punches, null).enqueued, 0, "delivered ids are remembered");
  store.close();
});

test("with two sinks a punch leaves the outbox only when both have settled it, each in its own order", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "hook", kind: "webhook" },
  ]);
  const punches = [punch("1", 1), punch("2", 2), punch("3", 3)];
  store.emit("src", punches, null);
  const cloud = store.lanes.lane("cloud");
  const hook = store.lanes.lane("hook");
  cloud.ack(ids(punches));
  assert.equal(store.depth, 3, "the webhook has not had them");
  assert.deepEqual(cloud.peek(10), [], "the cloud sees nothing more to send");
  assert.equal(cloud.backlog(), 0);
  assert.equal(hook.backlog(), 3);
  hook.ack([punches[1]?.id ?? ""]);
  assert.equal(store.depth, 2);
  assert.deepEqual(ids(hook.peek(10)), ids([punches[0] as Punch, punches[2] as Punch]));
  hook.quarantineOutbox([{ id: punches[0]?.id ?? "", reason: "unknown employee" }]);
  assert.equal(store.depth, 1);
  const [q] = store.quarantine();
  assert.equal(q?.punchId, punches[0]?.id);
  assert.equal(q?.reason, "unknown employee");
  assert.equal(store.emit("src", punches, null).enqueued, 0, "a punch one sink quarantined is not read again");
  store.close();
});

test("what each sink settled survives a restart: neither is sent again what it has", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "s.db");
  const punches = [punch("1", 1), punch("2", 2)];
  {
    const store = Store.open(path);
    store.lanes.sync([
      { id: "a", kind: "webhook" },
      { id: "b", kind: "mqtt" },
    ]);
    store.emit("src", punches, null);
    store.lanes.lane("a").ack([punches[0]?.id ?? ""]);
    store.lanes.lane("b").memoryPut("stamp:A", 42);
    store.close();
  }
  const store = Store.open(path);
  store.lanes.sync([
    { id: "a", kind: "webhook" },
    { id: "b", kind: "mqtt" },
  ]);
  assert.deepEqual(ids(store.lanes.lane("a").peek(10)), [punches[1]?.id]);
  assert.deepEqual(ids(store.lanes.lane("b").peek(10)), ids(punches));
  assert.equal(store.lanes.lane("b").memoryGet("stamp:A"), 42);
  assert.equal(store.depth, 2);
  store.close();
});

test("a sink added later starts from the moment it is added; the backlog before it is not its", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.lanes.sync([{ id: "cloud", kind: "cams-cloud" }]);
  const before = [punch("1", 1), punch("2", 2)];
  store.emit("src", before, null);
  const change = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "hook", kind: "webhook" },
  ]);
  assert.deepEqual(change.added, ["hook"]);
  const after = [punch("3", 3)];
  store.emit("src", after, null);
  const hook = store.lanes.lane("hook");
  assert.deepEqual(ids(hook.peek(10)), ids(after));
  assert.equal(hook.backlog(), 1);
  store.lanes.lane("cloud").ack(ids(before));
  assert.equal(store.depth, 1, "what only the cloud wanted leaves once the cloud has it");
  store.close();
});

test("removing a sink starts nothing over: the rows only it still wanted leave, the others' state stays", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "hook", kind: "webhook" },
  ]);
  const punches = [punch("1", 1), punch("2", 2), punch("3", 3)];
  store.emit("src", punches, null);
  store.lanes.lane("cloud").ack(ids(punches.slice(0, 2)));
  const change = store.lanes.sync([{ id: "cloud", kind: "cams-cloud" }]);
  assert.deepEqual(change.removed, ["hook"]);
  assert.equal(change.released, 2);
  assert.equal(store.depth, 1);
  assert.deepEqual(ids(store.lanes.lane("cloud").peek(10)), [punches[2]?.id]);
  assert.throws(() => store.lanes.lane("hook"), /not registered/);
  store.close();
});

test("backfillFrom gives a new sink the punches from that time the store still holds, and no one else again", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.lanes.sync([{ id: "cloud", kind: "cams-cloud" }]);
  // 08:01 and 08:05 delivered (kept in the journal), 08:02 and 08:06 still pending.
  const [early, late, pendingEarly, pendingLate] = [punch("1", 1), punch("2", 5), punch("3", 2), punch("4", 6)];
  store.emit("src", [early as Punch, late as Punch, pendingEarly as Punch, pendingLate as Punch], null);
  store.lanes.lane("cloud").ack([early?.id ?? "", late?.id ?? ""]);
  assert.equal(store.depth, 2);
  const change = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "erp", kind: "erpnext", backfillFrom: Date.parse("2026-11-26T08:04:00+03:00") },
  ]);
  assert.equal(change.backfilled, 1);
  assert.equal(store.depth, 3);
  const erp = store.lanes.lane("erp");
  assert.deepEqual(new Set(ids(erp.peek(10))), new Set([late?.id, pendingLate?.id]));
  assert.deepEqual(new Set(ids(store.lanes.lane("cloud").peek(10))), new Set([pendingEarly?.id, pendingLate?.id]));
  erp.ack([late?.id ?? "", pendingLate?.id ?? ""]);
  assert.equal(store.depth, 2, "the restored punch left again; the pending ones wait for the cloud");
  store.lanes.lane("cloud").ack([pendingEarly?.id ?? "", pendingLate?.id ?? ""]);
  assert.equal(store.depth, 0);
  store.close();
});

test("a sink far ahead of a slow one does not re-read its own settled rows from the start", async () => {
  await using dir = await tempDir();
  const store = Store.open(join(dir.path, "s.db"));
  store.lanes.sync([
    { id: "fast", kind: "webhook" },
    { id: "slow", kind: "mqtt" },
  ]);
  const punches = Array.from({ length: 50 }, (_, i) => punch(String(i), i));
  store.emit("src", punches, null);
  const fast = store.lanes.lane("fast");
  fast.ack(ids(fast.peek(40)));
  assert.deepEqual(ids(fast.peek(100)), ids(punches.slice(40)));
  assert.deepEqual(ids(fast.peek(100, 0)), ids(punches.slice(40)), "from the start: the same, first unsettled on");
  assert.equal(store.lanes.lane("slow").backlog(), 50);
  store.close();
});

test("without room for the journal a delivered punch keeps only its id, and a backfill gets what the outbox holds", async () => {
  await using dir = await tempDir();
  let room = true;
  const store = Store.open(join(dir.path, "s.db"), { journal: () => room });
  store.lanes.sync([{ id: "cloud", kind: "cams-cloud" }]);
  const [kept, bare, pending] = [punch("1", 10), punch("2", 11), punch("3", 12)];
  store.emit("src", [kept as Punch, bare as Punch, pending as Punch], null);
  store.lanes.lane("cloud").ack([kept?.id ?? ""]);
  room = false;
  store.lanes.lane("cloud").ack([bare?.id ?? ""]);
  const change = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "late", kind: "webhook", backfillFrom: Date.parse("2026-11-26T08:00:00+03:00") },
  ]);
  assert.equal(change.backfilled, 1, "only the punch delivered while there was room comes back");
  assert.deepEqual(new Set(ids(store.lanes.lane("late").peek(10))), new Set([kept?.id, pending?.id]));
  assert.equal(store.dropJournal(), 1, "short of room, the journal gives up the one body it held");
  assert.equal(store.emit("src", [bare as Punch], null).enqueued, 0, "its id still dedupes");
  store.close();
});

test("journalRoom says no when the volume has less free than asked, and looks again only after 10 s", async () => {
  await using dir = await tempDir();
  let now = 0;
  const clock = { now: () => now };
  assert.equal(journalRoom(dir.path, clock, 1)(), true);
  const never = journalRoom(dir.path, clock, Number.MAX_SAFE_INTEGER);
  assert.equal(never(), false);
  now = 20_000;
  assert.equal(never(), false);
});

test("a punch settled twice is in the journal twice and comes back once; the journal is pruned with the ids", async () => {
  await using dir = await tempDir();
  let now = Date.parse("2026-11-26T09:00:00Z");
  const store = Store.open(join(dir.path, "s.db"), { clock: { now: () => now } });
  store.lanes.sync([{ id: "cloud", kind: "cams-cloud" }]);
  const one = punch("1", 10);
  store.emit("src", [one], null);
  store.lanes.lane("cloud").ack([one.id]);
  const from = Date.parse("2026-11-26T08:00:00+03:00");
  const first = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "hook", kind: "webhook", backfillFrom: from },
  ]);
  assert.equal(first.backfilled, 1);
  store.lanes.lane("hook").ack([one.id]);
  assert.equal(store.depth, 0, "the hook settled it, and it left again: a second copy in the journal");
  const second = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "hook", kind: "webhook" },
    { id: "erp", kind: "erpnext", backfillFrom: from },
  ]);
  assert.equal(second.backfilled, 1, "two journal copies, one punch back");
  store.lanes.lane("erp").ack([one.id]);
  now += 60_000;
  assert.equal(store.pruneDelivered(30_000), 1, "its id is past retention");
  const third = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "hook", kind: "webhook" },
    { id: "erp", kind: "erpnext" },
    { id: "late", kind: "mqtt", backfillFrom: from },
  ]);
  assert.equal(third.backfilled, 0, "its body went with its id");
  store.close();
});

test("a store whose delivered ids held their bodies (schema 3) moves them to the journal and still backfills", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "s.db");
  const old = new DatabaseSync(path);
  for (const sql of MIGRATIONS.slice(0, 3)) old.exec(sql);
  old.exec("PRAGMA user_version = 3");
  const kept = punch("1", 10);
  old
    .prepare("INSERT INTO delivered (id, at, body, source_id) VALUES (?, ?, ?, ?)")
    .run(kept.id, Date.now(), JSON.stringify(kept), "src");
  old.prepare("INSERT INTO delivered (id, at) VALUES (?, ?)").run("bare-id", Date.now());
  old.prepare("INSERT INTO sinks (id, kind, from_seq, added_at) VALUES ('cloud', 'cams-cloud', 0, 0)").run();
  old.close();
  const store = Store.open(path);
  assert.equal(store.schemaVersion, MIGRATIONS.length);
  const change = store.lanes.sync([
    { id: "cloud", kind: "cams-cloud" },
    { id: "late", kind: "webhook", backfillFrom: Date.parse("2026-11-26T08:00:00+03:00") },
  ]);
  assert.equal(change.backfilled, 1);
  const back = store.lanes.lane("late").peek(10);
  assert.deepEqual(ids(back), [kept.id]);
  assert.equal(back[0]?.sourceId, "src");
  assert.equal(store.emit("src", [kept], null).enqueued, 0, "in the outbox again for the late sink, not twice");
  store.close();
});
