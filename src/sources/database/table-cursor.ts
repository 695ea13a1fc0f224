import type { CursorValue } from "../../store/store.ts";
import type { LateRows } from "../source.ts";
import type { ResolvedTable } from "./database-reader.ts";
import type { PollRun } from "./poll-run.ts";

/** "stopped": the signal ended the read mid-way; the run ends without reporting the poll. */
export type ReadOutcome = "read" | "stopped";

/**
 * How a source keeps its place in a table: an id cursor (IdCursor) or a time cursor (TimeCursor), chosen once per
 * run from the read plan. The source hands it each table to read and shows its status. Device cursors (one value per partition key) are stored as plain numbers or time values;
 * whatever else a cursor type keeps beside them is under '#' keys of its own.
 */
export interface TableCursor {
  /** The state committed beside the device cursors ('#' keys), from the store at start. */
  restore(stored: ReadonlyMap<string, CursorValue>): void;
  /** A poll starts at `now`, before its first table. */
  begin(now: number): void;
  /** One poll of one table: the new rows, each page committed with the cursors it moves. */
  read(t: ResolvedTable, run: PollRun): Promise<ReadOutcome>;
  /** What status shows of it after a poll. */
  status(): { readonly lateRows?: LateRows };
}
