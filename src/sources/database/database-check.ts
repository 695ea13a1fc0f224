import type { DatabaseSourceConfig } from "../../config/config-schema.ts";
import type { Finding } from "../../core/check.ts";
import type { SourceCheck } from "../source-check.ts";
import { diagnoseDatabase } from "./diagnose-database.ts";

/**
 * A database source, as its worker reads it: it connects, has its tables and the index a poll needs. The findings
 * are the diagnosis of `doctor --source`, one row each, with a fix for what fails.
 */
export const checkDatabase: SourceCheck<DatabaseSourceConfig> = async ({ config }, signal) => {
  const subject = `database ${config.id} (${config.connection.engine}, preset ${config.preset})`;
  const r = await diagnoseDatabase(config, { rows: 1, cursors: undefined, signal });
  const out: Finding[] = [];
  for (const c of r.checks) {
    out.push(
      c.ok
        ? { subject, check: c.name, status: "ok", detail: c.detail }
        : {
            subject,
            check: c.name,
            status: "fail",
            detail: c.detail,
            fix:
              c.name === "connect"
                ? "Check the server, host, port, user and password in the source's connection, and the firewall."
                : "Fix table, columns or preset in the source config (the message lists what exists).",
          },
    );
  }
  for (const t of r.tables)
    out.push({ subject, check: `rows in ${t.table}`, status: "ok", detail: `${t.rows} rows, ${t.partitions} devices` });
  for (const w of r.warnings) out.push(warningFinding(subject, w));
  if (r.checks.every((c) => c.ok) && r.tables.length > 0 && !r.warnings.some((w) => w.startsWith("No index")))
    out.push({ subject, check: "index", status: "ok", detail: "the poll query has its index" });
  return out;
};

/** A diagnosis warning as a finding: a cleartext password and a missing index are warnings with a fix. */
function warningFinding(subject: string, w: string): Finding {
  const index = /^No index on (.*?): every poll scans it\. (.*)$/s.exec(w);
  const cleartext = /^(The password for .* crosses the network without TLS: .*?\.) .*? (Enable TLS .*)$/s.exec(w);
  if (cleartext) return { subject, check: "tls", status: "warn", detail: cleartext[1] ?? w, fix: cleartext[2] ?? "" };
  if (index)
    return {
      subject,
      check: "index",
      status: "warn",
      detail: `No index on ${index[1]}: every poll scans the table.`,
      fix: index[2] ?? "",
    };
  return { subject, check: "note", status: "ok", detail: w };
}
