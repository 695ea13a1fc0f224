import type { DataSet } from "./attendance-log.ts";
import { encodeUser, type SimUser, type UserSize } from "./record-codec.ts";

/** A terminal that claims more than it holds; each field turns one lie on. */
export interface HostileOptions {
  /** The attendance set's 1503 size info announces this many bytes; GET_FREE_SIZES stays truthful. */
  readonly announceBytes?: number;
  /** Every 1504 answer's PREPARE_DATA announces this many bytes, and the device streams that much. */
  readonly prepareBytes?: number;
  /** The user set holds this many users, far beyond the capacity GET_FREE_SIZES reports. */
  readonly userTableRecords?: number;
}

/** A terminal that drips its bulk answers: `bytesPerPacket` bytes of CMD_DATA every `intervalMs`. */
export interface TrickleOptions {
  readonly bytesPerPacket: number;
  readonly intervalMs: number;
}

const U32_MAX = 0xffff_ffff;

/**
 * Longest chunk a synthesized set hands out in one read. A client may ask for a chunk as large as
 * the announced set; answering it in full would allocate the very gigabytes the lie is about.
 */
export const MAX_SYNTHESIZED_READ = 1 << 20;

function checkU32(name: string, value: number | undefined, min: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > U32_MAX) {
    throw new RangeError(`${name} must be an integer from ${min} to ${U32_MAX}, got ${value}.`);
  }
}

export function checkHostile(h: HostileOptions | undefined, userSize: UserSize): HostileOptions | undefined {
  if (h === undefined) return undefined;
  // Size fields are u32 on the wire, and a set counts its own 4-byte total.
  checkU32("hostile.announceBytes", h.announceBytes, 4);
  checkU32("hostile.prepareBytes", h.prepareBytes, 0);
  const users = h.userTableRecords;
  if (users !== undefined && (!Number.isInteger(users) || users < 0 || 4 + users * userSize > U32_MAX)) {
    throw new RangeError(`hostile.userTableRecords must be an integer whose table fits in 4 GiB, got ${users}.`);
  }
  return { ...h };
}

export function checkTrickle(t: TrickleOptions | undefined): TrickleOptions | undefined {
  if (t === undefined) return undefined;
  if (!Number.isInteger(t.bytesPerPacket) || t.bytesPerPacket < 1) {
    throw new RangeError(`trickle.bytesPerPacket must be a positive integer, got ${t.bytesPerPacket}.`);
  }
  if (!Number.isFinite(t.intervalMs) || t.intervalMs < 0) {
    throw new RangeError(`trickle.intervalMs must be a non-negative number, got ${t.intervalMs}.`);
  }
  return { ...t };
}

let zeros = Buffer.alloc(64 * 1024);

/** `length` zero bytes; shared and never written, so handing out views of it is safe. */
export function filler(length: number): Buffer {
  if (length > zeros.length) zeros = Buffer.alloc(length);
  return zeros.subarray(0, length);
}

/** Copies the clamped range [offset, offset + length) of a set of `size` bytes via `fill(out, start)`. */
function synthesized(size: number, fill: (out: Buffer, start: number) => void): DataSet {
  return {
    size,
    read(offset, length) {
      const start = Math.min(Math.max(0, offset), size);
      const end = Math.min(size, start + Math.max(0, Math.min(length, MAX_SYNTHESIZED_READ)));
      const out = Buffer.alloc(end - start);
      fill(out, start);
      return out;
    },
  };
}

/**
 * The real attendance set claiming `announced` bytes: its leading total agrees with the claim, the
 * real records follow, and zeros stand in for the rest.
 */
export function oversizedSet(real: DataSet, announced: number): DataSet {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(announced - 4, 0);
  return synthesized(announced, (out, start) => {
    if (start < 4) header.copy(out, 0, start, Math.min(4, start + out.length));
    const from = Math.max(start, 4);
    const body = real.read(from, Math.max(0, start + out.length - from));
    body.copy(out, from - start);
  });
}

/**
 * A user set of `count` records built on demand: the enrolled users first, then made-up ones, so a
 * million-user table costs only the bytes of the chunk being read.
 */
export function syntheticUserSet(enrolled: readonly SimUser[], count: number, size: UserSize): DataSet {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(count * size, 0);
  const one = Buffer.alloc(size);
  return synthesized(4 + count * size, (out, start) => {
    if (start < 4) header.copy(out, 0, start, Math.min(4, start + out.length));
    const end = start + out.length;
    for (let i = Math.floor(Math.max(0, start - 4) / size); 4 + i * size < end; i++) {
      encodeUser(size, enrolled[i] ?? madeUpUser(i), one, 0);
      const at = 4 + i * size;
      one.copy(out, Math.max(0, at - start), Math.max(0, start - at), Math.min(size, end - at));
    }
  });
}

function madeUpUser(index: number): SimUser {
  const userId = String(1001 + index);
  // uid is a u16; a table this size must repeat them, which is part of what makes it implausible.
  return { uid: (index % 0xfffe) + 1, userId, name: `User ${userId}`, privilege: 0, password: "", card: 0 };
}
