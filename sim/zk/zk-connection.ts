import { setTimeout as sleep } from "node:timers/promises";
import type { FaultBook } from "./fault-book.ts";
import type { ReplyStream } from "./reply-stream.ts";
import { SeededRandom } from "./seeded-random.ts";
import { TcpPacketReader } from "./tcp-packet-reader.ts";
import { type LinkOptions, VirtualWire } from "./virtual-wire.ts";
import { isZkChecksumValid } from "./zk-checksum.ts";
import { ZK_CMD } from "./zk-commands.ts";
import type { EventTarget, Reply, SessionState, Transport, ZkDevice } from "./zk-device.ts";
import { decodeZkPacket, encodeZkPacket, frameTcp, type ZkPacket } from "./zk-packet.ts";

export const WRITE_MODES = ["normal", "paced", "merged", "split"] as const;
export type WriteMode = (typeof WRITE_MODES)[number];

/** The socket side of one connection: a TCP socket or one UDP peer. */
export interface Conduit {
  /** One socket write (TCP) or one datagram (UDP). */
  write(bytes: Buffer): void;
  /** Graceful: end after queued bytes; otherwise destroy at once. */
  close(graceful: boolean): void;
  /** Resolves when the socket's own buffer has room again (TCP backpressure). */
  whenWritable(): Promise<void>;
}

export interface ConnectionOptions {
  readonly transport: Transport;
  readonly writeMode: WriteMode;
  readonly link: LinkOptions | undefined;
  readonly pacingMs: number;
  readonly seed: number;
  readonly onClosed: (connection: ZkConnection) => void;
}

/** Keep at most this much of a reply on a slow virtual wire before producing the next one. */
const WIRE_HIGH_WATER = 512 * 1024;
const TCP_SEGMENT = 1448;
const TCP_IP_ETHERNET_OVERHEAD = 52 + 18;
const UDP_IP_ETHERNET_OVERHEAD = 28 + 18;
/** A UDP flood sends this many datagrams per millisecond at most, so it cannot starve the event loop. */
const UDP_FLOOD_BURST = 8;

/**
 * Whether a request makes the device abandon a streamed answer. Pipelined chunk requests wait their
 * turn (a dripping chunk must stay a drip), and event acknowledgements are not requests at all.
 */
function endsStream(packet: Buffer): boolean {
  if (packet.length < 8) return false;
  const command = packet.readUInt16LE(0);
  return command !== ZK_CMD.DATA_RDY && command !== ZK_CMD.ACK_OK;
}

/**
 * One client session. Requests are answered strictly in arrival order (clients pipeline 1504s),
 * replies and pushed events share one output chain so an event never lands inside a bulk reply.
 */
export class ZkConnection implements EventTarget {
  readonly state: SessionState;
  readonly #device: ZkDevice;
  readonly #faults: FaultBook;
  readonly #conduit: Conduit;
  readonly #options: ConnectionOptions;
  readonly #reader: TcpPacketReader | undefined;
  readonly #inWire: VirtualWire | undefined;
  readonly #outWire: VirtualWire | undefined;
  readonly #random: SeededRandom;
  readonly #inbox: Buffer[] = [];
  #isPumping = false;
  #isClosed = false;
  /** Set while a streamed answer is going out; aborting it ends the stream at the next packet. */
  #streamAbort: AbortController | undefined;
  #outChain: Promise<void> = Promise.resolve();

  constructor(device: ZkDevice, faults: FaultBook, conduit: Conduit, options: ConnectionOptions) {
    this.#device = device;
    this.#faults = faults;
    this.#conduit = conduit;
    this.#options = options;
    this.state = device.newSession(options.transport);
    this.#reader = options.transport === "tcp" ? new TcpPacketReader() : undefined;
    this.#inWire = options.link ? new VirtualWire(options.link) : undefined;
    this.#outWire = options.link ? new VirtualWire(options.link) : undefined;
    this.#random = new SeededRandom(options.seed);
    device.register(this);
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /**
   * Raw bytes from the socket (TCP segment or whole datagram). Packets are framed and logged here, on
   * arrival, so a test sees what the client sent even when the device then stalls or stays silent.
   */
  receive(bytes: Buffer): void {
    if (this.#isClosed) return;
    const stats = this.#device.stats;
    stats.bytesReceived += bytes.length;
    const skippedBefore = this.#reader?.skippedBytes ?? 0;
    const packets = this.#reader ? this.#reader.push(bytes) : [bytes];
    stats.garbageBytesSkipped += (this.#reader?.skippedBytes ?? 0) - skippedBefore;
    for (const p of packets) {
      stats.packetsReceived++;
      if (!isZkChecksumValid(p)) stats.checksumMismatches++;
      this.#device.noteReceived(this.#options.transport, p);
    }
    // Every segment crosses the wire, complete packets or not, so the link model keeps its timing.
    if (this.#inWire) this.#inWire.send(bytes.length, () => this.#accept(packets));
    else this.#accept(packets);
  }

  pushEvent(packet: ZkPacket): void {
    this.#enqueueOut({ packets: [packet] }, true).catch(() => this.#shutdown(false));
  }

  /** Closes at once: sockets, timers, queued work. */
  destroy(): void {
    this.#shutdown(false);
  }

  #accept(packets: readonly Buffer[]): void {
    if (this.#isClosed) return;
    this.#inbox.push(...packets);
    if (packets.some(endsStream)) this.#streamAbort?.abort();
    if (!this.#isPumping && this.#inbox.length > 0) {
      this.#pump().catch(() => this.#shutdown(false));
    }
  }

  async #pump(): Promise<void> {
    this.#isPumping = true;
    try {
      while (!this.#isClosed) {
        const raw = this.#inbox.shift();
        if (!raw) break;
        const packet = decodeZkPacket(raw);
        if (!packet) continue;
        await this.#faults.whenNotStalled();
        if (this.#isClosed) break;
        if (this.#faults.isSilent) {
          // Swallowed for good: a hung terminal does not catch up on what it missed.
          this.#device.stats.silenced++;
          continue;
        }
        const reply = this.#device.handle(this.state, packet);
        if (reply) await this.#enqueueOut(reply, false);
      }
    } finally {
      this.#isPumping = false;
    }
  }

  #enqueueOut(reply: Reply, isEvent: boolean): Promise<void> {
    const next = this.#outChain.then(() => this.#send(reply, isEvent));
    this.#outChain = next.catch(() => undefined);
    return next;
  }

  async #send(reply: Reply, isEvent: boolean): Promise<void> {
    await this.#faults.whenNotStalled();
    if (this.#isClosed || this.#faults.isSilent) return;
    const tcp = this.#options.transport === "tcp";
    // Faults belong to replies; a pushed event must not use up a fault meant for the next answer.
    const faults = this.#faults;
    const corrupt = !isEvent && faults.take("bad-checksum");
    const garbage = !isEvent && faults.take("garbage");
    let mode = this.#options.writeMode;
    if (!isEvent && faults.take("split")) mode = "split";
    else if (!isEvent && faults.take("merge")) mode = "merged";
    const drop = !isEvent && reply.isBulk === true && !reply.stream && faults.take("drop-mid-transfer");

    const frames = reply.packets.map((p) => {
      const encoded = encodeZkPacket(p, corrupt);
      return tcp ? frameTcp(encoded) : encoded;
    });
    this.#device.stats.packetsSent += frames.length;
    if (garbage) this.#emit(this.#garbage(tcp));

    if (drop) {
      this.#sendTruncated(frames, tcp);
      return;
    }
    if (!tcp) {
      // Datagrams keep their boundaries; only pacing means anything for UDP.
      for (const [i, f] of frames.entries()) {
        this.#emit(f);
        if (mode === "paced" && i < frames.length - 1) await sleep(this.#options.pacingMs);
        // Yield now and then so a long burst does not overrun a client's receive buffer at once.
        else if (i % 32 === 31) await new Promise((r) => setImmediate(r));
      }
    } else if (mode === "merged") {
      this.#emit(Buffer.concat(frames));
    } else if (mode === "split") {
      const all = Buffer.concat(frames);
      for (let at = 0; at < all.length && !this.#isClosed; ) {
        const size = this.#random.int(1, 300);
        this.#emit(all.subarray(at, at + size));
        at += size;
        await new Promise((r) => setImmediate(r));
      }
    } else {
      for (const [i, f] of frames.entries()) {
        this.#emit(f);
        if (mode === "paced" && i < frames.length - 1) await sleep(this.#options.pacingMs);
      }
    }
    if (reply.stream) await this.#stream(reply.stream, tcp);
    if (reply.closeAfter) {
      this.#closeAfterDelivery();
      return;
    }
    await this.#conduit.whenWritable();
    await this.#outWire?.whenBelow(WIRE_HIGH_WATER);
  }

  /**
   * Sends a lazily built tail one packet per write, until it ends, the client sends another request,
   * the device falls silent or the connection closes. Nothing is built ahead of the socket.
   */
  async #stream(stream: ReplyStream, tcp: boolean): Promise<void> {
    const abort = new AbortController();
    this.#streamAbort = abort;
    const { signal } = abort;
    const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    const pause = (ms: number) => sleep(ms, undefined, { signal }).catch(() => undefined);
    const stopped = () => this.#isClosed || signal.aborted || this.#faults.isSilent;
    try {
      if (this.#inbox.some(endsStream)) return;
      for (let sent = 0; !stopped(); sent++) {
        const next = stream.packets.next();
        if (next.done) return;
        const packet = next.value;
        if (stream.pace.kind === "interval" && packet.command === ZK_CMD.DATA) {
          await pause(stream.pace.ms);
          if (stopped()) return;
        }
        const encoded = encodeZkPacket(packet);
        this.#device.stats.packetsSent++;
        this.#emit(tcp ? frameTcp(encoded) : encoded);
        if (stream.pace.kind === "flood") {
          if (!tcp) {
            if (sent % UDP_FLOOD_BURST === UDP_FLOOD_BURST - 1) await pause(1);
          } else {
            await Promise.race([this.#conduit.whenWritable(), aborted]);
            // A fast reader keeps the socket writable; without this the loop would never let I/O in.
            if (sent % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
          }
        }
        if (this.#outWire) await Promise.race([this.#outWire.whenBelow(WIRE_HIGH_WATER), aborted]);
      }
    } finally {
      if (this.#streamAbort === abort) this.#streamAbort = undefined;
      abort.abort();
    }
  }

  /** drop-mid-transfer: the start of the data, then the line goes dead. */
  #sendTruncated(frames: Buffer[], tcp: boolean): void {
    const [prepare, ...rest] = frames;
    if (prepare) this.#emit(prepare);
    const data = rest.slice(0, -1);
    if (tcp) {
      const first = data[0];
      if (first) this.#emit(first.subarray(0, Math.max(1, Math.floor(first.length / 2))));
      this.#closeAfterDelivery();
    } else {
      // UDP has no connection to break; the device just stops sending the rest.
      for (const f of data.slice(0, Math.floor(data.length / 2))) this.#emit(f);
    }
  }

  #garbage(tcp: boolean): Buffer {
    const out = Buffer.alloc(this.#random.int(8, 40));
    for (let i = 0; i < out.length; i++) {
      // No 0x50 at all, so the junk can never contain (or start) the 50 50 82 7D magic.
      let b = this.#random.int(0, 254);
      if (b >= 0x50) b++;
      out[i] = b;
    }
    if (!tcp) out[0] = 0xee;
    return out;
  }

  #emit(bytes: Buffer): void {
    // Silence can start in the middle of a reply; the rest of it is never sent.
    if (this.#isClosed || this.#faults.isSilent) return;
    const stats = this.#device.stats;
    stats.bytesSent += bytes.length;
    stats.estimatedEthernetBytesSent +=
      bytes.length +
      (this.#options.transport === "tcp"
        ? Math.ceil(bytes.length / TCP_SEGMENT) * TCP_IP_ETHERNET_OVERHEAD
        : UDP_IP_ETHERNET_OVERHEAD);
    if (this.#outWire) this.#outWire.send(bytes.length, () => this.#conduit.write(bytes));
    else this.#conduit.write(bytes);
  }

  #closeAfterDelivery(): void {
    const close = () => this.#shutdown(true);
    this.#isClosed = true;
    if (this.#outWire) this.#outWire.send(0, close);
    else close();
  }

  #shutdown(graceful: boolean): void {
    const wasOpen = !this.#closedNotified;
    this.#isClosed = true;
    this.#inbox.length = 0;
    this.#streamAbort?.abort();
    this.#inWire?.close();
    // A graceful close is scheduled on the wire itself, so closing the wire here would drop the tail.
    if (!graceful) this.#outWire?.close();
    this.#conduit.close(graceful);
    this.#device.release(this.state);
    this.#device.unregister(this);
    if (wasOpen) {
      this.#closedNotified = true;
      this.#options.onClosed(this);
    }
  }

  #closedNotified = false;

  /** Called by the endpoint when the socket went away on its own. */
  socketClosed(): void {
    this.#shutdown(false);
  }
}
