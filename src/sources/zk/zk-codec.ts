/**
 * Bytes of the ZK binary protocol: the 8-byte header, its checksum, the TCP prefix and stream reassembly, the
 * device time encoding and the comm-key scrambling. Pure functions; no I/O. Layouts: research/zk-protocol.md.
 */

export const HEADER_SIZE = 8;
export const TCP_PREFIX_SIZE = 8;
const MAGIC_1 = 0x5050;
const MAGIC_2 = 0x7d82;

/**
 * No legitimate packet is larger than one bulk chunk (65,472 data bytes asked for; 64 KB allowed). A frame claiming
 * more is stream garbage that happened to contain the magic, and is skipped instead of waiting for it.
 */
export const MAX_PACKET_SIZE = HEADER_SIZE + 0x10000;

export interface ZkPacket {
  readonly command: number;
  readonly session: number;
  readonly replyId: number;
  readonly data: Buffer;
  /** False when the received checksum does not match the packet. */
  readonly checksumOk: boolean;
}

/** Ones'-complement sum of LE 16-bit words, a final odd byte counting as a word with high byte 0. */
function onesSum(buffer: Buffer, initial = 0): number {
  let sum = initial;
  const even = buffer.length & ~1;
  for (let i = 0; i < even; i += 2) sum += buffer.readUInt16LE(i);
  if (buffer.length & 1) sum += buffer.readUInt8(buffer.length - 1);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Checksum of a packet whose checksum field (offset 2) holds 0. */
export function checksum(packet: Buffer): number {
  return ~onesSum(packet) & 0xffff;
}

/** A packet verifies when the folded sum over everything, checksum included, is ones'-complement zero. */
export function verifyChecksum(packet: Buffer): boolean {
  const sum = onesSum(packet);
  return sum === 0xffff || sum === 0;
}

export function encodePacket(command: number, session: number, replyId: number, data?: Buffer): Buffer {
  const size = HEADER_SIZE + (data?.length ?? 0);
  const packet = Buffer.allocUnsafe(size);
  packet.writeUInt16LE(command, 0);
  packet.writeUInt16LE(0, 2);
  packet.writeUInt16LE(session & 0xffff, 4);
  packet.writeUInt16LE(replyId & 0xffff, 6);
  data?.copy(packet, HEADER_SIZE);
  packet.writeUInt16LE(checksum(packet), 2);
  return packet;
}

export function encodeTcpFrame(packet: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(TCP_PREFIX_SIZE + packet.length);
  frame.writeUInt16LE(MAGIC_1, 0);
  frame.writeUInt16LE(MAGIC_2, 2);
  frame.writeUInt32LE(packet.length, 4);
  packet.copy(frame, TCP_PREFIX_SIZE);
  return frame;
}

/** Decodes one packet; undefined when it is shorter than a header. */
export function decodePacket(packet: Buffer): ZkPacket | undefined {
  if (packet.length < HEADER_SIZE) return undefined;
  return {
    command: packet.readUInt16LE(0),
    session: packet.readUInt16LE(4),
    replyId: packet.readUInt16LE(6),
    data: packet.subarray(HEADER_SIZE),
    checksumOk: verifyChecksum(packet),
  };
}

/**
 * Turns a TCP byte stream into ZK packets. TCP keeps no message boundaries: one read may hold several packets and
 * one packet may span many reads, so framing goes by the prefix length only. Bytes that do not start a valid
 * prefix are skipped up to the next magic, so garbage on the line costs the packets it overlaps, not the session.
 */
export class TcpFrameReader {
  #chunks: Buffer[] = [];
  #length = 0;
  /** Bytes dropped while resynchronising; visible for diagnostics. */
  discardedBytes = 0;

  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const packets: Buffer[] = [];
    for (;;) {
      if (this.#length < TCP_PREFIX_SIZE) break;
      const head = this.#peek(TCP_PREFIX_SIZE);
      if (head.readUInt16LE(0) !== MAGIC_1 || head.readUInt16LE(2) !== MAGIC_2) {
        this.#resync();
        continue;
      }
      const size = head.readUInt32LE(4);
      if (size < HEADER_SIZE || size > MAX_PACKET_SIZE) {
        this.#skip(1);
        this.discardedBytes++;
        continue;
      }
      if (this.#length < TCP_PREFIX_SIZE + size) break;
      const frame = this.#take(TCP_PREFIX_SIZE + size);
      packets.push(frame.subarray(TCP_PREFIX_SIZE));
    }
    return packets;
  }

  get buffered(): number {
    return this.#length;
  }

  /** Drops bytes until the buffer starts with the magic (or only a partial magic remains). */
  #resync(): void {
    const all = this.#peek(this.#length);
    let at = 1;
    for (; at < all.length; at++) {
      if (all[at] !== 0x50) continue;
      const rest = all.length - at;
      if (rest >= 4 && all.readUInt16LE(at) === MAGIC_1 && all.readUInt16LE(at + 2) === MAGIC_2) break;
      if (rest < 4 && all.subarray(at).equals(Buffer.from([0x50, 0x50, 0x82, 0x7d]).subarray(0, rest))) break;
    }
    this.discardedBytes += at;
    this.#skip(at);
  }

  /** The first `n` bytes as one buffer, merging chunks only as far as needed. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first && first.length >= n) return first.subarray(0, n);
    const merged = Buffer.concat(this.#chunks, this.#length);
    this.#chunks = [merged];
    return merged.subarray(0, n);
  }

  #take(n: number): Buffer {
    const out = this.#peek(n);
    this.#skip(n);
    return out;
  }

  #skip(n: number): void {
    let left = n;
    while (left > 0) {
      const first = this.#chunks[0];
      if (!first) break;
      if (first.length <= left) {
        this.#chunks.shift();
        left -= first.length;
      } else {
        this.#chunks[0] = first.subarray(left);
        left = 0;
      }
    }
    this.#length -= n - left;
  }
}

/** Device wall-clock time, zone-less, as "YYYY-MM-DDTHH:mm:ss". */
export type DeviceTime = string;

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Decodes the packed uint32 time. Every month counts 31 days, so this is not an epoch: only inverse divisions. */
export function decodeDeviceTime(value: number): DeviceTime {
  let t = value;
  const second = t % 60;
  t = Math.floor(t / 60);
  const minute = t % 60;
  t = Math.floor(t / 60);
  const hour = t % 24;
  t = Math.floor(t / 24);
  const day = (t % 31) + 1;
  t = Math.floor(t / 31);
  const month = (t % 12) + 1;
  const year = Math.floor(t / 12) + 2000;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}`;
}

export function encodeDeviceTime(time: DeviceTime): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(time);
  if (!m) throw new RangeError(`Not a device time: ${time}`);
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < 2000 || year > 2099) throw new RangeError(`Device clocks hold 2000-2099 only, not ${year}`);
  return (((year % 100) * 12 * 31 + (month - 1) * 31 + (day - 1)) * 86400 + hour * 3600 + minute * 60 + second) >>> 0;
}

/** Real-time events carry the time as six bytes: YY MM DD hh mm ss. */
export function decodeEventTime(bytes: Buffer, offset: number): DeviceTime {
  const b = (i: number) => bytes[offset + i] ?? 0;
  return `${pad(2000 + b(0), 4)}-${pad(b(1))}-${pad(b(2))}T${pad(b(3))}:${pad(b(4))}:${pad(b(5))}`;
}

/** True when the text names a real calendar moment (the packed form also encodes 31 February). */
export function isCalendarTime(time: DeviceTime): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(time);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 59) return false;
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** The 4 bytes of CMD_AUTH for a numeric comm key (research/zk-protocol.md §4). */
export function commKeyBytes(key: number, session: number, ticks = 50): Buffer {
  let reversed = 0;
  for (let i = 0; i < 32; i++) if (key & (2 ** i)) reversed += 2 ** (31 - i);
  const k = (reversed + session) % 2 ** 32;
  const b = Buffer.alloc(4);
  b.writeUInt32LE(k, 0);
  // XOR with "ZKSO", then swap the 16-bit halves: c0 c1 c2 c3 = b2 b3 b0 b1. c2 is replaced by the clear ticks byte.
  const c0 = b.readUInt8(2) ^ 0x53;
  const c1 = b.readUInt8(3) ^ 0x4f;
  const c3 = b.readUInt8(1) ^ 0x4b;
  const t = ticks & 0xff;
  return Buffer.from([c0 ^ t, c1 ^ t, t, c3 ^ t]);
}
