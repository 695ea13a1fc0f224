import { checkIdentifier } from "./identifier.ts";
import { isTimeValue, type Scalar, type SqlDialect } from "./select-spec.ts";

const NAIVE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/;

function plainBind(value: Scalar): unknown {
  if (isTimeValue(value)) return value.time;
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

export const sqliteDialect: SqlDialect = {
  name: "sqlite",
  quote: (identifier) => `"${checkIdentifier(identifier)}"`,
  table: (name) => `"${checkIdentifier(name)}"`,
  param: () => "?",
  // Naive times are stored as text in SQLite: the bound must be spelled like the rows ("YYYY-MM-DD HH:mm:ss").
  bind: plainBind,
  limitStyle: "limit",
};

export function postgresDialect(schema: string): SqlDialect {
  const s = `"${checkIdentifier(schema)}"`;
  return {
    name: "postgres",
    quote: (identifier) => `"${checkIdentifier(identifier)}"`,
    table: (name) => `${s}."${checkIdentifier(name)}"`,
    param: (index) => `$${index}`,
    // PostgreSQL types an untyped parameter from the column it meets: naive text for timestamp, an instant with
    // its offset for timestamptz.
    bind: (value) => (typeof value === "boolean" ? value : plainBind(value)),
    limitStyle: "limit",
  };
}

/**
 * The session runs with time_zone = '+00:00' (mysql-client.ts), so a TIMESTAMP bound is compared as UTC; MariaDB
 * does not parse a "Z" suffix, hence the rewrite of "Z" instants.
 */
export const mysqlDialect: SqlDialect = {
  name: "mysql",
  quote: (identifier) => `\`${checkIdentifier(identifier)}\``,
  table: (name) => `\`${checkIdentifier(name)}\``,
  param: () => "?",
  bind: (value) => {
    if (!isTimeValue(value)) return plainBind(value);
    if (NAIVE.test(value.time)) return value.time.replace("T", " ");
    // "Z" comes from a TIMESTAMP (mysql-client.ts marks them); any other offset can only be text in a varchar,
    // compared as text: bound exactly as spelled.
    if (!/z$/i.test(value.time.trim())) return value.time;
    return new Date(value.time).toISOString().replace("T", " ").replace("Z", "");
  },
  limitStyle: "limit",
};

export function mssqlDialect(schema: string): SqlDialect {
  const s = `[${checkIdentifier(schema)}]`;
  return {
    name: "mssql",
    quote: (identifier) => `[${checkIdentifier(identifier)}]`,
    table: (name) => `${s}.[${checkIdentifier(name)}]`,
    param: (index) => `@p${index}`,
    // "YYYY-MM-DDTHH:mm:ss" is the one string form datetime reads the same under every language/DATEFORMAT.
    bind: (value) => {
      if (!isTimeValue(value)) return plainBind(value);
      const m = NAIVE.exec(value.time);
      return m ? `${m[1]}T${m[2]}` : value.time;
    },
    limitStyle: "top",
  };
}
