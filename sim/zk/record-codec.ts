import { encodeEventTime, type WallClock } from "./zk-time.ts";

export const RECORD_SIZES = [8, 16, 40] as const;
export type RecordSize = (typeof RECORD_SIZES)[number];
export const USER_SIZES = [28, 72] as const;
export type UserSize = (typeof USER_SIZES)[number];
/**
 * Byte orders of the 8-byte record. "standard" is the vendor manual's; "zem500" is what ZEM500/MA300
 * firmware was captured sending (pyzk issue 99): state and verify share one byte, the time sits at 4.
 */
export const RECORD_LAYOUTS = ["standard", "zem500"] as const;
export type RecordLayout = (typeof RECORD_LAYOUTS)[number];
export const EVENT_FORMATS = [32, 36, 52] as const;
export type EventFormat = (typeof EVENT_FORMATS)[number];

/** One attendance record with the time still in its encoded uint32 form. */
export interface RawRecord {
  readonly uid: number;
  readonly userId: string;
  readonly time: number;
  readonly state: number;
  readonly verify: number;
  readonly workCode: number;
}

export interface SimUser {
  readonly uid: number;
  readonly userId: string;
  readonly name: string;
  readonly privilege: number;
  readonly password: string;
  readonly card: number;
}

function writeAscii(buf: Buffer, offset: number, width: number, text: string): void {
  buf.fill(0, offset, offset + width);
  // Leave room for a terminating NUL, as devices do.
  buf.write(text.slice(0, width - 1), offset, "latin1");
}

function readAscii(buf: Buffer, offset: number, width: number): string {
  const field = buf.subarray(offset, offset + width);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? width : nul).toString("latin1");
}

function numericUserId(userId: string, format: string): number {
  if (!/^\d{1,10}$/.test(userId) || Number(userId) > 0xffff_ffff) {
    throw new RangeError(`${format} stores user IDs as numbers; "${userId}" is not one.`);
  }
  return Number(userId);
}

/**
 * Writes one record at `offset` (layouts of reference section 9). The uid is the only identity in
 * the 8-byte form; the 16-byte form keeps only a numeric user ID. `layout` matters for size 8 only.
 */
export function encodeRecord(
  size: RecordSize,
  r: RawRecord,
  buf: Buffer,
  offset: number,
  layout: RecordLayout = "standard",
): void {
  buf.fill(0, offset, offset + size);
  switch (size) {
    case 40:
      buf.writeUInt16LE(r.uid, offset);
      writeAscii(buf, offset + 2, 24, r.userId);
      buf.writeUInt8(r.verify, offset + 26);
      buf.writeUInt32LE(r.time, offset + 27);
      buf.writeUInt8(r.state, offset + 31);
      // Captures show 00 00 00 00 FF 00 00 00 here; storing the work code in the first four bytes is our guess.
      buf.writeUInt32LE(r.workCode, offset + 32);
      buf.writeUInt8(0xff, offset + 36);
      return;
    case 16:
      buf.writeUInt32LE(numericUserId(r.userId, "16-byte records"), offset);
      buf.writeUInt32LE(r.time, offset + 4);
      buf.writeUInt8(r.state, offset + 8);
      buf.writeUInt8(r.verify, offset + 9);
      buf.writeUInt32LE(r.workCode, offset + 12);
      return;
    case 8:
      buf.writeUInt16LE(r.uid, offset);
      if (layout === "zem500") {
        // Two nibbles cannot hold more; masking would silently turn one punch into another.
        if (r.state > 0x0f || r.verify > 0x0f) {
          throw new RangeError(`ZEM500 records keep state and verify in 4 bits each; got ${r.state} and ${r.verify}.`);
        }
        buf.writeUInt8((r.state << 4) | r.verify, offset + 2);
        buf.writeUInt32LE(r.time, offset + 4);
        return;
      }
      buf.writeUInt8(r.verify, offset + 2);
      buf.writeUInt32LE(r.time, offset + 3);
      buf.writeUInt8(r.state, offset + 7);
      return;
  }
}

/** What a record of each size carries; the missing identity (uid or user ID) is filled in by the caller. */
export interface DecodedRecord {
  readonly uid: number | undefined;
  readonly userId: string | undefined;
  readonly time: number;
  readonly state: number;
  readonly verify: number;
  readonly workCode: number;
}

export function decodeRecord(
  size: RecordSize,
  buf: Buffer,
  offset: number,
  layout: RecordLayout = "standard",
): DecodedRecord {
  switch (size) {
    case 40:
      return {
        uid: buf.readUInt16LE(offset),
        userId: readAscii(buf, offset + 2, 24),
        verify: buf.readUInt8(offset + 26),
        time: buf.readUInt32LE(offset + 27),
        state: buf.readUInt8(offset + 31),
        workCode: buf.readUInt32LE(offset + 32),
      };
    case 16:
      return {
        uid: undefined,
        userId: String(buf.readUInt32LE(offset)),
        time: buf.readUInt32LE(offset + 4),
        state: buf.readUInt8(offset + 8),
        verify: buf.readUInt8(offset + 9),
        workCode: buf.readUInt32LE(offset + 12),
      };
    case 8:
      if (layout === "zem500") {
        const packed = buf.readUInt8(offset + 2);
        return {
          uid: buf.readUInt16LE(offset),
          userId: undefined,
          verify: packed & 0x0f,
          time: buf.readUInt32LE(offset + 4),
          state: packed >> 4,
          workCode: 0,
        };
      }
      return {
        uid: buf.readUInt16LE(offset),
        userId: undefined,
        verify: buf.readUInt8(offset + 2),
        time: buf.readUInt32LE(offset + 3),
        state: buf.readUInt8(offset + 7),
        workCode: 0,
      };
  }
}

export function encodeUser(size: UserSize, u: SimUser, buf: Buffer, offset: number): void {
  buf.fill(0, offset, offset + size);
  buf.writeUInt16LE(u.uid, offset);
  buf.writeUInt8(u.privilege, offset + 2);
  if (size === 72) {
    writeAscii(buf, offset + 3, 8, u.password);
    writeAscii(buf, offset + 11, 24, u.name);
    buf.writeUInt32LE(u.card, offset + 35);
    writeAscii(buf, offset + 48, 24, u.userId);
    return;
  }
  writeAscii(buf, offset + 3, 5, u.password);
  writeAscii(buf, offset + 8, 8, u.name);
  buf.writeUInt32LE(u.card, offset + 16);
  buf.writeUInt8(1, offset + 21);
  buf.writeUInt32LE(numericUserId(u.userId, "28-byte users"), offset + 24);
}

export function decodeUser(size: UserSize, buf: Buffer, offset: number): SimUser {
  if (size === 72) {
    return {
      uid: buf.readUInt16LE(offset),
      privilege: buf.readUInt8(offset + 2),
      password: readAscii(buf, offset + 3, 8),
      name: readAscii(buf, offset + 11, 24),
      card: buf.readUInt32LE(offset + 35),
      userId: readAscii(buf, offset + 48, 24),
    };
  }
  return {
    uid: buf.readUInt16LE(offset),
    privilege: buf.readUInt8(offset + 2),
    password: readAscii(buf, offset + 3, 5),
    name: readAscii(buf, offset + 8, 8),
    card: buf.readUInt32LE(offset + 16),
    userId: String(buf.readUInt32LE(offset + 24)),
  };
}

/** EF_ATTLOG event data (section 11): 32 bytes, plus a u32 work code (36) or 20 zero bytes (52). */
export function encodeAttendanceEvent(
  format: EventFormat,
  e: { readonly userId: string; readonly verify: number; readonly state: number; readonly workCode: number },
  time: WallClock,
): Buffer {
  const out = Buffer.alloc(format);
  writeAscii(out, 0, 24, e.userId);
  out.writeUInt8(e.verify, 24);
  out.writeUInt8(e.state, 25);
  encodeEventTime(time).copy(out, 26);
  if (format === 36) out.writeUInt32LE(e.workCode, 32);
  return out;
}
