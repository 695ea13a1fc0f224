import { z } from "zod";
import { DELIVERED_RETENTION_MS } from "../store/delivered-retention.ts";
import {
  type AddIssue,
  type ConfigIssue,
  checkDatabaseSource,
  checkFilterCondition,
  checkSinks,
  checkSourceIds,
  checkTimeZone,
  describeIssues,
  type RawIssue,
} from "./config-rules.ts";
import { DEFAULT_SINKS, type SinkConfig, sinkSchema } from "./sink-schema.ts";

/**
 * The cloud-managed configuration: the single source of truth for its static type, its defaults and the JSON
 * Schema in docs/config.schema.json (regenerate with `npm run schema`; a test fails when they drift).
 */

/** SQL identifiers from config are never interpolated unchecked: letters, digits, underscore, at most 64. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The rules in config-rules.ts report through this, so the cloud's copy can report the same way. */
function adder(ctx: z.core.$RefinementCtx): AddIssue {
  return (path, message) => ctx.addIssue({ code: "custom", path: [...path], message });
}

const IDENTIFIER_MESSAGE =
  "must be a plain SQL identifier: letters, digits and _, starting with a letter or _, at most 64";

/** `errorMessage` travels into the JSON Schema, so the cloud words a refused identifier as the connector does. */
const identifier = z.string().regex(IDENTIFIER, IDENTIFIER_MESSAGE).meta({
  description: "A table or column name. Quoted per dialect; never interpolated raw.",
  errorMessage: IDENTIFIER_MESSAGE,
});

const timeZone = z
  .string()
  .superRefine((value, ctx) => checkTimeZone(value, adder(ctx)))
  .describe("IANA time zone of the device clocks / naive database times.");

const SOURCE_ID_MESSAGE = "must be lower-case letters, digits, - and _, at most 64";
const sourceId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, SOURCE_ID_MESSAGE)
  .meta({ description: "Stable id of the source; cursors are kept under it.", errorMessage: SOURCE_ID_MESSAGE });

export const databaseColumnsSchema = z
  .object({
    id: identifier
      .optional()
      .describe("Integer row id that grows with every new row: the cursor. Absent: the time column is the cursor."),
    deviceSerial: identifier.describe("Column holding the terminal serial number (the cursor is kept per value)."),
    userId: identifier.describe("Column holding the enrolled user / badge number."),
    time: identifier.describe("Column holding the punch time."),
    state: identifier.optional().describe("Column holding the state code (check in/out...). Absent: 0."),
    verify: identifier.optional().describe("Column holding the verify-mode code. Absent: unknown."),
    workCode: identifier.optional().describe("Column holding the work code."),
  })
  .strict();

const scalar = z.union([z.string().max(256), z.number(), z.boolean()]);

/** Structured, never raw SQL: the column is an identifier and the value is bound as a parameter. */
export const filterConditionSchema = z
  .object({
    column: identifier,
    op: z.enum(["eq", "ne", "lt", "lte", "gt", "gte", "in", "notIn", "isNull", "notNull"]),
    value: z.union([scalar, z.array(scalar).min(1).max(1000)]).optional(),
  })
  .strict()
  .superRefine((c, ctx) => checkFilterCondition(c, adder(ctx)))
  .describe("Rows must match every condition. Values are bound as parameters.");

const TLS_MODES = ["prefer", "require", "verify", "off"] as const;
export type TlsMode = (typeof TLS_MODES)[number];

const tlsMode = z
  .enum(TLS_MODES)
  .describe(
    "prefer: TLS when the server offers it, else plain (certificate not verified); require: TLS or no connection (certificate not verified); verify: TLS with the certificate checked against `ca` (else the system store) and `serverName` (else host); off: never TLS.",
  );

/** The older spelling, kept so configs already published keep working: enabled false is off, true is verify. */
function modeOf(t: {
  mode?: TlsMode | undefined;
  enabled?: boolean | undefined;
  rejectUnauthorized?: boolean | undefined;
}) {
  if (t.mode) return t.mode;
  if (t.enabled === undefined) return undefined;
  if (!t.enabled) return "off";
  return t.rejectUnauthorized === false ? "require" : "verify";
}

/** A bare mode (`"verify"`) or an object with the CA and name to verify against. */
function tlsSchemaWith(fallback: TlsMode) {
  return z
    .union([
      tlsMode,
      z
        .object({
          mode: tlsMode.optional(),
          ca: z
            .string()
            .max(65_536)
            .optional()
            .describe("PEM certificate(s) of the CA that signed the server certificate (mode verify)."),
          serverName: z
            .string()
            .max(255)
            .optional()
            .describe("Name to verify the certificate against (mode verify); default: host."),
          enabled: z.boolean().optional().describe("Deprecated, use mode: false is off, true is verify."),
          rejectUnauthorized: z
            .boolean()
            .optional()
            .describe("Deprecated, use mode: false with enabled true is require."),
        })
        .strict(),
    ])
    .default(fallback)
    .transform((t) => {
      if (typeof t === "string") return { mode: t };
      return {
        mode: modeOf(t) ?? fallback,
        ...(t.ca ? { ca: t.ca } : {}),
        ...(t.serverName ? { serverName: t.serverName } : {}),
      };
    })
    .describe(`TLS to the server (default ${fallback}).`);
}

export const tlsSchema = tlsSchemaWith("prefer");

const host = z.string().min(1).max(255).describe("Server host name or address.");
const password = z
  .string()
  .max(1024)
  .default("")
  .describe("Kept only in the encrypted config; never logged or shown in errors.");
const poolSize = z.number().int().min(1).max(10).default(2).describe("Connections kept open at most.");
const connectTimeoutMs = z.number().int().min(100).max(120_000).default(10_000);

export const sqliteConnectionSchema = z
  .object({
    engine: z.literal("sqlite"),
    path: z.string().min(1).describe("Path of the SQLite database file; opened read-only."),
  })
  .strict();

export const postgresConnectionSchema = z
  .object({
    engine: z.literal("postgres"),
    host,
    port: z.number().int().min(1).max(65_535).default(5432),
    database: z.string().min(1).max(128),
    user: z.string().min(1).max(128),
    password,
    schema: identifier.default("public").describe("Schema holding the table."),
    tls: tlsSchema,
    poolSize,
    connectTimeoutMs,
  })
  .strict();

export const mysqlConnectionSchema = z
  .object({
    engine: z.literal("mysql").describe("MySQL or MariaDB."),
    host,
    port: z.number().int().min(1).max(65_535).default(3306),
    database: z.string().min(1).max(128),
    user: z.string().min(1).max(128),
    password,
    tls: tlsSchema,
    poolSize,
    connectTimeoutMs,
  })
  .strict();

export const mssqlConnectionSchema = z
  .object({
    engine: z.literal("mssql").describe("Microsoft SQL Server (SQL authentication)."),
    host,
    port: z.number().int().min(1).max(65_535).default(1433),
    instanceName: z.string().min(1).max(128).optional().describe("Named instance (uses SQL Browser; omit port)."),
    database: z.string().min(1).max(128),
    user: z.string().min(1).max(128),
    password,
    schema: identifier.default("dbo"),
    tls: tlsSchemaWith("verify"),
    poolSize,
    connectTimeoutMs,
  })
  .strict();

export const accessConnectionSchema = z
  .object({
    engine: z.literal("access").describe("MS Access .mdb / .accdb, read from a snapshot copy."),
    path: z.string().min(1).describe("Path of the .mdb / .accdb file; copied, never opened in place."),
    password: z.string().max(1024).optional().describe("Database password, if the file has one."),
  })
  .strict();

export const databaseConnectionSchema = z.discriminatedUnion("engine", [
  sqliteConnectionSchema,
  postgresConnectionSchema,
  mysqlConnectionSchema,
  mssqlConnectionSchema,
  accessConnectionSchema,
]);

export const DATABASE_PRESETS = ["generic", "biotime", "att2000", "etimetracklite", "zkbiosecurity"] as const;

/**
 * A time cursor's lookback re-reads rows the store must still know as delivered: a day less than that memory, so a
 * row re-read at the window's far end is still dropped by id, not sent again.
 */
export const MAX_LOOKBACK_MS = DELIVERED_RETENTION_MS - 24 * 3600_000;

export const databaseSourceSchema = z
  .object({
    id: sourceId,
    kind: z.literal("database"),
    enabled: z.boolean().default(true),
    pollIntervalMs: z.number().int().min(100).max(3_600_000).default(5000),
    timezone: timeZone.default("UTC"),
    connection: databaseConnectionSchema,
    preset: z
      .enum(DATABASE_PRESETS)
      .default("generic")
      .describe("A vendor schema (table, columns, cursor, device and user lookups), or generic: your own mapping."),
    table: identifier
      .optional()
      .describe("Table or view to read. Required for generic; overrides the preset's table otherwise."),
    columns: databaseColumnsSchema.optional().describe("generic only: which column holds what."),
    filter: z.array(filterConditionSchema).max(20).default([]),
    devices: z
      .array(z.string().min(1).max(64))
      .max(5000)
      .optional()
      .describe("Values of the partition column (usually the serial) to read. Absent: every one found."),
    lookbackRows: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(500)
      .describe(
        "Id cursors: used once, on the first start after the upgrade to table-wide reads (ids below the highest cursor re-read then). Late rows are found by lateRowWindowMs.",
      ),
    lateRowWindowMs: z
      .number()
      .int()
      .min(1000)
      .max(7 * 24 * 3600_000)
      .default(3_600_000)
      .describe(
        "Id cursors: how long an id missing below ids already read is looked for (a transaction that commits late). Size it to your longest import or transaction.",
      ),
    lookbackMs: z
      .number()
      .int()
      .min(0)
      .max(MAX_LOOKBACK_MS)
      .optional()
      .describe("Time cursors: the window below the newest time re-read each poll. Default per preset."),
    batchSize: z.number().int().min(1).max(50_000).default(1000),
    queryTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  })
  .strict()
  .superRefine((s, ctx) => checkDatabaseSource(s, adder(ctx)));

export const zkSourceSchema = z
  .object({
    id: sourceId,
    kind: z.literal("zk"),
    enabled: z.boolean().default(true),
    host: z.string().min(1).max(253).describe("IP address or host name of the terminal on the LAN."),
    port: z.number().int().min(1).max(65_535).default(4370),
    transport: z
      .enum(["tcp", "udp"])
      .default("tcp")
      .describe("TFT/ZK8 firmware usually speaks TCP; older black-and-white units UDP only."),
    commKey: z
      .number()
      .int()
      .min(0)
      .max(999_999)
      .default(0)
      .describe("The terminal's COMM Key (Menu → Comm); 0 = none. Treated as a secret: never logged."),
    serial: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe("Expected serial number. When set, a different terminal at this address is refused, not read."),
    timezone: timeZone.default("UTC"),
    pollIntervalMs: z
      .number()
      .int()
      .min(200)
      .max(3_600_000)
      .default(10_000)
      .describe("How often the record count is checked (one small round trip); the log is read only when it changed."),
    realtime: z
      .boolean()
      .default(true)
      .describe("Register for real-time attendance events: punches arrive within a second, polls reconcile."),
    reconcileIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(86_400_000)
      .default(600_000)
      .describe("At least this often the newest records are read even if the count did not change."),
    lookbackRecords: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(200)
      .describe("Records before the cursor position re-read on each read; they prove the log was not rewritten."),
    recordFormat: z
      .union([z.literal("auto"), z.literal(8), z.literal(16), z.literal(40), z.literal("zem500")])
      .default("auto")
      .describe(
        'Attendance record layout: 40, 16 or 8 bytes, or "zem500" (8 bytes, time at offset 4); auto decides from the log.',
      ),
    requestTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
    readAhead: z
      .number()
      .int()
      .min(1)
      .max(8)
      .optional()
      .describe("Log chunks requested ahead (default 2 over TCP, 3 over UDP); 1 for firmware that mishandles it."),
    chunkBytes: z
      .number()
      .int()
      .min(1024)
      .max(65_472)
      .optional()
      .describe("Bytes per chunk of a log read. Default 65,472 over TCP, 32,768 over UDP."),
    disableDuringRead: z
      .boolean()
      .default(false)
      .describe("Lock the keypad while reading the log (blocks punching; auto-unlocks after 60 s if we die)."),
    syncClock: z
      .boolean()
      .default(false)
      .describe("Set the terminal's clock from this machine when it drifts more than maxClockDriftMs. Logged."),
    maxClockDriftMs: z.number().int().min(1000).max(86_400_000).default(60_000),
    checksum: z
      .enum(["verify", "ignore"])
      .default("verify")
      .describe("ignore: accept packets whose checksum is wrong (only for firmware known to send bad ones)."),
  })
  .strict();

export const sourceSchema = z.discriminatedUnion("kind", [databaseSourceSchema, zkSourceSchema]);

export const connectivitySchema = z
  .object({
    probeIntervalMs: z.number().int().min(100).max(300_000).default(5000),
    probeTimeoutMs: z.number().int().min(100).max(60_000).default(3000),
    failuresBeforeOffline: z.number().int().min(1).max(20).default(2),
    policy: z
      .enum(["pause", "buffer"])
      .default("pause")
      .describe("pause: stop reading sources while offline. buffer: keep collecting into the outbox."),
  })
  .strict();

export const shipperSchema = z
  .object({
    batchSize: z.number().int().min(1).max(10_000).default(1000),
    lingerMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(25)
      .describe("An idle shipper waits this long for more punches before sending; a backlog never waits."),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .max(8)
      .default(2)
      .describe("Batches travelling at once; 2 keeps the cloud busy while the next batch is prepared."),
    requestTimeoutMs: z.number().int().min(100).max(300_000).default(15_000),
    maxBackoffMs: z.number().int().min(100).max(3_600_000).default(60_000),
    gzip: z.boolean().default(true),
  })
  .strict();

export const outboxSchema = z
  .object({
    highWater: z
      .number()
      .int()
      .min(100)
      .max(10_000_000)
      .default(20_000)
      .describe("While online, sources wait when this many punches are undelivered, instead of running far ahead."),
    maxDepth: z
      .number()
      .int()
      .min(1000)
      .max(100_000_000)
      .default(5_000_000)
      .describe("Offline with policy buffer, sources stop reading beyond this many undelivered punches."),
  })
  .strict();

export const connectorConfigSchema = z
  .object({
    schemaVersion: z.literal(1),
    configPollIntervalMs: z.number().int().min(200).max(86_400_000).default(60_000),
    heartbeatIntervalMs: z.number().int().min(200).max(86_400_000).default(60_000),
    connectivity: connectivitySchema.default(connectivitySchema.parse({})),
    shipper: shipperSchema.default(shipperSchema.parse({})),
    outbox: outboxSchema.default(outboxSchema.parse({})),
    sources: z.array(sourceSchema).max(5000),
    sinks: z
      .array(sinkSchema)
      .min(1)
      .max(32)
      .optional()
      .describe("Where punches go, each exactly once. Absent: the enrolled Cams cloud alone."),
  })
  .strict()
  .superRefine((config, ctx) => {
    checkSourceIds(config.sources, adder(ctx));
    if (config.sinks) checkSinks(config.sinks, adder(ctx));
  });

/** The sinks a config runs: its `sinks` section, or the enrolled Cams cloud alone when it has none. */
export function configuredSinks(config: Pick<ConnectorConfig, "sinks">): readonly SinkConfig[] {
  return config.sinks ?? DEFAULT_SINKS;
}

export type ConnectorConfig = z.infer<typeof connectorConfigSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type DatabaseSourceConfig = z.infer<typeof databaseSourceSchema>;
export type ZkSourceConfig = z.infer<typeof zkSourceSchema>;
export type ConnectivityConfig = z.infer<typeof connectivitySchema>;
export type ShipperConfig = z.infer<typeof shipperSchema>;
export type OutboxConfig = z.infer<typeof outboxSchema>;

export type { ConfigIssue } from "./config-rules.ts";

export type ConfigParseResult =
  | { readonly ok: true; readonly config: ConnectorConfig }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

export function parseConfig(input: unknown): ConfigParseResult {
  const result = connectorConfigSchema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    issues: describeIssues(result.error.issues as readonly RawIssue[], exportedSchema(), input),
  };
}

/** One database source on its own (`doctor --source-config`), worded like a whole config's issues. */
export function parseDatabaseSource(
  input: unknown,
):
  | { readonly ok: true; readonly source: DatabaseSourceConfig }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] } {
  const result = databaseSourceSchema.safeParse(input);
  if (result.success) return { ok: true, source: result.data };
  sourceExported ??= z.toJSONSchema(databaseSourceSchema, { io: "input", unrepresentable: "any" });
  return { ok: false, issues: describeIssues(result.error.issues as readonly RawIssue[], sourceExported, input) };
}

let sourceExported: Record<string, unknown> | undefined;

export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(connectorConfigSchema, { io: "input", unrepresentable: "any" });
}

let exported: Record<string, unknown> | undefined;

/** The wording of issues walks the exported schema, as the cloud's copy does, so both name fields alike. */
function exportedSchema(): Record<string, unknown> {
  exported ??= configJsonSchema();
  return exported;
}
export type DatabaseConnectionConfig = z.infer<typeof databaseConnectionSchema>;
export type DatabasePreset = (typeof DATABASE_PRESETS)[number];
export type FilterCondition = z.infer<typeof filterConditionSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
