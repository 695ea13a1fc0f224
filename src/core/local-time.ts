import { BioError } from "./errors.ts";

/**
 * Device-local wall-clock time without a zone, "YYYY-MM-DDTHH:mm:ss". Terminals and most attendance databases
 * keep exactly this; the punch id is computed over it so it is stable whatever offset we later attach.
 */
export type LocalDateTime = string;

const NAIVE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/;
const ZONED = /(Z|[+-]\d{2}:?\d{2})$/i;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock time in `timeZone` at the instant `epochMs`. */
export function toLocal(epochMs: number, timeZone: string): LocalDateTime {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(epochMs))) parts[p.type] = p.value;
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

function naiveToUtcMs(local: LocalDateTime): number {
  const m = NAIVE.exec(local);
  if (!m) throw new BioError("ROW_INVALID", `Unparseable local time "${local}".`);
  const [, y, mo, d, h, mi, s] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0));
}

/**
 * Offsets are looked up per quarter hour of local time: zone transitions fall on quarter-hour boundaries, and
 * Intl formatting is the costliest step of turning a row into a punch.
 */
const offsetCache = new Map<string, number>();
const OFFSET_CACHE_MAX = 50_000;

/** Offset of `timeZone` from UTC, in minutes, at the given local wall-clock time. */
export function offsetMinutesAt(local: LocalDateTime, timeZone: string): number {
  const key = `${timeZone}|${local.slice(0, 14)}${Math.floor(Number(local.slice(14, 16)) / 15)}`;
  const cached = offsetCache.get(key);
  if (cached !== undefined) return cached;
  const offset = computeOffset(local, timeZone);
  if (offsetCache.size >= OFFSET_CACHE_MAX) offsetCache.clear();
  offsetCache.set(key, offset);
  return offset;
}

function computeOffset(local: LocalDateTime, timeZone: string): number {
  const asUtc = naiveToUtcMs(local);
  // Two passes settle the offset across DST transitions; in a gap or overlap the earlier offset wins.
  let guess = asUtc;
  for (let i = 0; i < 2; i++) {
    const back = naiveToUtcMs(toLocal(guess, timeZone));
    guess = asUtc - (back - guess);
  }
  return Math.round((asUtc - guess) / 60_000);
}

export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

export interface ResolvedTime {
  /** Device-local wall clock, used for the punch id. */
  readonly local: LocalDateTime;
  /** ISO 8601 with the UTC offset in force at that local time. */
  readonly iso: string;
  readonly epochMs: number;
}

/**
 * Reads a time value as a database or device gives it: a naive local string (interpreted in `timeZone`), an ISO
 * string with an offset, a Date, or Unix epoch seconds / milliseconds.
 */
export function resolveTime(value: unknown, timeZone: string): ResolvedTime {
  let epochMs: number | undefined;
  if (value instanceof Date) epochMs = value.getTime();
  else if (typeof value === "number" || typeof value === "bigint") {
    const n = Number(value);
    epochMs = n > 1e11 ? n : n * 1000;
  } else if (typeof value === "string") {
    const text = value.trim();
    if (ZONED.test(text)) epochMs = Date.parse(text.replace(" ", "T"));
    else {
      const m = NAIVE.exec(text);
      if (!m) throw new BioError("ROW_INVALID", `Unparseable time "${text.slice(0, 40)}".`);
      const local = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? "00"}`;
      const offset = offsetMinutesAt(local, timeZone);
      return { local, iso: `${local}${formatOffset(offset)}`, epochMs: naiveToUtcMs(local) - offset * 60_000 };
    }
  }
  if (epochMs === undefined || !Number.isFinite(epochMs)) {
    throw new BioError("ROW_INVALID", `Unparseable time ${JSON.stringify(value)?.slice(0, 40)}.`);
  }
  const local = toLocal(epochMs, timeZone);
  const offset = offsetMinutesAt(local, timeZone);
  return { local, iso: `${local}${formatOffset(offset)}`, epochMs: Math.floor(epochMs / 1000) * 1000 };
}
