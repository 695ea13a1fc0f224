import { type DeviceTime, decodeDeviceTime, decodeEventTime, isCalendarTime } from "./zk-codec.ts";

/** Attendance record sizes the buffered read returns; the device does not announce which one it uses. */
export const RECORD_SIZES = [40, 16, 8] as const;
export type RecordSize = (typeof RECORD_SIZES)[number];
export const USER_SIZES = [72, 28] as const;
export type UserSize = (typeof USER_SIZES)[number];

/**
 * Where each field sits in a record. Firmware disagrees even at one size: ZEM500/MA300 units write 8-byte records
 * with the time at offset 4 and state/verify packed in one byte (pyzk issues 56, 92, 99), others at offset 3.
 */
export const RECORD_LAYOUTS = ["tft40", "extended16", "compact8", "zem500"] as const;
export type RecordLayout = (typeof RECORD_LAYOUTS)[number];

export const LAYOUT_SIZE: Readonly<Record<RecordLayout, RecordSize>> = {
  tft40: 40,
  extended16: 16,
  compact8: 8,
  zem500: 8,
};

/** What an operator reads in status and logs. */
export const LAYOUT_LABEL: Readonly<Record<RecordLayout, string>> = {
  tft40: "40-byte (TFT)",
  extended16: "16-byte (extended)",
  compact8: "8-byte (compact, time at offset 3)",
  zem500: "8-byte (ZEM500, time at offset 4)",
};

export const layoutsOfSize = (size: RecordSize): RecordLayout[] =>
  RECORD_LAYOUTS.filter((l) => LAYOUT_SIZE[l] === size);

/** No ZK-encoded time can be earlier; a record claiming it is not a punch. */
const EARLIEST_TIME: DeviceTime = "2000-01-01T00:00:00";

export interface AttendanceRecord {
  /** Internal user index; the only identity an 8-byte record has. */
  readonly uid: number;
  /** Enrolled user id (PIN); undefined in 8-byte records until mapped through the user table. */
  readonly userId: string | undefined;
  readonly time: DeviceTime;
  readonly state: number;
  readonly verify: number;
  readonly workCode: number;
}

export interface UserRecord {
  readonly uid: number;
  readonly userId: string;
  readonly name: string;
  readonly privilege: number;
  readonly card: number;
}

/** ASCII up to the first NUL: firmware leaves garbage after it. */
function cString(buffer: Buffer, start: number, length: number): string {
  const end = Math.min(start + length, buffer.length);
  let stop = start;
  while (stop < end && buffer[stop] !== 0) stop++;
  return buffer.toString("latin1", start, stop).trim();
}

/** Offsets per research/zk-protocol.md §9; the field names of other clients disagree, the offsets do not. */
export function decodeAttendance(buffer: Buffer, offset: number, layout: RecordLayout): AttendanceRecord {
  switch (layout) {
    case "tft40":
      return {
        uid: buffer.readUInt16LE(offset),
        userId: cString(buffer, offset + 2, 24),
        verify: buffer.readUInt8(offset + 26),
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 27)),
        state: buffer.readUInt8(offset + 31),
        workCode: 0,
      };
    case "extended16":
      return {
        uid: 0,
        userId: String(buffer.readUInt32LE(offset)),
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 4)),
        state: buffer.readUInt8(offset + 8),
        verify: buffer.readUInt8(offset + 9),
        workCode: buffer.readUInt32LE(offset + 12),
      };
    case "compact8":
      return {
        uid: buffer.readUInt16LE(offset),
        userId: undefined,
        verify: buffer.readUInt8(offset + 2),
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 3)),
        state: buffer.readUInt8(offset + 7),
        workCode: 0,
      };
    case "zem500": {
      // The captured ZEM500 records hold 0x28 here: state 2 in the high nibble, verify 8 in the low one.
      const packed = buffer.readUInt8(offset + 2);
      return {
        uid: buffer.readUInt16LE(offset),
        userId: undefined,
        verify: packed & 0x0f,
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 4)),
        state: packed >> 4,
        workCode: 0,
      };
    }
  }
}

export function decodeUser(buffer: Buffer, offset: number, size: UserSize): UserRecord {
  if (size === 72) {
    return {
      uid: buffer.readUInt16LE(offset),
      privilege: buffer.readUInt8(offset + 2),
      name: cString(buffer, offset + 11, 24),
      card: buffer.readUInt32LE(offset + 35),
      userId: cString(buffer, offset + 48, 24),
    };
  }
  return {
    uid: buffer.readUInt16LE(offset),
    privilege: buffer.readUInt8(offset + 2),
    name: cString(buffer, offset + 8, 8),
    card: buffer.readUInt32LE(offset + 16),
    userId: String(buffer.readUInt32LE(offset + 24)),
  };
}

/**
 * Why a device time cannot be a punch, or undefined when it can. `latest` is the newest time the terminal could
 * have written: its own clock (or, when unknown, this machine's) plus a day of slack.
 */
function timeProblem(time: DeviceTime, latest: DeviceTime): string | undefined {
  if (!isCalendarTime(time)) return `impossible device time ${time}`;
  // Both are fixed-width "YYYY-MM-DDTHH:mm:ss", so text order is time order.
  if (time < EARLIEST_TIME) return `device time ${time} is before 2000`;
  if (time > latest) return `device time ${time} is more than a day after the terminal's clock`;
  return undefined;
}

/** Why a decoded record cannot become a punch, or undefined when it can. */
export function recordProblem(record: AttendanceRecord, latest: DeviceTime): string | undefined {
  const problem = timeProblem(record.time, latest);
  if (problem) return problem;
  if (record.userId !== undefined && record.userId === "") return "empty user id";
  return undefined;
}

/** How one candidate layout reads a sample of the log. */
export interface LayoutEvidence {
  readonly layout: RecordLayout;
  /** Records the whole set holds under this layout. */
  readonly records: number;
  readonly sampled: number;
  readonly plausible: number;
}

export interface LayoutChoice {
  /** Undefined when no candidate reads most of the sample as plausible punches, or two read it equally well. */
  readonly layout: RecordLayout | undefined;
  readonly evidence: readonly LayoutEvidence[];
  /** True when layouts of one size both read it plausibly and the evidence cannot tell them apart. */
  readonly ambiguous: boolean;
}

/**
 * Structure a record of this layout always has, beyond a plausible time. Both 8-byte layouts read each other's
 * records with believable times — a compact8 record read as zem500 takes its state byte as the top of the time and
 * lands in 2000–2003 — so what tells them apart is a byte each one fixes: zem500 writes 0 at offset 3 (every
 * captured record does), and compact8's state at offset 7 is a small code, where zem500's time has its top byte.
 */
function hasShape(buffer: Buffer, offset: number, layout: RecordLayout): boolean {
  switch (layout) {
    case "zem500":
      return buffer.readUInt8(offset + 3) === 0;
    case "compact8":
      return buffer.readUInt8(offset + 7) <= 0x0f;
    default:
      return true;
  }
}

const CLEAR_MARGIN = 0.25;

/**
 * Picks the record layout for a set of `dataBytes` (without the leading total) expected to hold about `count`
 * records, from `sample` (whole records from the start of what was read). Neither the count nor the length is
 * trusted alone: the count comes from a separate request (a punch in between moves it), and two layouts of one
 * size cannot be told apart by length at all. So every candidate that divides the set decodes the whole sample;
 * among those reading at least half of it as plausible punches of their own shape, with a record count within a
 * factor of two of the reported one, the best (most plausible, then nearest the count) wins, unless another of the same size reads it nearly as well. `prefer` (what a cursor
 * recorded before layouts were told apart) is kept whenever it still reads most of the sample.
 */
export function chooseRecordLayout(
  dataBytes: number,
  count: number,
  sample: Buffer,
  latest: DeviceTime,
  candidates: readonly RecordLayout[] = RECORD_LAYOUTS,
  prefer?: RecordLayout,
): LayoutChoice {
  const evidence: LayoutEvidence[] = [];
  const fits: Array<{ layout: RecordLayout; score: number; share: number }> = [];
  for (const layout of candidates) {
    const size = LAYOUT_SIZE[layout];
    if (dataBytes % size !== 0) continue;
    const records = dataBytes / size;
    const sampled = Math.floor(Math.min(sample.length, dataBytes) / size);
    let plausible = 0;
    for (let i = 0; i < sampled; i++) {
      const at = i * size;
      if (hasShape(sample, at, layout) && !recordProblem(decodeAttendance(sample, at, layout), latest)) plausible++;
    }
    evidence.push({ layout, records, sampled, plausible });
    // An empty sample proves nothing about times; the count alone decides.
    const share = sampled === 0 ? 1 : plausible / sampled;
    const countError = Math.abs(records - count) / Math.max(records, count, 1);
    // The count may be off by the punches made between the two requests, never by a factor of two: that is
    // another record size reading the bytes (16-byte records read as 8 find twice the records).
    if (share >= 0.5 && countError < 0.5) fits.push({ layout, score: share - countError, share });
  }
  const preferred = fits.find((f) => f.layout === prefer);
  if (preferred) return { layout: preferred.layout, evidence, ambiguous: false };
  fits.sort((a, b) => b.score - a.score);
  const [best, ...rest] = fits;
  if (!best) return { layout: undefined, evidence, ambiguous: false };
  const rival = rest.find((f) => LAYOUT_SIZE[f.layout] === LAYOUT_SIZE[best.layout]);
  if (rival && best.share - rival.share < CLEAR_MARGIN) return { layout: undefined, evidence, ambiguous: true };
  return { layout: best.layout, evidence, ambiguous: false };
}

export function detectUserSize(dataBytes: number, count: number): UserSize | undefined {
  if (dataBytes === 0) return undefined;
  for (const size of USER_SIZES) if (dataBytes % size === 0 && dataBytes / size === count) return size;
  for (const size of USER_SIZES) if (dataBytes % size === 0) return size;
  return undefined;
}

export interface AttendanceEvent {
  readonly userId: string;
  readonly verify: number;
  readonly state: number;
  readonly time: DeviceTime;
}

/** Real-time EF_ATTLOG data; the variants are told apart by length (research/zk-protocol.md §11). */
export function decodeAttendanceEvent(data: Buffer): AttendanceEvent | undefined {
  if (data.length >= 32) {
    return {
      userId: cString(data, 0, 24),
      verify: data.readUInt8(24),
      state: data.readUInt8(25),
      time: decodeEventTime(data, 26),
    };
  }
  if (data.length === 12) {
    return {
      userId: String(data.readUInt32LE(0)),
      verify: data.readUInt8(4),
      state: data.readUInt8(5),
      time: decodeEventTime(data, 6),
    };
  }
  if (data.length === 10 || data.length === 14) {
    // Only the internal uid: the caller maps it through the user table.
    return {
      userId: `#uid:${data.readUInt16LE(0)}`,
      verify: data.readUInt8(2),
      state: data.readUInt8(3) & 0x0f,
      time: decodeEventTime(data, 4),
    };
  }
  return undefined;
}

export interface FreeSizes {
  readonly users: number;
  readonly fingerprints: number;
  readonly records: number;
  readonly userCapacity: number;
  readonly recordCapacity: number;
  readonly fingerprintCapacity: number;
  readonly recordsFree: number;
  readonly faces?: number;
  readonly faceCapacity?: number;
}

export function decodeFreeSizes(data: Buffer): FreeSizes | undefined {
  if (data.length < 80) return undefined;
  const at = (offset: number) => data.readInt32LE(offset);
  const sizes: FreeSizes = {
    users: at(16),
    fingerprints: at(24),
    records: at(32),
    fingerprintCapacity: at(56),
    userCapacity: at(60),
    recordCapacity: at(64),
    recordsFree: at(76),
  };
  return data.length >= 92 ? { ...sizes, faces: at(80), faceCapacity: at(88) } : sizes;
}
