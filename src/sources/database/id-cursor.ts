import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { formatDuration } from "../../core/duration.ts";
import { BioError } from "../../core/errors.ts";
import type { CursorValue } from "../../store/store.ts";
import type { LateRows } from "../source.ts";
import { NUMERIC_TYPE } from "./column-types.ts";
import { cursorKey, ownKey } from "./cursor-key.ts";
import type { ResolvedTable, RowProblem } from "./database-reader.ts";
import { describeGaps, emptySweep, type Gap, GapBook, sweepFromCursor } from "./gap-book.ts";
import type { PollRun, RowBatch } from "./poll-run.ts";
import { textOf } from "./presets.ts";
import type { SqlRow } from "./sql-client.ts";
import type { ReadOutcome, TableCursor } from "./table-cursor.ts";

/** Cursor keys of a table's sweep state: `#ids:<table>` ('#' never occurs in a serial; status skips these). */
const SWEEP_KEY_PREFIX = "#ids:";

function sweepKey(t: ResolvedTable): string {
  return `${SWEEP_KEY_PREFIX}${t.logical}`;
}

/**
 * Id cursors: the last row id per partition, and per table a sweep state (GapBook) under `#ids:<table>`. The table
 * is read once per poll, above its high-water mark, whatever the number of devices; the ids missing below the mark
 * are tracked until they appear or outlive `lateRowWindowMs`: a row that commits out of id order is collected by
 * time, not by a row count.
 */
export class IdCursor implements TableCursor {
  readonly #column: string;
  readonly #config: DatabaseSourceConfig;
  /** Sweep state per table (logical name). */
  readonly #books = new Map<string, GapBook>();

  constructor(column: string, config: DatabaseSourceConfig) {
    this.#column = column;
    this.#config = config;
  }

  restore(stored: ReadonlyMap<string, CursorValue>): void {
    for (const [key, value] of stored) {
      if (!key.startsWith(SWEEP_KEY_PREFIX)) continue;
      const state = sweepFromCursor(value);
      if (state) this.#books.set(key.slice(SWEEP_KEY_PREFIX.length), new GapBook(state));
    }
  }

  begin(): void {}

  async read(t: ResolvedTable, run: PollRun): Promise<ReadOutcome> {
    const book = this.#books.get(t.logical) ?? (await this.#upgrade(t, run));
    this.#books.set(t.logical, book);
    await this.#sweep(t, book, run);
    return "read";
  }

  /** Late-row bookkeeping over all of a source's tables. */
  status(): { readonly lateRows: LateRows } {
    let open = 0;
    let expired = 0;
    let last: number | null = null;
    for (const b of this.#books.values()) {
      open += b.openIds;
      expired += b.expired;
      if (b.lastExpiredAt !== null && (last === null || b.lastExpiredAt > last)) last = b.lastExpiredAt;
    }
    return {
      lateRows: {
        openIds: open,
        expiredIds: expired,
        lastExpiredAt: last === null ? null : new Date(last).toISOString(),
      },
    };
  }

  /**
   * One table, one poll: the rows above the table's high-water mark in keyset pages (split by device in memory, each
   * page committed with the device cursors it moves and the sweep state), then one query for the ids still missing
   * below the mark, then the gaps older than the late-row window given up. An idle poll is two or three small
   * indexed queries, whatever the number of devices; a device that stopped punching costs nothing.
   */
  async #sweep(t: ResolvedTable, book: GapBook, run: PollRun): Promise<void> {
    const { reader, ctx } = run;
    const batch = this.#config.batchSize;
    book.tick();
    for (let page = 0; ; page++) {
      // Every page, not only every poll: a large backlog pauses mid-way when the cloud goes or the outbox fills.
      await ctx.waitUntilActive();
      const from = book.high;
      const { rows, ids, full } = await reader.sweep(t, from, batch);
      if (ids.length === 0 && rows.length === 0) {
        if (page > 0 || from === 0) break;
        // Nothing above the mark: if the newest row is below it, the table was restored, truncated or renumbered.
        // Start again from 0 rather than wait forever for ids that will never come.
        const max = await reader.maxId(t);
        if (max >= from) break;
        ctx.logger.warn("Row ids went backwards in the table; reading it again from the start.", {
          table: t.name,
          high: from,
          max,
        });
        book.rebase(0);
        const update: Record<string, CursorValue> = { [sweepKey(t)]: book.toCursor() };
        for (const key of run.cursors.keys()) if (ownKey(reader, t.logical, key)) update[key] = 0;
        await ctx.emit([], update);
        for (const key of Object.keys(update)) if (run.cursors.has(key)) run.cursors.set(key, 0);
        continue;
      }
      if (page === 0 && full && !run.backfill.counted.has(t.logical)) {
        run.backfill.counted.add(t.logical);
        run.backfill.total += await reader.countAbove(t, from);
      }
      const dropped = book.advance(ids, ctx.clock.now());
      if (dropped.length > 0) this.#reportGivenUp(t, dropped, "more gaps than can be tracked", run);
      await this.#commit(t, rows, book, run, true);
      run.read(t, rows.length);
      if (!full) break;
      if (!(book.high > from)) {
        throw new BioError("DB_SCHEMA", `Paging by "${t.col(this.#column)}" does not advance in "${t.name}".`, {
          hint: "The id column must be unique per row and sortable as a number.",
        });
      }
    }
    const due = book.due();
    if (due.length > 0) {
      const { rows, found } = await reader.gapRows(t, due);
      if (found.length > 0) {
        book.found(found);
        ctx.logger.info("Rows committed late (below ids already read) were found and read.", {
          table: t.name,
          rows: found.length,
        });
        await this.#commit(t, rows, book, run, false);
      }
    }
    const expired = book.expire(ctx.clock.now(), this.#config.lateRowWindowMs, this.#config.pollIntervalMs);
    if (expired.length > 0) {
      this.#reportGivenUp(t, expired, `not there after ${formatDuration(this.#config.lateRowWindowMs)}`, run);
      await ctx.emit([], { [sweepKey(t)]: book.toCursor() });
    }
  }

  #reportGivenUp(t: ResolvedTable, gaps: readonly Gap[], why: string, run: PollRun): void {
    let ids = 0;
    for (const g of gaps) ids += g.hi - g.lo + 1;
    run.ctx.logger.warn(
      `${ids} row id(s) of ${t.name} below ids already read never appeared (${why}): ${describeGaps(gaps)}. A rolled-back insert leaves such a gap, and so does a sequence that skips; but a row committed later than lateRowWindowMs would not be read. If your software commits punches that late (long imports), raise lateRowWindowMs.`,
      { table: t.name, ids, ranges: gaps.length },
    );
  }

  /**
   * One committed step of a sweep: the rows as punches (or quarantined), the device cursors they move, and the
   * sweep state (none while an upgrade catches devices up: a crash then must start the upgrade again), in one
   * transaction. `onlyNew`: rows at or below their device's cursor were read before (the
   * migration window of an upgrade); a row found in a gap is new whatever its device's cursor says.
   */
  async #commit(
    t: ResolvedTable,
    rows: readonly SqlRow[],
    book: GapBook | undefined,
    run: PollRun,
    onlyNew: boolean,
  ): Promise<void> {
    const { reader, ctx } = run;
    const idColumn = t.col(this.#column);
    const partitionColumn = t.col(reader.plan.partition);
    const configured = this.#config.devices ? new Set(this.#config.devices) : undefined;
    const groups = new Map<string, SqlRow[]>();
    const batch: RowBatch = { punches: [], quarantined: [] };
    for (const row of rows) {
      // A bad id cannot be compared with a cursor, nor move one: the row is quarantined (once, by its key) and the
      // good rows around it go on.
      const badId = this.#badId(t, row);
      if (badId) {
        run.quarantine(t, row, badId, batch);
        continue;
      }
      const partition = textOf(row[partitionColumn]);
      // No serial: counted and warned about at start. Not listed: another connector's device.
      if (partition === undefined || (configured && !configured.has(partition))) continue;
      const group = groups.get(partition) ?? [];
      group.push(row);
      groups.set(partition, group);
    }
    const update: Record<string, CursorValue> = {};
    const collectedAt = new Date(ctx.clock.now()).toISOString();
    for (const [partition, group] of groups) {
      const key = cursorKey(reader, t.logical, partition);
      const cursor = run.cursors.get(key);
      const fresh = onlyNew && cursor !== undefined ? group.filter((r) => Number(r[idColumn]) > Number(cursor)) : group;
      if (fresh.length === 0) continue;
      await run.add(t, fresh, partition, collectedAt, batch);
      let high = cursor === undefined ? undefined : Number(cursor);
      for (const row of fresh) {
        const id = Number(row[idColumn]);
        if (high === undefined || id > high) high = id;
      }
      if (high !== undefined && high !== cursor) update[key] = high;
    }
    if (book) update[sweepKey(t)] = book.toCursor();
    await run.commit(batch, update);
  }

  /**
   * The first poll of a table without sweep state: a new source (everything is read, from id 0), or one that kept a
   * cursor per device before table-wide reads. Those devices are caught up once, each from its own cursor, up to the
   * highest cursor lowered by `lookbackRows`; the sweep starts there, and the rows between it and each device's
   * cursor are re-read and dropped in memory. Old gaps below that point cannot be known any more.
   */
  async #upgrade(t: ResolvedTable, run: PollRun): Promise<GapBook> {
    const { reader, ctx, cursors } = run;
    let top = 0;
    for (const [key, value] of cursors) if (ownKey(reader, t.logical, key)) top = Math.max(top, Number(value) || 0);
    const start = Math.max(0, top - this.#config.lookbackRows);
    const book = new GapBook(emptySweep(start));
    if (start > 0) {
      const configured = this.#config.devices;
      const partitions = configured ?? (await reader.partitions(t));
      const idColumn = t.col(this.#column);
      let caughtUp = 0;
      for (const partition of partitions) {
        if (ctx.signal.aborted) break;
        const key = cursorKey(reader, t.logical, partition);
        let from = Number(cursors.get(key) ?? 0);
        if (from >= start) continue;
        caughtUp++;
        for (;;) {
          await ctx.waitUntilActive();
          const rows = await reader.page(t, partition, [{ column: idColumn, op: "gt", value: from }]);
          const below = rows.filter((r) => Number(r[idColumn]) <= start);
          if (below.length > 0) await this.#commit(t, below, undefined, run, true);
          const next = Math.max(from, ...below.map((r) => Number(r[idColumn])).filter(Number.isSafeInteger));
          if (rows.length < this.#config.batchSize || below.length < rows.length || !(next > from)) break;
          from = next;
        }
      }
      ctx.logger.info("This table is now read once per poll for all devices, not once per device.", {
        table: t.name,
        from: start,
        devicesCaughtUp: caughtUp,
      });
    }
    await ctx.emit([], { [sweepKey(t)]: book.toCursor() });
    return book;
  }

  /** Why the row's id cannot be a cursor (2.5, 'abc' in a SQLite INTEGER column), or undefined when it can. */
  #badId(t: ResolvedTable, row: SqlRow): RowProblem | undefined {
    const column = t.col(this.#column);
    const raw = row[column];
    if (Number.isSafeInteger(Number(raw)) && raw !== null && raw !== "") return undefined;
    // A column declared as text is the schema's fault, not one row's: every row would go to quarantine.
    const type = t.info.columns.find((c) => c.name === column)?.type.toLowerCase() ?? "";
    if (type !== "" && !NUMERIC_TYPE.test(type) && !Number.isSafeInteger(Number(raw))) {
      throw new BioError(
        "DB_SCHEMA",
        `Column "${column}" of "${t.name}" holds ${JSON.stringify(raw)}, not an integer.`,
        {
          hint: "The id column must be an integer that grows with every new row (identity / autoincrement); without one, leave columns.id out and the time column becomes the cursor.",
        },
      );
    }
    return {
      kind: `${column} is not an integer`,
      reason: `${column} is not an integer: ${JSON.stringify(raw)?.slice(0, 60)}`,
    };
  }
}
