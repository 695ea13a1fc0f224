import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { dataDirLayout, defaultDataDir } from "../app/data-dir.ts";
import { openCache } from "../config/config-envelope.ts";
import { issueSentence } from "../config/config-rules.ts";
import { type DatabaseSourceConfig, parseConfig, parseDatabaseSource } from "../config/config-schema.ts";
import { BioError, describeError } from "../core/errors.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { loadEnrollment } from "../secrets/enrollment.ts";
import { openSecretStore } from "../secrets/open-secret-store.ts";
import { DatabaseReader, isRowProblem, timeSemantics } from "../sources/database/database-reader.ts";
import { cursorKey, TARGET_KEY } from "../sources/database/database-source.ts";
import { openSqlClient } from "../sources/database/open-client.ts";
import { cleartextPasswordWarning, wireSummary } from "../sources/database/wire-security.ts";
import type { CursorValue } from "../store/store.ts";
import { Store } from "../store/store.ts";
import type { CliIo } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { DOCTOR } from "./commands.ts";
import { formatFull, fullDoctor } from "./doctor-checks.ts";

export const DOCTOR_USAGE = renderHelp(DOCTOR);

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface DoctorReport {
  readonly source: string;
  readonly engine: string;
  readonly preset: string;
  readonly ok: boolean;
  readonly checks: Check[];
  readonly tables: Array<{
    table: string;
    rows: number;
    partitions: number;
    newest: unknown[];
    startCursor: Record<string, CursorValue | "start">;
  }>;
  readonly warnings: string[];
}

function onlyDatabases(where: string): BioError {
  return new BioError("USAGE", `${where} is a terminal source: --source-config checks only database sources.`, {
    hint: "For terminals run `bioapi doctor`: it connects to each terminal of the running config.",
  });
}

function pickSource(raw: unknown, id: string | undefined, where: string): DatabaseSourceConfig {
  const obj = raw as { sources?: unknown[]; kind?: unknown };
  let candidate: unknown = raw;
  if (Array.isArray(obj?.sources)) {
    const parsed = parseConfig(raw);
    if (!parsed.ok) {
      throw new BioError("CONFIG_INVALID", `${where}: ${issueSentence(parsed.issues)}.`);
    }
    const dbSources = parsed.config.sources.filter((s) => s.kind === "database");
    if (id && parsed.config.sources.some((s) => s.id === id && s.kind !== "database")) throw onlyDatabases(where);
    const found = id ? dbSources.find((s) => s.id === id) : dbSources.length === 1 ? dbSources[0] : undefined;
    if (!found) {
      throw new BioError(
        "USAGE",
        `${where} has database sources ${dbSources.map((s) => s.id).join(", ") || "(none)"}; pick one with --source ID.`,
      );
    }
    candidate = found;
  }
  if (obj?.kind !== undefined && obj.kind !== "database") throw onlyDatabases(where);
  const result = parseDatabaseSource(candidate);
  if (!result.ok) {
    throw new BioError("CONFIG_INVALID", `${where}: ${issueSentence(result.issues)}.`, {
      hint: "docs/configuration.md describes every field.",
    });
  }
  return result.source;
}

async function cachedSource(dataDir: string, id: string): Promise<DatabaseSourceConfig> {
  const layout = dataDirLayout(dataDir);
  if (!existsSync(layout.store)) {
    throw new BioError("USAGE", `No connector data in ${dataDir}.`, {
      hint: "Pass --data-dir of an enrolled connector, or check a file with --source-config.",
    });
  }
  const enrollment = await loadEnrollment(openSecretStore(layout));
  const keys = deriveNodeKeys(enrollment.nodeSecret);
  const store = Store.openReadOnly(layout.store);
  try {
    const cached = store.cachedConfig();
    if (!cached) throw new BioError("USAGE", `The connector in ${dataDir} has no config yet.`);
    const raw = openCache(keys.local, enrollment.nodeId, cached.version, cached.iv, cached.ciphertext);
    return pickSource(raw, id, `the cached config (version ${cached.version})`);
  } finally {
    store.close();
  }
}

function committedCursors(dataDir: string, sourceId: string): Map<string, CursorValue> | undefined {
  const layout = dataDirLayout(dataDir);
  if (!existsSync(layout.store)) return undefined;
  const store = Store.openReadOnly(layout.store);
  try {
    return store.cursors(sourceId);
  } finally {
    store.close();
  }
}

/** Runs every check it can; a failure stops only the checks that depend on it. */
export async function diagnose(
  config: DatabaseSourceConfig,
  options: { rows: number; cursors: Map<string, CursorValue> | undefined; signal: AbortSignal },
): Promise<DoctorReport> {
  const checks: Check[] = [];
  const warnings: string[] = [];
  const tables: DoctorReport["tables"] = [];
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
  let client: Awaited<ReturnType<typeof openSqlClient>>;
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
    const plan = reader.plan;
    const cursors = options.cursors;
    for (const logical of plan.tables(Date.now())) {
      try {
        const t = await reader.table(logical);
        if (!t) {
          warnings.push(`Table ${logical} does not exist yet (normal for next month's eTimeTrackLite table).`);
          continue;
        }
        const timeCol = t.info.columns.find((c) => c.name === t.col(plan.time));
        const semantics = timeSemantics(client.engine, timeCol?.type ?? "");
        checks.push({
          name: `table ${t.name}`,
          ok: true,
          detail: `columns ${t.select.join(", ")}; ${t.col(plan.time)} (${timeCol?.type}) is ${semantics === "naive" ? `a wall-clock time read in ${config.timezone}` : `an instant shown in ${config.timezone}`}; cursor: ${plan.cursor.kind === "id" ? `last ${t.col(plan.cursor.column)} per ${t.col(plan.partition)}` : `newest ${t.col(plan.cursor.column)} per ${t.col(plan.partition)}, ${plan.cursor.lookbackMs / 60_000} min re-read`}`,
        });
        const missing = await reader.missingIndex(t);
        if (missing)
          warnings.push(`No index on (${plan.index.join(", ")}) of ${t.name}: every poll scans it. ${missing}`);
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
        const fromStart = !cursors || cursors.size === 0;
        for (const p of partitions.slice(0, 50)) {
          const key = cursorKey(reader, logical, p);
          startCursor[key] = fromStart ? "start" : (cursors.get(key) ?? "start");
        }
        tables.push({ table: t.name, rows, partitions: partitions.length, newest, startCursor });
      } catch (error) {
        checks.push({ name: `table ${logical}`, ok: false, detail: describeError(error).message });
      }
    }
    if (cursors?.has(TARGET_KEY))
      warnings.push("Cursors come from the data directory's store (what the connector committed).");
  } finally {
    await client.close();
  }
  return report();
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [`source ${r.source}: ${r.engine}, preset ${r.preset}`];
  for (const c of r.checks) lines.push(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  for (const t of r.tables) {
    lines.push(`  ${t.table}: ${t.rows} rows, ${t.partitions} devices`);
    lines.push("  newest rows, as the punches they become:");
    for (const p of t.newest) {
      const punch = p as {
        quarantined?: string;
        deviceSerial?: string;
        userId?: string;
        time?: string;
        state?: string;
      };
      lines.push(
        punch.quarantined
          ? `    (quarantined) ${punch.quarantined}`
          : `    ${punch.deviceSerial}  user ${punch.userId}  ${punch.time}  ${punch.state}`,
      );
    }
    const cursor = Object.entries(t.startCursor);
    lines.push(
      `  starts from: ${cursor.length === 0 ? "(no devices yet)" : cursor.map(([k, v]) => `${k}=${v === "start" ? "the beginning" : JSON.stringify(v)}`).join("  ")}`,
    );
  }
  for (const w of r.warnings) lines.push(`  ! ${w}`);
  lines.push(r.ok ? "This source can be read." : "This source cannot be read: see FAIL above.");
  return lines.join("\n");
}

export async function doctorCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: optionsOf(DOCTOR),
    strict: true,
  });
  if (values.help) {
    io.out(DOCTOR_USAGE);
    return 0;
  }
  const file = values["source-config"];
  const dataDir = values["data-dir"] ?? defaultDataDir();
  if (!file && !values.source) {
    const controller = new AbortController();
    const stop = () => controller.abort(new DOMException("interrupted", "AbortError"));
    process.once("SIGINT", stop);
    try {
      const full = await fullDoctor(dataDir, controller.signal);
      io.out(values.json ? JSON.stringify(full, null, 2) : formatFull(full));
      return full.ok ? 0 : 1;
    } finally {
      process.off("SIGINT", stop);
    }
  }
  let config: DatabaseSourceConfig;
  if (file) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, "utf8"));
    } catch (error) {
      throw new BioError("USAGE", `Cannot read ${file} as JSON: ${(error as Error).message}`);
    }
    config = pickSource(raw, values.source, file);
  } else config = await cachedSource(dataDir, values.source as string);
  const rows = Math.max(1, Math.min(100, Number(values.rows) || 5));
  const controller = new AbortController();
  const report = await diagnose(config, {
    rows,
    cursors: committedCursors(dataDir, config.id),
    signal: controller.signal,
  });
  io.out(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
  return report.ok ? 0 : 1;
}
