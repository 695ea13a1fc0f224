import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { toLocal } from "../../core/local-time.ts";
import type { Condition } from "./select-spec.ts";

/** A small side table mapped key → value (device number → serial, internal user id → badge number). */
export interface Lookup {
  readonly table: string;
  readonly key: string;
  readonly value: string;
  /** Set when real installs lack the value column (why, for the warning): then the lookup is empty, not an error. */
  readonly valueMayBeMissing?: string;
}

/** A column a cursor reads, with the role a schema error names it by. */
export interface CursorColumn {
  readonly role: string;
  readonly name: string;
}

export type CursorPlan =
  /** Last id per partition; `lookbackRows` ids below it re-read every poll. */
  (
    | { readonly kind: "id"; readonly column: string }
    /** Newest time per partition; `lookbackMs` below it re-read every poll; pages keyed on (column, ...tiebreak). */
    | {
        readonly kind: "time";
        readonly column: string;
        readonly tiebreak: readonly string[];
        readonly lookbackMs: number;
      }
  ) & {
    /** The cursor column first, then its tie-breaks: the order pages are read in. */
    readonly columns: readonly CursorColumn[];
  };

function idCursor(column: string): CursorPlan {
  return { kind: "id", column, columns: [{ role: "id", name: column }] };
}

function timeCursor(column: string, tiebreak: readonly string[], lookbackMs: number): CursorPlan {
  const columns = [{ role: "cursor", name: column }, ...tiebreak.map((name) => ({ role: "tie-break", name }))];
  return { kind: "time", column, tiebreak, lookbackMs, columns };
}

/**
 * How one vendor schema is read, in logical column names (matched case-insensitively against the database).
 * The cursor is kept per value of `partition` — the device serial, or the vendor's internal device number.
 */
export interface ReadPlan {
  readonly preset: DatabaseSourceConfig["preset"];
  /**
   * Tables to read at `nowMs`, given the keys of the committed cursors (eTimeTrackLite: every month from the oldest
   * one with a cursor, at most 12 back, and at least the previous one, up to the current month).
   */
  tables(nowMs: number, cursorKeys?: Iterable<string>): string[];
  /** A missing table is normal (next month's table appears only when its first punch is downloaded). */
  readonly tablesMayBeMissing: boolean;
  readonly partition: string;
  readonly cursor: CursorPlan;
  readonly user: string;
  readonly time: string;
  readonly state?: string;
  readonly verify?: string;
  readonly workCode?: string;
  /** A column holding the serial on the row itself, preferred over the device lookup (att2000 `sn`). */
  readonly rowSerial?: string;
  readonly filter: readonly Condition[];
  readonly devices?: Lookup;
  readonly users?: Lookup;
  /** Raw state value → state code; undefined: not a state this preset knows (the row is quarantined). */
  stateCode(raw: unknown): number | undefined;
  /** The serial a punch carries, from the partition value and the lookups. */
  serial(partition: string, row: Readonly<Record<string, unknown>>, devices: ReadonlyMap<string, string>): string;
  /**
   * The index each poll needs: its leading columns. An id cursor reads the table by id alone (one keyset query
   * above the high-water mark, and the open gaps), so its index is the id's, usually the primary key.
   */
  readonly index: readonly string[];
}

function numericState(raw: unknown): number | undefined {
  if (raw === null || raw === undefined || raw === "") return 0;
  const n = Number(raw);
  return Number.isInteger(n) ? n : undefined;
}

/** ZKTime 5 CHECKTYPE letters → the terminal's state codes. [verify on a real install: '0'/'1' break codes] */
const ATT2000_CHECKTYPE: Readonly<Record<string, number>> = {
  I: 0,
  O: 1,
  "0": 2,
  "1": 3,
  i: 4,
  o: 5,
};

const DAY = 24 * 3600_000;

export interface Month {
  readonly year: number;
  /** 1–12 */
  readonly month: number;
}

/** How far back month tables are scanned after downtime (and for late downloads into old months). */
export const ETIMETRACK_MAX_MONTHS_BACK = 12;

/**
 * `DeviceLogs_<M>_<YYYY>` from `oldest` (the oldest month with a committed cursor; at most 12 months back; at least
 * the month before) up to the month of `nowMs` in `timeZone`. After downtime across several month boundaries, the
 * months in between are read too; a device that hands over old punches late writes them into their own month.
 */
export function eTimeTrackTables(nowMs: number, timeZone: string, oldest?: Month): string[] {
  const [y, m] = toLocal(nowMs, timeZone).split("-").map(Number) as [number, number];
  const current = y * 12 + (m - 1);
  let from = current - 1;
  if (oldest)
    from = Math.min(from, Math.max(oldest.year * 12 + (oldest.month - 1), current - ETIMETRACK_MAX_MONTHS_BACK));
  const out: string[] = [];
  for (let i = from; i <= current; i++) out.push(`DeviceLogs_${(i % 12) + 1}_${Math.floor(i / 12)}`);
  return out;
}

const MONTH_KEY = /^DeviceLogs_(\d{1,2})_(\d{4}):/;

/** The oldest month among eTimeTrackLite cursor keys (`DeviceLogs_<M>_<YYYY>:<DeviceId>`). */
export function oldestCursorMonth(keys: Iterable<string>): Month | undefined {
  let oldest: Month | undefined;
  for (const key of keys) {
    const m = MONTH_KEY.exec(key);
    if (!m) continue;
    const month = { year: Number(m[2]), month: Number(m[1]) };
    if (month.month < 1 || month.month > 12) continue;
    if (!oldest || month.year * 12 + month.month < oldest.year * 12 + oldest.month) oldest = month;
  }
  return oldest;
}

export function readPlan(config: DatabaseSourceConfig): ReadPlan {
  const filter = config.filter as readonly Condition[];
  const lookback = (fallback: number) => config.lookbackMs ?? fallback;
  switch (config.preset) {
    case "biotime": {
      const table = config.table ?? "iclock_transaction";
      return {
        preset: "biotime",
        tables: () => [table],
        tablesMayBeMissing: false,
        partition: "terminal_sn",
        cursor: idCursor("id"),
        user: "emp_code",
        time: "punch_time",
        state: "punch_state",
        verify: "verify_type",
        workCode: "work_code",
        filter,
        stateCode: numericState,
        serial: (p) => p,
        index: ["id"],
      };
    }
    case "att2000":
      return {
        preset: "att2000",
        tables: () => [config.table ?? "CHECKINOUT"],
        tablesMayBeMissing: false,
        // sn is often NULL (older downloads, USB imports); SENSORID, the machine number, is always there.
        partition: "SENSORID",
        cursor: timeCursor("CHECKTIME", ["USERID"], lookback(3 * DAY)),
        user: "USERID",
        time: "CHECKTIME",
        state: "CHECKTYPE",
        verify: "VERIFYCODE",
        workCode: "WorkCode",
        rowSerial: "sn",
        filter,
        devices: {
          table: "Machines",
          key: "MachineNumber",
          value: "sn",
          valueMayBeMissing: "older ZKTime versions keep no serial in Machines",
        },
        users: { table: "USERINFO", key: "USERID", value: "Badgenumber" },
        stateCode: (raw) => (raw === null || raw === undefined ? 0 : ATT2000_CHECKTYPE[String(raw).trim()]),
        serial: (p, row, devices) => textOf(row.sn) ?? devices.get(p) ?? `machine-${p}`,
        index: ["SENSORID", "CHECKTIME"],
      };
    case "etimetracklite":
      return {
        preset: "etimetracklite",
        tables: (now, keys) => eTimeTrackTables(now, config.timezone, keys ? oldestCursorMonth(keys) : undefined),
        tablesMayBeMissing: true,
        partition: "DeviceId",
        cursor: idCursor("DeviceLogId"),
        user: "UserId",
        time: "LogDate",
        state: "Direction",
        filter,
        devices: { table: "Devices", key: "DeviceId", value: "SerialNumber" },
        stateCode: (raw) => {
          const text = raw === null || raw === undefined ? "" : String(raw).trim().toLowerCase();
          if (text === "" || text === "in") return 0;
          if (text === "out") return 1;
          return numericState(text);
        },
        serial: (p, _row, devices) => devices.get(p) ?? `device-${p}`,
        index: ["DeviceLogId"],
      };
    case "zkbiosecurity":
      return {
        preset: "zkbiosecurity",
        tables: () => [config.table ?? "acc_transaction"],
        tablesMayBeMissing: false,
        partition: "dev_sn",
        // id is a string (UUID-like): useless as a cursor, fine as a tie-break. create_time is the server's insert time.
        cursor: timeCursor("create_time", ["id"], lookback(15 * 60_000)),
        user: "pin",
        time: "event_time",
        verify: "verify_mode_no",
        filter,
        stateCode: () => 0,
        serial: (p) => p,
        index: ["dev_sn", "create_time"],
      };
    case "generic": {
      const columns = config.columns;
      const table = config.table;
      if (!columns || !table) throw new Error("generic source without table/columns passed validation");
      return {
        preset: "generic",
        tables: () => [table],
        tablesMayBeMissing: false,
        partition: columns.deviceSerial,
        cursor: columns.id ? idCursor(columns.id) : timeCursor(columns.time, [columns.userId], lookback(3600_000)),
        user: columns.userId,
        time: columns.time,
        ...(columns.state ? { state: columns.state } : {}),
        ...(columns.verify ? { verify: columns.verify } : {}),
        ...(columns.workCode ? { workCode: columns.workCode } : {}),
        filter,
        stateCode: numericState,
        serial: (p) => p,
        index: columns.id ? [columns.id] : [columns.deviceSerial, columns.time],
      };
    }
  }
}

export function textOf(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const text = String(value).trim();
  return text === "" ? undefined : text;
}
