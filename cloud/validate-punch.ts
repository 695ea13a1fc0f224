import { createHash } from "node:crypto";

const ID = /^[0-9a-f]{32}$/;
const ISO_WITH_OFFSET = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;

/** Date.parse accepts 2026-02-30, so the calendar fields are checked by hand. */
export function isIsoWithOffset(value: string): boolean {
  const m = ISO_WITH_OFFSET.exec(value);
  if (m === null) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return false;
  if (m[7] !== "Z" && (Number(m[8]) > 23 || Number(m[9]) > 59)) return false;
  return true;
}

/** The reason a punch is refused for good, or undefined when it is well-formed. */
export function punchProblem(punch: unknown): string | undefined {
  if (typeof punch !== "object" || punch === null || Array.isArray(punch)) return "punch is not a JSON object";
  const p = punch as Record<string, unknown>;
  if (typeof p.id !== "string" || !ID.test(p.id)) return "id must be 32 lowercase hex digits";
  for (const field of ["deviceSerial", "userId"] as const) {
    const value = p[field];
    if (typeof value !== "string") return `${field} must be a string`;
    if (value.length === 0) return `${field} is empty`;
  }
  if (typeof p.time !== "string" || !isIsoWithOffset(p.time)) {
    return "time must be ISO 8601 with an offset or Z, e.g. 2026-11-26T08:59:03+05:30";
  }
  if (typeof p.state !== "string") return "state must be a string";
  return undefined;
}

/**
 * Recomputes the id from its inputs (protocol.md: serial ␟ user ␟ device-local time ␟ stateCode). Not a reason to
 * reject — the contract does not say so — but recorded so tests can prove the connector derives ids as specified.
 */
export function idMatchesFields(punch: Readonly<Record<string, unknown>>): boolean {
  const { id, deviceSerial, userId, time, stateCode } = punch;
  if (typeof time !== "string" || typeof stateCode !== "number") return false;
  const local = time.slice(0, 19);
  const expected = createHash("sha256")
    .update(`${String(deviceSerial)}\u001f${String(userId)}\u001f${local}\u001f${stateCode}`)
    .digest("hex")
    .slice(0, 32);
  return expected === id;
}
