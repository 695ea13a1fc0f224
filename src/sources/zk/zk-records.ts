import { type DeviceTime, decodeDeviceTime, decodeEventTime, isCalendarTime } from "./zk-codec.ts";

/** Attendance record sizes the buffered read returns; the device does not announce which one it uses. */
export const RECORD_SIZES = [40, 16, 8] as const;
export type RecordSize = (typeof RECORD_SIZES)[number];
export const USER_SIZES = [72, 28] as const;
export type UserSize = (typeof USER_SIZES)[number];

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
export function decodeAttendance(buffer: Buffer, offset: number, size: RecordSize): AttendanceRecord {
  switch (size) {
    case 40:
      return {
        uid: buffer.readUInt16LE(offset),
        userId: cString(buffer, offset + 2, 24),
        verify: buffer.readUInt8(offset + 26),
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 27)),
        state: buffer.readUInt8(offset + 31),
        workCode: 0,
      };
    case 16:
      return {
        uid: 0,
        userId: String(buffer.readUInt32LE(offset)),
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 4)),
        state: buffer.readUInt8(offset + 8),
        verify: buffer.readUInt8(offset + 9),
        workCode: buffer.readUInt32LE(offset + 12),
      };
    case 8:
      return {
        uid: buffer.readUInt16LE(offset),
        userId: undefined,
        verify: buffer.readUInt8(offset + 2),
        time: decodeDeviceTime(buffer.readUInt32LE(offset + 3)),
        state: buffer.readUInt8(offset + 7),
        workCode: 0,
      };
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

/** Why a decoded record cannot become a punch, or undefined when it can. */
export function recordProblem(record: AttendanceRecord): string | undefined {
  if (!isCalendarTime(record.time)) return `impossible device time ${record.time}`;
  if (record.userId !== undefined && record.userId === "") return "empty user id";
  return undefined;
}

/**
 * Picks the record size for a set of `dataBytes` (without the leading total) expected to hold about `count`
 * records. Neither clue is trusted alone: the count comes from a separate request (a punch in between, or a long
 * wait, moves it) and a log may open with a corrupt record. Among the sizes that divide the set evenly, the one
 * whose record count is nearest and whose sample decodes to plausible times wins; undefined only when no size fits.
 */
export function detectRecordSize(dataBytes: number, count: number, sample?: Buffer): RecordSize | undefined {
  let best: { size: RecordSize; score: number } | undefined;
  for (const size of RECORD_SIZES) {
    if (dataBytes % size !== 0) continue;
    const n = dataBytes / size;
    const countError = Math.abs(n - count) / Math.max(n, count, 1);
    let badShare = 0;
    if (sample && sample.length >= size) {
      const seen = Math.min(Math.floor(sample.length / size), 16);
      let bad = 0;
      for (let i = 0; i < seen; i++) if (recordProblem(decodeAttendance(sample, i * size, size))) bad++;
      badShare = bad / seen;
    }
    const score = countError + badShare;
    if (!best || score < best.score) best = { size, score };
  }
  return best?.size;
}

export function detectUserSize(dataBytes: number, count: number): UserSize | undefined {
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
