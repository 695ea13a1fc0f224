import {
  type DecodedRecord,
  decodeRecord,
  encodeRecord,
  type RawRecord,
  type RecordLayout,
  type RecordSize,
} from "./record-codec.ts";

/** An immutable view of a data set as a client downloads it: uint32 total, then the records. */
export interface DataSet {
  readonly size: number;
  /** Copies bytes [offset, offset + length) of the set, clamped to its end. */
  read(offset: number, length: number): Buffer;
}

/** A set built from two pieces without copying the (possibly 40 MB) body. */
export function dataSet(body: Buffer): DataSet {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(body.length, 0);
  const size = 4 + body.length;
  return {
    size,
    read(offset, length) {
      const start = Math.min(Math.max(0, offset), size);
      const end = Math.min(size, start + Math.max(0, length));
      const out = Buffer.allocUnsafe(end - start);
      let at = 0;
      if (start < 4) at += header.copy(out, 0, start, Math.min(4, end));
      if (end > 4) body.copy(out, at, Math.max(0, start - 4), end - 4);
      return out;
    },
  };
}

/**
 * The attendance log, kept in the device's own record format in one growing buffer: 1M 40-byte
 * records are 40 MB, not a million objects. Appends never touch bytes already handed out in a
 * snapshot, and clearing swaps the buffer, so a snapshot stays valid while the log moves on.
 */
export class AttendanceLog {
  readonly recordSize: RecordSize;
  readonly layout: RecordLayout;
  #buf: Buffer;
  #count = 0;

  constructor(recordSize: RecordSize, capacity = 1024, layout: RecordLayout = "standard") {
    this.recordSize = recordSize;
    this.layout = layout;
    this.#buf = Buffer.alloc(Math.max(1, capacity) * recordSize);
  }

  get count(): number {
    return this.#count;
  }

  append(record: RawRecord): number {
    this.#reserve(this.#count + 1);
    encodeRecord(this.recordSize, record, this.#buf, this.#count * this.recordSize, this.layout);
    return this.#count++;
  }

  /** Appends records exactly as given (captured bytes); `bytes` must hold whole records. */
  appendRaw(bytes: Buffer): void {
    if (bytes.length % this.recordSize !== 0) {
      throw new RangeError(`Raw records must be multiples of ${this.recordSize} bytes; got ${bytes.length}.`);
    }
    const count = bytes.length / this.recordSize;
    this.#reserve(this.#count + count);
    bytes.copy(this.#buf, this.#count * this.recordSize);
    this.#count += count;
  }

  /** Appends `count` records produced by `make(i)`; used to preload large logs quickly. */
  appendMany(count: number, make: (i: number) => RawRecord): void {
    this.#reserve(this.#count + count);
    for (let i = 0; i < count; i++) {
      encodeRecord(this.recordSize, make(i), this.#buf, (this.#count + i) * this.recordSize, this.layout);
    }
    this.#count += count;
  }

  at(index: number): DecodedRecord {
    if (index < 0 || index >= this.#count) throw new RangeError(`No record ${index}; the log holds ${this.#count}.`);
    return decodeRecord(this.recordSize, this.#buf, index * this.recordSize, this.layout);
  }

  snapshot(): DataSet {
    return dataSet(this.#buf.subarray(0, this.#count * this.recordSize));
  }

  clear(): void {
    this.#buf = Buffer.alloc(1024 * this.recordSize);
    this.#count = 0;
  }

  #reserve(records: number): void {
    const needed = records * this.recordSize;
    if (needed <= this.#buf.length) return;
    // Copy into a new buffer rather than growing in place so older snapshots keep their bytes.
    const next = Buffer.alloc(Math.max(needed, this.#buf.length * 2));
    this.#buf.copy(next, 0, 0, this.#count * this.recordSize);
    this.#buf = next;
  }
}
