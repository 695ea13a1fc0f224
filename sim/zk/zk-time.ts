/** A device-local wall-clock time; the protocol carries no zone. */
export interface WallClock {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

/** Encodes wall-clock time in the 31-days-per-month form of reference section 6 (years 2000–2099). */
export function encodeZkTime(t: WallClock): number {
  if (t.year < 2000 || t.year > 2099) throw new RangeError(`ZK time cannot encode year ${t.year}.`);
  return (
    (((t.year % 100) * 12 * 31 + (t.month - 1) * 31 + (t.day - 1)) * 86_400 +
      t.hour * 3600 +
      t.minute * 60 +
      t.second) >>>
    0
  );
}

/** Inverse divisions only; a year estimate from days/365 is the known wrong way to do it. */
export function decodeZkTime(value: number): WallClock {
  let t = value >>> 0;
  const second = t % 60;
  t = Math.floor(t / 60);
  const minute = t % 60;
  t = Math.floor(t / 60);
  const hour = t % 24;
  t = Math.floor(t / 24);
  const day = (t % 31) + 1;
  t = Math.floor(t / 31);
  const month = (t % 12) + 1;
  t = Math.floor(t / 12);
  return { year: t + 2000, month, day, hour, minute, second };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** "YYYY-MM-DD HH:mm:ss", the form tests and the CLI use for device-local times. */
export function formatWallClock(t: WallClock): string {
  return `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)} ${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;
}

const WALL_CLOCK_RE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/;

export function parseWallClock(text: string): WallClock {
  const m = WALL_CLOCK_RE.exec(text);
  if (!m) throw new TypeError(`Expected "YYYY-MM-DD HH:mm:ss", got "${text}".`);
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw new RangeError(`Time out of range: "${text}".`);
  }
  return { year, month, day, hour, minute, second };
}

/**
 * Wall-clock fields as milliseconds on a zone-less time line (Date.UTC of the fields). Stepping on
 * this line moves the wall clock by exactly that much, which is what a device's log shows.
 */
export function wallClockToNaiveMs(t: WallClock): number {
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
}

export function naiveMsToWallClock(ms: number): WallClock {
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/** The 6-byte YY MM DD hh mm ss form used inside real-time events. */
export function encodeEventTime(t: WallClock): Buffer {
  return Buffer.from([t.year - 2000, t.month, t.day, t.hour, t.minute, t.second]);
}
