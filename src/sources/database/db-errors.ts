import { BioError, type ErrorCode } from "../../core/errors.ts";

/** What an error is about, for the message: engine and place, never credentials. */
export interface DbErrorContext {
  readonly engine: string;
  /** e.g. "postgres 10.0.0.5:5432/biotime as bioapi" */
  readonly where: string;
  /** Strings that must not appear in the message (the password). */
  readonly secrets: readonly (string | undefined)[];
  /** The table being read, when known. */
  readonly table?: string | undefined;
}

interface DriverError {
  code?: unknown;
  errno?: unknown;
  number?: unknown;
  message?: unknown;
}

const GONE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST",
  "ESOCKET",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08003",
  "08006",
]);

export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join("[redacted]");
  // A driver may echo a connection URL: drop any user:password@ part.
  return out.replace(/\/\/([^:/@\s]+):[^@\s]*@/g, "//$1:[redacted]@");
}

/** Where else, besides user and password, each engine decides who may log in. */
const AUTH_HINT: Readonly<Record<string, string>> = {
  postgres:
    "Check the user and password in the source's connection settings, and that pg_hba.conf admits this machine.",
  mysql:
    "Check the user and password in the source's connection settings, and that the account's host part admits this machine ('user'@'%' or its address).",
  mssql:
    "Check the user and password in the source's connection settings, and that the server allows SQL Server authentication (mixed mode).",
  default: "Check the user and password in the source's connection settings.",
};

/**
 * The GRANT for a MySQL/MariaDB refusal, whose text names the account (`'u'@'h'`) and the database or table; the
 * general advice where the driver names neither (PostgreSQL's 42501 is caught earlier, by the catalog check).
 */
function grantHint(raw: string, ctx: DbErrorContext): string {
  const account = /user '([^']*)'@'([^']*)'/.exec(raw);
  const database = /database '([^']*)'/.exec(raw)?.[1] ?? /`([^`]+)`\.`[^`]+`/.exec(raw)?.[1];
  if (account && database) {
    const table = ctx.table ?? /`[^`]+`\.`([^`]+)`/.exec(raw)?.[1];
    const target = table ? `\`${database}\`.\`${table}\`` : `\`${database}\`.\`TABLE\``;
    return `As an administrator, run: GRANT SELECT ON ${target} TO '${account[1]}'@'${account[2]}';${table ? "" : " for the punch table and each lookup table the source reads (docs/configuration.md, Least privilege)."}`;
  }
  return "Grant the connector's user SELECT on the table and its lookup tables (docs/configuration.md lists the grant for each engine).";
}

/**
 * One driver error → one BioError with a code the status page and the backoff understand, and a hint that names
 * the fix. Auth and permission failures are not retriable in the sense that waiting won't fix them, but the worker
 * still backs off and retries, so a grant made later is picked up without a restart.
 */
export function dbError(error: unknown, ctx: DbErrorContext): BioError {
  if (error instanceof BioError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as DriverError;
  const code = String(e.code ?? "");
  const num = typeof e.errno === "number" ? e.errno : typeof e.number === "number" ? e.number : undefined;
  const raw = scrub(String(e.message ?? error), ctx.secrets)
    .replace(/\s+/g, " ")
    .trim();
  const make = (c: ErrorCode, message: string, hint: string) =>
    new BioError(c, `${message} (${ctx.where}): ${raw}`, {
      hint,
      cause: error,
      context: { driverCode: code || num },
    });

  if (code === "28P01" || code === "28000" || code === "ER_ACCESS_DENIED_ERROR" || num === 1045 || code === "ELOGIN") {
    return make("DB_AUTH", "Authentication failed", AUTH_HINT[ctx.engine] ?? AUTH_HINT.default ?? "");
  }
  if (
    code === "42501" ||
    code === "ER_TABLEACCESS_DENIED_ERROR" ||
    code === "ER_DBACCESS_DENIED_ERROR" ||
    code === "ER_COLUMNACCESS_DENIED_ERROR" ||
    num === 1142 ||
    num === 1044 ||
    num === 229 ||
    num === 230
  ) {
    return make(
      "DB_PERMISSION",
      `Not allowed ${ctx.table ? `to read ${ctx.table}` : "to read this database"}`,
      grantHint(raw, ctx),
    );
  }
  if (code === "HANDSHAKE_NO_SSL_SUPPORT" || /server does not support (SSL|secure) connection/i.test(raw)) {
    return make(
      "DB_CONNECT",
      "The server offers no TLS, and the connection's tls requires it",
      'Enable TLS (ssl) on the database server, or set the connection\'s tls to "prefer", which then connects without it (doctor warns when a password crosses the network that way).',
    );
  }
  if (
    code === "HANDSHAKE_SSL_ERROR" ||
    code.startsWith("ERR_TLS_") ||
    code.startsWith("ERR_SSL_") ||
    /CERT|_ISSUER|SELF_SIGNED/.test(code)
  ) {
    return make(
      "DB_CONNECT",
      "The TLS handshake with the server failed",
      'With tls "verify", give the CA that signed the server certificate in tls.ca and, when the certificate names another host, tls.serverName; "require" encrypts without checking the certificate.',
    );
  }
  if (code === "3D000" || code === "ER_BAD_DB_ERROR" || num === 1049 || num === 4060) {
    return make("DB_CONNECT", "The database does not exist", "Check `database` in the connection settings.");
  }
  if (
    code === "42P01" ||
    code === "42703" ||
    code === "ER_NO_SUCH_TABLE" ||
    code === "ER_BAD_FIELD_ERROR" ||
    num === 208 ||
    num === 207
  ) {
    return make(
      "DB_SCHEMA",
      "A table or column went missing",
      "Check the table and columns of the source config; run `bioapi doctor`.",
    );
  }
  if (
    code === "57014" ||
    code === "PROTOCOL_SEQUENCE_TIMEOUT" ||
    code === "ER_QUERY_TIMEOUT" ||
    num === 3024 ||
    num === 1969 ||
    code === "ETIMEOUT"
  ) {
    return make(
      "DB_QUERY",
      "The query took too long and was cancelled",
      "Check that the index the preset expects exists (bioapi doctor names it), or raise queryTimeoutMs.",
    );
  }
  if (
    GONE.has(code) ||
    /connection terminated|server closed the connection|connection lost|socket hang up/i.test(raw)
  ) {
    return make(
      "DB_CONNECT",
      "Cannot reach the database server",
      "Check that the server is running and reachable from this machine (host, port, firewall, TLS settings).",
    );
  }
  return make("DB_QUERY", "The database refused a query", "Run `bioapi doctor` for this source to see what it reads.");
}

/**
 * A table the connector's user may not read. Catalogs hide such a table, so without this the operator is told it
 * does not exist and goes looking for the wrong fix.
 */
export function notAllowedError(ctx: DbErrorContext, table: string, why: string, grant: string): BioError {
  return new BioError("DB_PERMISSION", `Not allowed to read table ${table} (${ctx.where}): ${why}.`, {
    hint: `As the table's owner or an administrator, run: ${grant}`,
    context: { table },
  });
}
