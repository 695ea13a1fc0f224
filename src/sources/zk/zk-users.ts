import { decodeUser, detectUserSize, type UserSize } from "./zk-records.ts";

/**
 * Decodes a user table as its chunks arrive, so only the uid → user id map is kept, never the table itself
 * (a 72-byte user costs a few dozen bytes in the map). Feed it every chunk of the set in order, from offset 0.
 */
export class UserTableReader {
  readonly users = new Map<number, string>();
  readonly #count: number;
  #size: UserSize | undefined;
  #carry: Buffer = Buffer.alloc(0);
  #decided = false;

  /** `count` is the user count the terminal reported; it picks the user size along with the table's length. */
  constructor(count: number) {
    this.#count = count;
  }

  /** Undefined until the first chunk, or when no user size divides the table. */
  get size(): UserSize | undefined {
    return this.#size;
  }

  push(chunk: Buffer, offset: number, total: number): void {
    let data = chunk;
    if (offset === 0) {
      data = chunk.subarray(4);
      this.#size = detectUserSize(total - 4, this.#count);
      this.#decided = true;
    }
    const size = this.#size;
    if (!this.#decided || !size) return;
    const bytes = this.#carry.length > 0 ? Buffer.concat([this.#carry, data]) : data;
    const whole = bytes.length - (bytes.length % size);
    for (let at = 0; at < whole; at += size) {
      const user = decodeUser(bytes, at, size);
      this.users.set(user.uid, user.userId);
    }
    // A copy: the chunk's buffer would otherwise stay alive for a few trailing bytes.
    this.#carry = Buffer.from(bytes.subarray(whole));
  }
}
