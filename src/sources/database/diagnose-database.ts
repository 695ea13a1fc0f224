import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import { describeError } from "../../core/errors.ts";
import type { CursorValue } from "../../store/store.ts";
import { timeSemantics } from "./column-types.ts";
import { cursorKey } from "./cursor-key.ts";
import { DatabaseReader, isRowProblem } from "./database-reader.ts";
import { TARGET_KEY } from "./database-source.ts";
import { openSqlClient } from "./open-client.ts";
import type { SqlClient } from "./sql-client.ts";
import { cleartextPasswordWarning, wireSummary } from "./wire-security.ts";

export interface DiagnosisCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface DiagnosedTable {
  readonly table: string;
  readonly rows: number;
  readonly partitions: number;
  readonly newest: unknown[];
  readonly startCursor: Record<string, CursorValue | "start">;
}

/** A database source read as its worker would read it (`bioapi doctor --source`), without collecting anything. */
export interface DatabaseDiagnosis {
  readonly source: string;
  readonly engine: string;
  readonly preset: string;
  readonly ok: boolean;
  readonly checks: DiagnosisCheck[];
  readonly tables: DiagnosedTable[];
  readonly warnings: string[];
}

export interface DiagnoseOptions {
  /** How many of the newest rows to show as the punches they become. */
  readonly rows: number;
  /** The cursors the connector committed, to show where a poll would start; undefined: from the beginning. */
  readonly cursors: Map<string, CursorValue> | undefined;
  readonly signal: AbortSignal;
}

/** Runs every check it can; a failure stops only the checks that depend on it. */
export async function diagnoseDatabase(
  config: DatabaseSourceConfig,
  options: DiagnoseOptions,
): Promise<DatabaseDiagnosis> {
  const checks: DiagnosisCheck[] = [];
  const warnings: string[] = [];
  const tables: DiagnosedTable[] = [];
  const report = () => ({
    source: config.id,
    engine: config.connection.engine,
    preset: config.preset,
    ok: checks.every((c) => c.ok),
    checks,
    tables,
    warnings,
  });
  const started = Date.now();
  let client: SqlClient;
  try {
    client = await openSqlClient(config, options.signal);
    const wire = wireSummary(config.connection, client.wire);
    checks.push({
      name: "connect",
      ok: true,
      detail: `${config.connection.engine} in ${Date.now() - started} ms${wire ? `; ${wire}` : ""}`,
    });
    const cleartext = cleartextPasswordWarning(config.connection, client.wire);
    if (cleartext) warnings.push(cleartext);
  } catch (error) {
    checks.push({ name: "connect", ok: false, detail: describeError(error).message });
    return report();
  }
  try {
    const reader = new DatabaseReader(client, config, options.signal);
    for (const logical of reader.plan.tables(Date.now())) {
      try {
        const table = await diagnoseTable(reader, logical, options, { checks, warnings });
        if (table) tables.push(table);
      } catch (error) {
        checks.push({ name: `table ${logical}`, ok: false, detail: describeError(error).message });
      }
    }
    if (options.cursors?.has(TARGET_KEY))
      warnings.push("Cursors come from the data directory's store (what the connector committed).");
  } finally {
    await client.close();
  }
  return report();
}

/** One logical table: its columns and what they mean, its index, its rows and where a poll would start. */
async function diagnoseTable(
  reader: DatabaseReader,
  logical: string,
  options: DiagnoseOptions,
  out: { readonly checks: DiagnosisCheck[]; readonly warnings: string[] },
): Promise<DiagnosedTable | undefined> {
  const { plan, config } = reader;
  const t = await reader.table(logical);
  if (!t) {
    out.warnings.push(`Table ${logical} does not exist yet (normal for next month's eTimeTrackLite table).`);
    return undefined;
  }
  const timeCol = t.info.columns.find((c) => c.name === t.col(plan.time));
  const semantics = timeSemantics(reader.client.engine, timeCol?.type ?? "");
  out.checks.push({
    name: `table ${t.name}`,
    ok: true,
    detail: `columns ${t.select.join(", ")}; ${t.col(plan.time)} (${timeCol?.type}) is ${semantics === "naive" ? `a wall-clock time read in ${config.timezone}` : `an instant shown in ${config.timezone}`}; cursor: ${plan.cursor.kind === "id" ? `last ${t.col(plan.cursor.column)} per ${t.col(plan.partition)}` : `newest ${t.col(plan.cursor.column)} per ${t.col(plan.partition)}, ${plan.cursor.lookbackMs / 60_000} min re-read`}`,
  });
  const missing = await reader.missingIndex(t);
  if (missing)
    out.warnings.push(`No index on (${plan.index.join(", ")}) of ${t.name}: every poll scans it. ${missing}`);
  const rows = await reader.count(t);
  const partitions = await reader.partitions(t, undefined);
  const lookups = await reader.lookups();
  const collectedAt = new Date().toISOString();
  const newest = (await reader.newest(t, options.rows)).map((row) => {
    const partition = String(row[t.col(plan.partition)] ?? "");
    const punch = reader.toPunch(t, row, partition, lookups, collectedAt);
    return isRowProblem(punch) ? { quarantined: punch.reason } : punch;
  });
  const startCursor: Record<string, CursorValue | "start"> = {};
  const cursors = options.cursors;
  const fromStart = !cursors || cursors.size === 0;
  for (const p of partitions.slice(0, 50)) {
    const key = cursorKey(reader, logical, p);
    startCursor[key] = fromStart ? "start" : (cursors.get(key) ?? "start");
  }
  return { table: t.name, rows, partitions: partitions.length, newest, startCursor };
}
