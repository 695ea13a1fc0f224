import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { once } from "node:events";
import { connect, type Socket } from "node:net";

/**
 * Test-only ZK client with its own few helpers. It deliberately shares no codec with the
 * simulator, so a bug in one is not mirrored by the other.
 */
export interface RawPacket {
  readonly command: number;
  readonly session: number;
  readonly replyId: number;
  readonly data: Buffer;
  readonly isChecksumValid: boolean;
}

const MAGIC = Buffer.from("5050827d", "hex");

function sum16(bytes: Buffer): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i] ?? 0) | ((bytes[i + 1] ?? 0) << 8);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function rawEncode(command: number, session: number, replyId: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const p = Buffer.alloc(8 + data.length);
  p.writeUInt16LE(command, 0);
  p.writeUInt16LE(session, 4);
  p.writeUInt16LE(replyId, 6);
  data.copy(p, 8);
  p.writeUInt16LE(~sum16(p) & 0xffff, 2);
  return p;
}

function rawDecode(p: Buffer): RawPacket {
  const folded = sum16(p);
  return {
    command: p.readUInt16LE(0),
    session: p.readUInt16LE(4),
    replyId: p.readUInt16LE(6),
    data: Buffer.from(p.subarray(8)),
    isChecksumValid: folded === 0xffff || folded === 0,
  };
}

/** The 4 CMD_AUTH bytes, re-derived here from the reference text rather than imported. */
export function rawCommKey(key: number, session: number, ticks = 50): Buffer {
  let rev = 0;
  for (let i = 0; i < 32; i++) if ((key >>> i) & 1) rev = (rev | (1 << (31 - i))) >>> 0;
  const k = Buffer.alloc(4);
  k.writeUInt32LE((rev + session) >>> 0, 0);
  const x = [0x5a, 0x4b, 0x53, 0x4f].map((salt, i) => (k[i] as number) ^ salt);
  return Buffer.from([(x[2] as number) ^ ticks, (x[3] as number) ^ ticks, ticks, (x[1] as number) ^ ticks]);
}

export class RawZkClient {
  readonly transport: "tcp" | "udp";
  session = 0;
  replyId = 0;
  /** Pushed events (command 500, reply id 0). */
  readonly events: RawPacket[] = [];
  /** Size of every socket read or datagram, to see how replies were cut. */
  readonly reads: Buffer[] = [];
  bytesReceived = 0;
  isClosed = false;
  readonly #tcp: Socket | undefined;
  readonly #udp: UdpSocket | undefined;
  readonly #port: number;
  readonly #host: string;
  #pending = Buffer.alloc(0);
  readonly #queue: RawPacket[] = [];
  #wake: (() => void) | undefined;

  private constructor(tcp: Socket | undefined, udp: UdpSocket | undefined, host: string, port: number) {
    this.transport = tcp ? "tcp" : "udp";
    this.#tcp = tcp;
    this.#udp = udp;
    this.#host = host;
    this.#port = port;
    tcp?.on("data", (chunk: Buffer) => this.#onTcp(chunk));
    tcp?.on("close", () => this.#onClose());
    tcp?.on("error", () => undefined);
    udp?.on("message", (msg) => {
      this.reads.push(msg);
      this.bytesReceived += msg.length;
      this.#deliver(rawDecode(msg));
    });
  }

  static async tcp(port: number, host = "127.0.0.1"): Promise<RawZkClient> {
    const socket = connect(port, host);
    await once(socket, "connect");
    socket.setNoDelay(true);
    return new RawZkClient(socket, undefined, host, port);
  }

  static async udp(port: number, host = "127.0.0.1"): Promise<RawZkClient> {
    const socket = createSocket("udp4");
    socket.bind(0, host);
    await once(socket, "listening");
    return new RawZkClient(undefined, socket, host, port);
  }

  /** Sends one request with the next reply id; returns that id. */
  send(command: number, data: Buffer = Buffer.alloc(0)): number {
    this.replyId = (this.replyId + 1) & 0xffff;
    this.sendRaw(rawEncode(command, this.session, this.replyId, data));
    return this.replyId;
  }

  /** Sends one ZK packet (TCP adds the prefix). */
  sendRaw(packet: Buffer): void {
    if (this.#tcp) {
      const prefix = Buffer.alloc(8);
      MAGIC.copy(prefix);
      prefix.writeUInt32LE(packet.length, 4);
      this.#tcp.write(Buffer.concat([prefix, packet]));
    } else this.#udp?.send(packet, this.#port, this.#host);
  }

  /**
   * Next packet that is not a pushed event; rejects after timeoutMs or when the socket closes. The default is
   * generous because a loaded machine can hold a reply back for seconds; a test expecting silence passes its own.
   */
  async next(timeoutMs = 10_000): Promise<RawPacket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.#queue.shift();
      if (p) return p;
      if (this.isClosed) throw new Error("Socket closed.");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`No packet within ${timeoutMs} ms.`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Waits until at least `count` events have arrived. */
  async waitForEvents(count: number, timeoutMs = 10_000): Promise<RawPacket[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (Date.now() > deadline) throw new Error(`Only ${this.events.length} of ${count} events arrived.`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.events;
  }

  async call(command: number, data?: Buffer, timeoutMs?: number): Promise<RawPacket> {
    this.send(command, data);
    return this.next(timeoutMs);
  }

  /** CONNECT, then CMD_AUTH when the device asks for a key. */
  async connect(commKey?: number): Promise<RawPacket> {
    this.replyId = 0xffff;
    this.session = 0;
    const reply = await this.call(1000);
    this.session = reply.session;
    if (reply.command === 2005 && commKey !== undefined) return this.call(1102, rawCommKey(commKey, this.session));
    return reply;
  }

  /** Collects one 1504-style answer: PREPARE_DATA, CMD_DATA..., ACK_OK. */
  async collectBulk(timeoutMs = 10_000): Promise<{ packets: RawPacket[]; data: Buffer }> {
    const packets: RawPacket[] = [];
    for (;;) {
      const p = await this.next(timeoutMs);
      packets.push(p);
      if (p.command === 2000 || p.command === 2001) break;
    }
    const data = Buffer.concat(packets.filter((p) => p.command === 1501).map((p) => p.data));
    return { packets, data };
  }

  /** 1503 for a set, 1504 chunks one at a time, then 1502; returns the whole set. */
  async readSet(which: "attendance" | "users", chunk = 16_384): Promise<Buffer> {
    const req = Buffer.from(which === "attendance" ? "010d000000000000000000" : "0109000500000000000000", "hex");
    const info = await this.call(1503, req);
    if (info.command === 1501) return info.data;
    if (info.command !== 2000) throw new Error(`1503 answered ${info.command}.`);
    const size = info.data.readUInt32LE(1);
    const parts: Buffer[] = [];
    for (let offset = 0; offset < size; offset += chunk) {
      const body = Buffer.alloc(8);
      body.writeUInt32LE(offset, 0);
      body.writeUInt32LE(Math.min(chunk, size - offset), 4);
      this.send(1504, body);
      parts.push((await this.collectBulk()).data);
    }
    await this.call(1502);
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    if (this.#tcp && !this.#tcp.destroyed) {
      this.#tcp.destroy();
      await once(this.#tcp, "close");
    }
    if (this.#udp && !this.isClosed) {
      this.isClosed = true;
      await new Promise<void>((resolve) => this.#udp?.close(() => resolve()));
    }
  }

  #onTcp(chunk: Buffer): void {
    this.reads.push(chunk);
    this.bytesReceived += chunk.length;
    this.#pending = Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 8) {
      const at = this.#pending.indexOf(MAGIC);
      if (at !== 0) {
        // Resync past junk; keep 3 bytes in case a magic is split across reads.
        this.#pending = this.#pending.subarray(at > 0 ? at : this.#pending.length - 3);
        if (at < 0) break;
        continue;
      }
      const length = this.#pending.readUInt32LE(4);
      if (this.#pending.length < 8 + length) break;
      this.#deliver(rawDecode(this.#pending.subarray(8, 8 + length)));
      this.#pending = this.#pending.subarray(8 + length);
    }
  }

  #deliver(p: RawPacket): void {
    if (p.command === 500 && p.replyId === 0) this.events.push(p);
    else this.#queue.push(p);
    this.#wake?.();
  }

  #onClose(): void {
    this.isClosed = true;
    this.#wake?.();
  }
}
