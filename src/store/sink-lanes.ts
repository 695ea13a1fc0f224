import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { CursorValue, OutboxEntry } from "./store-types.ts";

/*
 * Several sinks drain one outbox (DESIGN.md invariant 2, per sink): a punch leaves the outbox only when every sink
 * has settled it, delivered or quarantined. Until then, each sink that has settled it has a row in sink_done. A sink
 * only wants rows after its from_seq: the outbox's newest row when it was added (0 for the sinks of a store that
 * never had one, so the first start after the upgrade delivers the whole backlog as before).
 */

/** What the store lends its lanes: its connection, its one transaction helper, its clock and its depth. */
export interface LaneStore {
  readonly db: DatabaseSync;
  transaction<T>(fn: () => T): T;
  now(): number;
  /**
   * Inside the caller's transaction: these ids are settled for every sink, so they leave the outbox and are
   * remembered as delivered (their bodies in the journal). Returns how many left.
   */
  releaseRows(ids: readonly string[]): number;
  /** After a commit: the outbox grew or shrank by `delta` rows. */
  depthChanged(delta: number): void;
  /** Rows in the outbox. */
  depth(): number;
}

/** One sink as the config names it. */
export interface SinkRegistration {
  readonly id: string;
  readonly kind: string;
  /** Epoch ms: a sink added now also gets every punch from this time on the store still holds. */
  readonly backfillFrom?: number | undefined;
}

export interface LanesChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Rows that left the outbox because the sinks that still wanted them were removed. */
  readonly released: number;
  /** Punches put back in the outbox for a new sink's backfill. */
  readonly backfilled: number;
}

export interface SinkRejectionInput {
  readonly id: string;
  readonly reason: string;
}

/** The outbox as one sink sees it: only the punches it still has to settle, in outbox order. */
export interface SinkLane {
  readonly sinkId: string;
  peek(limit: number, afterSeq?: number): OutboxEntry[];
  ack(ids: readonly string[]): void;
  quarantineOutbox(rejections: readonly SinkRejectionInput[]): void;
  recordAttempt(ids: readonly string[]): void;
  /** Punches this sink has still to settle. */
  backlog(): number;
  memoryGet(key: string): CursorValue | undefined;
  memoryPut(key: string, value: CursorValue): void;
}

interface Registered {
  readonly id: string;
  kind: string;
  fromSeq: number;
}

interface Row {
  seq: number;
  id: string;
  source_id: string;
  body: string;
  enqueued_at: number;
  attempts: number;
}

export class SinkLanes {
  readonly #s: LaneStore;
  readonly #q: ReturnType<typeof prepare>;
  readonly #sinks = new Map<string, Registered>();
  readonly #lanes = new Map<string, Lane>();

  constructor(store: LaneStore) {
    this.#s = store;
    this.#q = prepare(store.db);
    for (const r of this.#q.sinks.all() as Array<{ id: string; kind: string; from_seq: number }>)
      this.#sinks.set(r.id, { id: r.id, kind: r.kind, fromSeq: r.from_seq });
  }

  /** The sinks registered now, with the outbox row each starts after. */
  registered(): ReadonlyArray<{ readonly id: string; readonly kind: string; readonly fromSeq: number }> {
    return [...this.#sinks.values()].map((r) => ({ ...r }));
  }

  /**
   * Makes the registered sinks those of the config, in one transaction: a new sink starts after the newest row (or
   * backfills), a removed one forgets its state, and rows no remaining sink still wants leave the outbox. A sink
   * whose kind changed under the same id keeps its place.
   */
  sync(wanted: readonly SinkRegistration[]): LanesChange {
    const q = this.#q;
    const now = this.#s.now();
    const change = this.#s.transaction(() => {
      const first = this.#sinks.size === 0;
      const newest = (q.newest.get() as { seq: number }).seq;
      const added: string[] = [];
      const backfills: SinkRegistration[] = [];
      const keep = new Set(wanted.map((w) => w.id));
      const removed = [...this.#sinks.keys()].filter((id) => !keep.has(id));
      for (const id of removed) {
        q.dropSink.run(id);
        q.dropDone.run(id);
        q.dropMemory.run(id);
      }
      for (const w of wanted) {
        const known = this.#sinks.get(w.id);
        if (known) {
          if (known.kind !== w.kind) q.setKind.run(w.kind, w.id);
          continue;
        }
        const fromSeq = first || w.backfillFrom !== undefined ? 0 : newest;
        q.addSink.run(w.id, w.kind, fromSeq, now);
        added.push(w.id);
        if (w.backfillFrom !== undefined) backfills.push(w);
      }
      return { added, removed, backfills };
    });
    this.#reload();
    for (const id of change.removed) this.#lanes.delete(id);
    let backfilled = 0;
    for (const b of change.backfills) backfilled += this.#backfill(b.id, b.backfillFrom as number);
    const released = change.removed.length > 0 ? this.#sweep() : 0;
    return { added: change.added, removed: change.removed, released, backfilled };
  }

  lane(sinkId: string): SinkLane {
    if (!this.#sinks.has(sinkId)) throw new TypeError(`Sink "${sinkId}" is not registered; sync() it first.`);
    let lane = this.#lanes.get(sinkId);
    if (!lane) {
      lane = new Lane(sinkId, this);
      this.#lanes.set(sinkId, lane);
    }
    return lane;
  }

  #reload(): void {
    this.#sinks.clear();
    for (const r of this.#q.sinks.all() as Array<{ id: string; kind: string; from_seq: number }>)
      this.#sinks.set(r.id, { id: r.id, kind: r.kind, fromSeq: r.from_seq });
  }

  /**
   * A new sink's backfill: rows in the outbox older than `from` are marked settled for it, and punches from `from`
   * on that every sink had already settled come back from the delivered journal (kept as long as delivered ids are),
   * settled for every other sink.
   */
  #backfill(sinkId: string, from: number): number {
    const q = this.#q;
    const others = [...this.#sinks.values()].filter((s) => s.id !== sinkId);
    const now = this.#s.now();
    const restored = this.#s.transaction(() => {
      for (const r of q.allOutbox.iterate() as Iterable<{ seq: number; body: string }>)
        if (punchTime(r.body) < from) q.markDone.run(sinkId, r.seq);
      let restored = 0;
      for (const r of q.journal.iterate() as Iterable<{ id: string; body: string; source_id: string | null }>) {
        if (punchTime(r.body) < from) continue;
        const inserted = q.restore.get(r.id, r.source_id ?? "", r.body, now) as { seq: number } | undefined;
        if (!inserted) continue;
        for (const o of others) q.markDone.run(o.id, inserted.seq);
        restored++;
      }
      return restored;
    });
    this.#s.depthChanged(restored);
    return restored;
  }

  /** Rows every remaining sink has settled (or does not want) leave the outbox. */
  #sweep(): number {
    const q = this.#q;
    const sinks = [...this.#sinks.keys()];
    const released = this.#s.transaction(() => {
      const done = q.settledByAll.all() as Array<{ seq: number; id: string }>;
      for (const r of done) for (const id of sinks) q.undone.run(id, r.seq);
      return this.#s.releaseRows(done.map((r) => r.id));
    });
    this.#s.depthChanged(-released);
    return released;
  }

  // What a Lane asks of the shared state.

  /** @internal */ peek(sinkId: string, limit: number, after: number): OutboxEntry[] {
    const me = this.#sinks.get(sinkId) as Registered;
    const from = Math.max(after, me.fromSeq);
    const rows = (this.#sinks.size === 1
      ? this.#q.peekAll.all(from, limit)
      : this.#q.peekFor.all(from, sinkId, limit)) as unknown as Row[];
    return rows.map((r) => ({
      seq: r.seq,
      id: r.id,
      sourceId: r.source_id,
      body: r.body,
      enqueuedAt: r.enqueued_at,
      attempts: r.attempts,
    }));
  }

  /** @internal */ settle(sinkId: string, ids: readonly string[], rejections: readonly SinkRejectionInput[]): void {
    if (ids.length === 0 && rejections.length === 0) return;
    const q = this.#q;
    const now = this.#s.now();
    const others = [...this.#sinks.values()].filter((s) => s.id !== sinkId);
    const released = this.#s.transaction(() => {
      const release: string[] = [];
      const one = (id: string): void => {
        // Alone, the sink settles for everyone: no sink_done row to look up or write.
        if (others.length === 0) {
          release.push(id);
          return;
        }
        const row = q.seqOf.get(id) as { seq: number } | undefined;
        if (!row) return;
        if (others.every((o) => row.seq <= o.fromSeq || q.isDone.get(o.id, row.seq) !== undefined)) {
          for (const o of others) q.undone.run(o.id, row.seq);
          release.push(id);
        } else q.markDone.run(sinkId, row.seq);
      };
      for (const id of ids) one(id);
      for (const r of rejections) {
        const row = q.outboxById.get(r.id) as { source_id: string; body: string } | undefined;
        if (!row) continue;
        q.quarantine.run(row.source_id, r.id, r.reason, row.body, now, sinkId);
        one(r.id);
      }
      return this.#s.releaseRows(release);
    });
    this.#s.depthChanged(-released);
  }

  /** @internal */ backlog(sinkId: string): number {
    const me = this.#sinks.get(sinkId);
    if (!me) return 0;
    if (this.#sinks.size === 1 && me.fromSeq === 0) return this.#s.depth();
    const after = (this.#q.countAfter.get(me.fromSeq) as { n: number }).n;
    const done = (this.#q.countDone.get(sinkId) as { n: number }).n;
    return Math.max(0, after - done);
  }

  /** @internal */ memoryGet(sinkId: string, key: string): CursorValue | undefined {
    const row = this.#q.memoryGet.get(sinkId, key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as CursorValue) : undefined;
  }

  /** @internal */ memoryPut(sinkId: string, key: string, value: CursorValue): void {
    const now = this.#s.now();
    this.#s.transaction(() => this.#q.memoryPut.run(sinkId, key, JSON.stringify(value), now));
  }

  /** @internal */ attempt(ids: readonly string[]): void {
    this.#s.transaction(() => {
      for (const id of ids) this.#q.attempt.run(id);
    });
  }
}

class Lane implements SinkLane {
  readonly sinkId: string;
  readonly #lanes: SinkLanes;
  /**
   * Every row at or below this is settled for this sink: a sink far ahead of a slow one would otherwise step over
   * its own settled rows on every read from the start. In memory only; a restart reads past them once.
   */
  #floor = 0;

  constructor(sinkId: string, lanes: SinkLanes) {
    this.sinkId = sinkId;
    this.#lanes = lanes;
  }

  peek(limit: number, afterSeq = 0): OutboxEntry[] {
    const after = Math.max(afterSeq, this.#floor);
    const rows = this.#lanes.peek(this.sinkId, limit, after);
    if (after === this.#floor && rows[0]) this.#floor = rows[0].seq - 1;
    return rows;
  }

  ack(ids: readonly string[]): void {
    this.#lanes.settle(this.sinkId, ids, []);
  }

  quarantineOutbox(rejections: readonly SinkRejectionInput[]): void {
    this.#lanes.settle(this.sinkId, [], rejections);
  }

  recordAttempt(ids: readonly string[]): void {
    if (ids.length > 0) this.#lanes.attempt(ids);
  }

  backlog(): number {
    return this.#lanes.backlog(this.sinkId);
  }

  memoryGet(key: string): CursorValue | undefined {
    return this.#lanes.memoryGet(this.sinkId, key);
  }

  memoryPut(key: string, value: CursorValue): void {
    this.#lanes.memoryPut(this.sinkId, key, value);
  }
}

/** The punch's own time (ISO with its offset) as epoch ms; a body without one sorts first. */
function punchTime(body: string): number {
  try {
    const t = Date.parse((JSON.parse(body) as { time?: string }).time ?? "");
    return Number.isFinite(t) ? t : Number.NEGATIVE_INFINITY;
  } catch {
    return Number.NEGATIVE_INFINITY;
  }
}

function prepare(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    sinks: p("SELECT id, kind, from_seq FROM sinks ORDER BY added_at, id"),
    newest: p("SELECT coalesce(max(seq), 0) AS seq FROM outbox"),
    addSink: p("INSERT INTO sinks (id, kind, from_seq, added_at) VALUES (?, ?, ?, ?)"),
    setKind: p("UPDATE sinks SET kind = ? WHERE id = ?"),
    dropSink: p("DELETE FROM sinks WHERE id = ?"),
    dropDone: p("DELETE FROM sink_done WHERE sink_id = ?"),
    dropMemory: p("DELETE FROM sink_memory WHERE sink_id = ?"),
    peekAll: p("SELECT seq, id, source_id, body, enqueued_at, attempts FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"),
    peekFor: p(
      "SELECT seq, id, source_id, body, enqueued_at, attempts FROM outbox o WHERE seq > ? AND NOT EXISTS (SELECT 1 FROM sink_done d WHERE d.sink_id = ? AND d.seq = o.seq) ORDER BY seq LIMIT ?",
    ),
    seqOf: p("SELECT seq FROM outbox WHERE id = ?"),
    outboxById: p("SELECT source_id, body FROM outbox WHERE id = ?"),
    isDone: p("SELECT 1 FROM sink_done WHERE sink_id = ? AND seq = ?"),
    markDone: p("INSERT INTO sink_done (sink_id, seq) VALUES (?, ?) ON CONFLICT DO NOTHING"),
    undone: p("DELETE FROM sink_done WHERE sink_id = ? AND seq = ?"),
    quarantine: p(
      "INSERT INTO quarantine (source_id, punch_id, stage, reason, payload, at, sink_id) VALUES (?, ?, 'sink', ?, ?, ?, ?)",
    ),
    settledByAll: p(
      "SELECT o.seq, o.id FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM sinks s WHERE o.seq > s.from_seq AND NOT EXISTS (SELECT 1 FROM sink_done d WHERE d.sink_id = s.id AND d.seq = o.seq))",
    ),
    countAfter: p("SELECT count(*) AS n FROM outbox WHERE seq > ?"),
    countDone: p("SELECT count(*) AS n FROM sink_done WHERE sink_id = ?"),
    allOutbox: p("SELECT seq, body FROM outbox ORDER BY seq"),
    journal: p(
      "SELECT p.value ->> 0 AS id, p.value ->> 1 AS source_id, p.value ->> 2 AS body FROM journal j, json_each(j.punches) p ORDER BY j.seq, p.key",
    ),
    // A punch delivered twice (a backfill, then settled again) is in the journal twice, and comes back once.
    restore: p(
      "INSERT INTO outbox (id, source_id, body, enqueued_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO NOTHING RETURNING seq",
    ),
    attempt: p("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?"),
    memoryGet: p("SELECT value FROM sink_memory WHERE sink_id = ? AND key = ?"),
    memoryPut: p(
      "INSERT INTO sink_memory (sink_id, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(sink_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    ),
  };
}
