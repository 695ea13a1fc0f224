import { createHash } from "node:crypto";
import type { Punch } from "../../core/punch.ts";
import type { CursorUpdate, CursorValue, QuarantineInput } from "../../store/store.ts";
import type { SourceContext } from "../source.ts";
import {
  type DatabaseReader,
  isRowProblem,
  type Lookups,
  type ResolvedTable,
  type RowProblem,
} from "./database-reader.ts";
import type { SqlRow } from "./sql-client.ts";

/** Side tables (devices, users) are re-read this often, or at once when a row names an unknown key. */
const LOOKUP_REFRESH_MS = 60_000;

/** Punches and quarantine entries gathered for one commit. */
export interface RowBatch {
  readonly punches: Punch[];
  readonly quarantined: QuarantineInput[];
}

/** Rows counted ahead and read since, for the tables counted in this poll. */
export interface Backfill {
  readonly counted: Set<string>;
  total: number;
  done: number;
}

/**
 * What a source's run shares with its cursor type, poll after poll: the reader, the committed device cursors, the
 * lookups (kept fresh), and this poll's backlog count. Rows become punches here, and commits go out from here, the
 * same way whichever cursor type read them.
 */
export class PollRun {
  readonly reader: DatabaseReader;
  readonly ctx: SourceContext;
  /** Committed device cursors by key; updated after each commit that moves them. */
  readonly cursors: Map<string, CursorValue>;
  backfill: Backfill = { counted: new Set(), total: 0, done: 0 };
  #lookups: Lookups = { devices: new Map(), users: undefined };
  /** A row named a user the lookup lacks: refresh before the next poll. */
  #lookupMiss = false;
  #lookupsAt = Number.NEGATIVE_INFINITY;
  /** Device numbers still unknown right after a refresh: their fallback serial stands until the periodic refresh. */
  readonly #missingDevices = new Set<string>();

  constructor(reader: DatabaseReader, ctx: SourceContext, cursors: Map<string, CursorValue>) {
    this.reader = reader;
    this.ctx = ctx;
    this.cursors = cursors;
  }

  /** A new poll started at `now`: lookups refreshed when due, the backlog count started afresh. */
  async begin(now: number): Promise<void> {
    if (this.#lookupMiss || now - this.#lookupsAt >= LOOKUP_REFRESH_MS) {
      await this.#refresh();
      this.#lookupsAt = now;
      this.#lookupMiss = false;
      this.#missingDevices.clear();
    }
    this.backfill = { counted: new Set(), total: 0, done: 0 };
  }

  async #refresh(): Promise<void> {
    this.#lookups = await this.reader.lookups();
  }

  /**
   * Rows of one partition as punches into `batch`; rows that cannot be one are quarantined when `quarantineIf`
   * says so (a bad row re-read in a lookback window was quarantined before).
   */
  async add(
    t: ResolvedTable,
    rows: readonly SqlRow[],
    partition: string,
    collectedAt: string,
    batch: RowBatch,
    quarantineIf: (row: SqlRow) => boolean = () => true,
  ): Promise<void> {
    // A device registered since the last refresh (with its first punches): read the lookup again before any punch
    // goes out under a made-up serial, which would then stay in the cloud for good.
    if (!this.#missingDevices.has(partition) && this.reader.needsDeviceLookup(t, rows, partition, this.#lookups)) {
      await this.#refresh();
      if (!this.#lookups.devices.has(partition)) this.#missingDevices.add(partition);
    }
    for (const row of rows) {
      const result = this.reader.toPunch(t, row, partition, this.#lookups, collectedAt);
      if (isRowProblem(result)) {
        if (this.reader.plan.users && / has no /.test(result.reason)) this.#lookupMiss = true;
        if (quarantineIf(row)) this.quarantine(t, row, result, batch);
      } else batch.punches.push(result);
    }
  }

  /** A row into quarantine, keyed so that the same row read again is quarantined once. */
  quarantine(t: ResolvedTable, row: SqlRow, problem: RowProblem, batch: RowBatch): void {
    batch.quarantined.push({ ...problem, payload: plainRow(row), rowKey: rowKey(t.name, row) });
  }

  /** The batch and the cursors it moves, in one transaction; then the cursors are the committed ones. */
  async commit(batch: RowBatch, update: CursorUpdate): Promise<void> {
    await this.ctx.emit(batch.punches, update, batch.quarantined);
    for (const [key, value] of Object.entries(update)) if (!key.startsWith("#")) this.cursors.set(key, value);
    const last = batch.punches.at(-1);
    if (last) this.ctx.progress({ lastPunchTime: last.time });
  }

  /** Rows read from a table whose backlog was counted in this poll: status shows how far the catch-up is. */
  read(t: ResolvedTable, rows: number): void {
    const b = this.backfill;
    if (!b.counted.has(t.logical)) return;
    b.done += rows;
    this.ctx.progress({ backlog: { done: b.done, total: Math.max(b.done, b.total) } });
  }
}

/** The quarantine key of a source row: the same row read again (lookback, a bad id) is quarantined once. */
function rowKey(table: string, row: Readonly<Record<string, unknown>>): string {
  return createHash("sha256")
    .update(`${table}\u001f${JSON.stringify(plainRow(row))}`)
    .digest("hex")
    .slice(0, 32);
}

/** Quarantine payloads are JSON: Dates and bigints as text. */
function plainRow(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = v instanceof Date ? v.toISOString() : typeof v === "bigint" ? v.toString() : v;
  }
  return out;
}
