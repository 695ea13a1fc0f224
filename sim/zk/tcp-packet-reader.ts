import { TCP_MAGIC, TCP_PREFIX_SIZE, ZK_HEADER_SIZE } from "./zk-packet.ts";

/** Packets bigger than this are treated as a corrupt prefix rather than waited for. */
const MAX_PACKET = 1 << 20;

/**
 * Reassembles ZK packets from a TCP byte stream. TCP keeps no message boundaries, so packets are
 * cut by the prefix length; bytes that do not start with the magic are skipped until it appears.
 */
export class TcpPacketReader {
  #pending: Buffer = Buffer.alloc(0);
  #skipped = 0;

  /** Bytes thrown away while hunting for the magic (garbage on the line). */
  get skippedBytes(): number {
    return this.#skipped;
  }

  /** Feeds one received segment; returns every complete ZK packet (header + data, no prefix). */
  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const packets: Buffer[] = [];
    for (;;) {
      const start = this.#resync();
      if (start < 0 || this.#pending.length < TCP_PREFIX_SIZE) break;
      const length = this.#pending.readUInt32LE(4);
      if (length < ZK_HEADER_SIZE || length > MAX_PACKET) {
        // A magic followed by an impossible length is noise: drop one byte and look again.
        this.#drop(1);
        continue;
      }
      if (this.#pending.length < TCP_PREFIX_SIZE + length) break;
      packets.push(Buffer.from(this.#pending.subarray(TCP_PREFIX_SIZE, TCP_PREFIX_SIZE + length)));
      this.#pending = this.#pending.subarray(TCP_PREFIX_SIZE + length);
    }
    return packets;
  }

  /** Drops bytes before the next magic; returns -1 when more bytes are needed to decide. */
  #resync(): number {
    const at = this.#pending.indexOf(TCP_MAGIC);
    if (at === 0) return 0;
    if (at > 0) {
      this.#drop(at);
      return 0;
    }
    // Keep a tail that could be the start of a magic split across segments.
    const keep = Math.min(this.#pending.length, TCP_MAGIC.length - 1);
    this.#drop(this.#pending.length - keep);
    return -1;
  }

  #drop(count: number): void {
    this.#skipped += count;
    this.#pending = this.#pending.subarray(count);
  }
}
