import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { dataDirLayout, defaultDataDir } from "../app/data-dir.ts";
import { issueSentence } from "../config/config-rules.ts";
import { type DatabaseSourceConfig, parseConfig, parseDatabaseSource } from "../config/config-schema.ts";
import { openCachedConfig } from "../config/open-cached-config.ts";
import { BioError } from "../core/errors.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { loadEnrollment } from "../secrets/enrollment.ts";
import { openSecretStore } from "../secrets/open-secret-store.ts";
import { type DatabaseDiagnosis, diagnoseDatabase } from "../sources/database/diagnose-database.ts";
import type { CursorValue } from "../store/store.ts";
import { Store } from "../store/store.ts";
import type { CliIo } from "./cli-io.ts";
import { optionsOf, renderHelp } from "./command-spec.ts";
import { DOCTOR } from "./commands.ts";
import { formatFull, fullDoctor } from "./full-doctor.ts";

export const DOCTOR_USAGE = renderHelp(DOCTOR);

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
    const cached = openCachedConfig(store, keys.local, enrollment.nodeId);
    if (cached.state === "none") throw new BioError("USAGE", `The connector in ${dataDir} has no config yet.`);
    if (cached.state === "unreadable") throw cached.error;
    return pickSource(cached.raw, id, `the cached config (version ${cached.version})`);
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

export function formatDoctor(r: DatabaseDiagnosis): string {
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
  const report = await diagnoseDatabase(config, {
    rows,
    cursors: committedCursors(dataDir, config.id),
    signal: controller.signal,
  });
  io.out(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
  return report.ok ? 0 : 1;
}
