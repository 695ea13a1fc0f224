import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { FaultBook, type ZkFault } from "./fault-book.ts";
import type { HostileOptions, TrickleOptions } from "./hostile.ts";
import type { ReceivedCommand } from "./received-log.ts";
import {
  type EventFormat,
  RECORD_LAYOUTS,
  type RecordLayout,
  type RecordSize,
  type SimUser,
  type UserSize,
} from "./record-codec.ts";
import type { LinkOptions } from "./virtual-wire.ts";
import { type Conduit, type WriteMode, ZkConnection } from "./zk-connection.ts";
import { type DeviceConfig, type PunchInput, type SimRecord, type Transport, ZkDevice } from "./zk-device.ts";
import { emptyStats, type ZkSimStats } from "./zk-stats.ts";
import { formatWallClock } from "./zk-time.ts";

export type { ZkFault } from "./fault-book.ts";
export type { HostileOptions, TrickleOptions } from "./hostile.ts";
export type { ReceivedCommand } from "./received-log.ts";
export type { LinkOptions } from "./virtual-wire.ts";
export type { WriteMode } from "./zk-connection.ts";
export type { PunchInput, SimRecord, Transport } from "./zk-device.ts";
export type { ZkSimStats } from "./zk-stats.ts";
export type { RecordLayout, SimUser };

export interface ZkSimulatorOptions {
  readonly host?: string;
  /** 0 picks a port that is free for both TCP and UDP. */
  readonly port?: number;
  readonly transports?: readonly Transport[];
  readonly serial?: string;
  readonly deviceName?: string;
  readonly platform?: string;
  readonly firmware?: string;
  readonly oemVendor?: string;
  readonly mac?: string;
  readonly pin2Width?: number;
  /** 0 = no comm key; otherwise CONNECT answers ACK_UNAUTH until CMD_AUTH proves the key. */
  readonly commKey?: number;
  readonly recordSize?: RecordSize;
  /** Byte order of 8-byte records (recordSize 8 only): the manual's, or ZEM500/MA300 firmware's. */
  readonly recordLayout?: RecordLayout;
  readonly userSize?: UserSize;
  /** Enrolled users: uid 1..n with user IDs "1001", "1002", ... */
  readonly users?: number;
  /**
   * Attendance records stored byte for byte ahead of the generated ones, to replay captures: each
   * Buffer one record, or one Buffer of whole records. Their uids need not be enrolled.
   */
  readonly rawRecords?: readonly Buffer[] | Buffer;
  /** Preloaded attendance records, generated deterministically from `seed`. */
  readonly records?: number;
  readonly seed?: number;
  /** IANA zone the device clock shows. */
  readonly timeZone?: string;
  /** Device clock minus host clock. */
  readonly clockOffsetMs?: number;
  /** Live punches per second (0 = off); each also pushes a real-time event. */
  readonly liveRate?: number;
  readonly eventFormat?: EventFormat;
  /** A second TCP client's CONNECT gets ACK_ERROR and a closed socket while one is connected. */
  readonly singleConnection?: boolean;
  /** Sets of at most this many bytes come back inline from 1503 (0 = never). */
  readonly inlineThreshold?: number;
  /** Data of the CONNECT acknowledgement (ACK_OK or ACK_UNAUTH); real terminals were seen sending one byte. */
  readonly connectReplyData?: Buffer;
  /**
   * Over TCP, split a 1504 chunk into CMD_DATA packets of at most this many data bytes (firmware was
   * captured using 1008) instead of one packet per chunk.
   */
  readonly tcpDataPacketSize?: number;
  /** The session field of those TCP CMD_DATA packets counts 1, 2, 3, ... per chunk, as captured. */
  readonly dataPacketSessionCounter?: boolean;
  /** The second u32 of PREPARE_DATA's data (default 0; 1008, 65536 and 65528 were seen). */
  readonly prepareDataSecondWord?: number;
  /**
   * A terminal that lies about sizes from the start (setHostile() turns it on later):
   * - announceBytes: the attendance set's 1503 size info claims this many bytes (up to 0xFFFFFFFF)
   *   while GET_FREE_SIZES stays truthful; 1504 reads below it get the real records, then zeros.
   * - prepareBytes: every 1504 answer's PREPARE_DATA claims this many bytes and the device streams
   *   them (60 KB CMD_DATA packets over TCP at the socket's pace, 1,024-byte datagrams over UDP)
   *   until done, the connection closes, or the client sends a request other than another 1504.
   * - userTableRecords: the user set holds this many users, made on demand per read, while
   *   GET_FREE_SIZES reports the enrolled count and its usual capacity.
   */
  readonly hostile?: HostileOptions;
  /**
   * Bulk answers (1504, legacy 13, and inline 1503 sets, which then come framed like a chunk) drip:
   * PREPARE_DATA with the true length, then CMD_DATA packets of bytesPerPacket bytes (at most 1,024
   * over UDP) one every intervalMs, then ACK_OK. Ends early only when the connection closes or the
   * client sends a request other than another 1504. setTrickle() turns it on later.
   */
  readonly trickle?: TrickleOptions;
  readonly writeMode?: WriteMode;
  /** Pause between packets of one reply in "paced" mode. */
  readonly pacingMs?: number;
  readonly link?: LinkOptions;
}

const MAX_PEERS = 1024;

/**
 * A ZK-protocol terminal on TCP and UDP, written from the protocol notes only, so it can judge
 * our own client. Start it with ZkSimulator.start(); every instance is independent.
 */
export class ZkSimulator {
  readonly host: string;
  readonly port: number;
  readonly transports: readonly Transport[];
  readonly #device: ZkDevice;
  readonly #faults: FaultBook;
  readonly #options: ZkSimulatorOptions;
  readonly #server: Server | undefined;
  readonly #udp: UdpSocket | undefined;
  readonly #tcpConnections = new Set<ZkConnection>();
  readonly #peers = new Map<string, ZkConnection>();
  #connectionSeed = 1;
  #isClosed = false;

  private constructor(
    device: ZkDevice,
    faults: FaultBook,
    options: ZkSimulatorOptions,
    bound: { host: string; port: number; server: Server | undefined; udp: UdpSocket | undefined },
  ) {
    this.#device = device;
    this.#faults = faults;
    this.#options = options;
    this.host = bound.host;
    this.port = bound.port;
    this.#server = bound.server;
    this.#udp = bound.udp;
    this.transports = [...(bound.server ? ["tcp" as const] : []), ...(bound.udp ? ["udp" as const] : [])];
    this.#server?.on("connection", (socket) => this.#onTcp(socket));
    this.#udp?.on("message", (msg, rinfo) => this.#onDatagram(msg, rinfo.address, rinfo.port));
  }

  static async start(options: ZkSimulatorOptions = {}): Promise<ZkSimulator> {
    const host = options.host ?? "127.0.0.1";
    const transports = options.transports ?? ["tcp", "udp"];
    if (transports.length === 0) throw new RangeError("At least one transport is needed.");
    const faults = new FaultBook();
    const device = new ZkDevice(resolveConfig(options, host), emptyStats(), faults);
    try {
      const bound = await bind(host, options.port ?? 0, transports.includes("tcp"), transports.includes("udp"));
      const sim = new ZkSimulator(device, faults, options, { host, ...bound });
      device.startLive();
      return sim;
    } catch (error) {
      device.close();
      throw error;
    }
  }

  get serial(): string {
    return this.#device.config.serial;
  }

  get recordCount(): number {
    return this.#device.log.count;
  }

  get users(): readonly SimUser[] {
    return this.#device.users;
  }

  /** True while a client's DISABLEDEVICE is in force (live punches are dropped meanwhile). */
  get isDisabled(): boolean {
    return this.#device.isDisabled;
  }

  get clockOffsetMs(): number {
    return this.#device.clock.offsetMs;
  }

  /** The device clock now, "YYYY-MM-DD HH:mm:ss" in its zone. */
  deviceTime(): string {
    return formatWallClock(this.#device.clock.now());
  }

  record(index: number): SimRecord {
    return this.#device.record(index);
  }

  /** Decoded records [from, to) of the log, as a client should see them. */
  records(from = 0, to = this.recordCount): SimRecord[] {
    const out: SimRecord[] = [];
    for (let i = Math.max(0, from); i < Math.min(to, this.recordCount); i++) out.push(this.#device.record(i));
    return out;
  }

  addPunch(input: PunchInput = {}): SimRecord {
    return this.#device.addPunch(input);
  }

  jumpClock(ms: number): void {
    this.#device.clock.jump(ms);
  }

  injectFault(fault: ZkFault): void {
    switch (fault.kind) {
      case "stall":
        this.#faults.stall(fault.ms);
        return;
      case "clock-jump":
        this.jumpClock(fault.ms);
        return;
      case "refuse-command":
        this.#faults.refuse(fault.command);
        return;
      case "silent":
        this.#faults.silence();
        return;
      default:
        this.#faults.add(fault.kind, fault.count ?? 1);
    }
  }

  /** Makes the terminal hostile from its next 1503/1504 on, or honest again with undefined. */
  setHostile(hostile: HostileOptions | undefined): void {
    this.#device.setHostile(hostile);
  }

  /** Makes bulk answers drip from the next one on, or flow again with undefined. */
  setTrickle(trickle: TrickleOptions | undefined): void {
    this.#device.setTrickle(trickle);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  /** The last 10,000 packets received, oldest first, each logged the moment it was framed. */
  receivedCommands(): readonly ReceivedCommand[] {
    return this.#device.received.entries();
  }

  stats(): ZkSimStats {
    const s = this.#device.stats;
    return { ...s, commands: { ...s.commands }, currentConnections: this.#tcpConnections.size + this.#peers.size };
  }

  resetStats(): void {
    Object.assign(this.#device.stats, emptyStats());
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#device.close();
    this.#faults.clear();
    for (const c of [...this.#tcpConnections, ...this.#peers.values()]) c.destroy();
    const waits: Promise<unknown>[] = [];
    if (this.#server) {
      waits.push(new Promise((resolve) => this.#server?.close(resolve)));
    }
    if (this.#udp) waits.push(new Promise<void>((resolve) => this.#udp?.close(() => resolve())));
    await Promise.all(waits);
  }

  #onTcp(socket: Socket): void {
    if (this.#isClosed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    this.#device.stats.connectionsAccepted++;
    const conduit: Conduit = {
      write: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      close: (graceful) => {
        if (graceful && !socket.destroyed) socket.end(() => socket.destroy());
        else socket.destroy();
      },
      whenWritable: async () => {
        if (!socket.writableNeedDrain || socket.destroyed) return;
        await Promise.race([once(socket, "drain"), once(socket, "close")]);
      },
    };
    const connection = this.#connection("tcp", conduit, (c) => this.#tcpConnections.delete(c));
    this.#tcpConnections.add(connection);
    socket.on("data", (chunk: Buffer) => connection.receive(chunk));
    socket.on("close", () => connection.socketClosed());
  }

  #onDatagram(msg: Buffer, address: string, port: number): void {
    if (this.#isClosed) return;
    const key = `${address}:${port}`;
    let connection = this.#peers.get(key);
    if (!connection) {
      this.#device.stats.connectionsAccepted++;
      const udp = this.#udp;
      const conduit: Conduit = {
        write: (bytes) => {
          if (!this.#isClosed) udp?.send(bytes, port, address);
        },
        close: () => undefined,
        whenWritable: async () => undefined,
      };
      connection = this.#connection("udp", conduit, () => this.#peers.delete(key));
      this.#peers.set(key, connection);
      // Peers that vanish without EXIT would otherwise pile up forever.
      if (this.#peers.size > MAX_PEERS) this.#peers.values().next().value?.destroy();
    }
    connection.receive(msg);
  }

  #connection(transport: Transport, conduit: Conduit, onClosed: (c: ZkConnection) => void): ZkConnection {
    return new ZkConnection(this.#device, this.#faults, conduit, {
      transport,
      writeMode: this.#options.writeMode ?? "normal",
      link: this.#options.link,
      pacingMs: this.#options.pacingMs ?? 3,
      seed: (this.#options.seed ?? 1) * 7919 + this.#connectionSeed++,
      onClosed,
    });
  }
}

function resolveConfig(o: ZkSimulatorOptions, host: string): DeviceConfig {
  const config: DeviceConfig = {
    serial: o.serial ?? "SIM0000001",
    deviceName: o.deviceName ?? "ZK Simulator",
    platform: o.platform ?? "ZEM560_TFT",
    firmware: o.firmware ?? "Ver 6.60 Apr 28 2015",
    oemVendor: o.oemVendor ?? "ZKTeco Inc.",
    mac: o.mac ?? "00:17:61:00:00:01",
    ipAddress: host,
    pin2Width: o.pin2Width ?? 9,
    commKey: o.commKey ?? 0,
    recordSize: o.recordSize ?? 40,
    recordLayout: o.recordLayout ?? "standard",
    userSize: o.userSize ?? 72,
    users: o.users ?? 100,
    rawRecords: rawRecordBytes(o.rawRecords, o.recordSize ?? 40),
    records: o.records ?? 0,
    seed: o.seed ?? 1,
    timeZone: o.timeZone ?? "UTC",
    clockOffsetMs: o.clockOffsetMs ?? 0,
    eventFormat: o.eventFormat ?? 32,
    singleConnection: o.singleConnection ?? false,
    inlineThreshold: o.inlineThreshold ?? 0,
    liveRate: o.liveRate ?? 0,
    connectReplyData: Buffer.from(o.connectReplyData ?? []),
    tcpDataPacketSize: o.tcpDataPacketSize ?? Number.MAX_SAFE_INTEGER,
    dataPacketSessionCounter: o.dataPacketSessionCounter ?? false,
    prepareDataSecondWord: o.prepareDataSecondWord ?? 0,
    hostile: o.hostile,
    trickle: o.trickle,
  };
  if (!Number.isInteger(config.commKey) || config.commKey < 0 || config.commKey > 0xffff_ffff) {
    throw new RangeError(`commKey must be a non-negative integer, got ${config.commKey}.`);
  }
  if (![8, 16, 40].includes(config.recordSize)) throw new RangeError(`recordSize must be 8, 16 or 40.`);
  if (![28, 72].includes(config.userSize)) throw new RangeError(`userSize must be 28 or 72.`);
  if (!RECORD_LAYOUTS.includes(config.recordLayout)) throw new RangeError(`recordLayout must be standard or zem500.`);
  if (config.recordLayout !== "standard" && config.recordSize !== 8) {
    throw new RangeError(
      `recordLayout "${config.recordLayout}" describes 8-byte records; recordSize is ${config.recordSize}.`,
    );
  }
  if (!Number.isInteger(config.pin2Width) || config.pin2Width < 1 || config.pin2Width > 255) {
    // CMD_GET_PINWIDTH answers it in one byte.
    throw new RangeError(`pin2Width must be an integer from 1 to 255, got ${config.pin2Width}.`);
  }
  if (!Number.isInteger(config.tcpDataPacketSize) || config.tcpDataPacketSize < 1) {
    throw new RangeError(`tcpDataPacketSize must be a positive integer, got ${config.tcpDataPacketSize}.`);
  }
  const word = config.prepareDataSecondWord;
  if (!Number.isInteger(word) || word < 0 || word > 0xffff_ffff) {
    throw new RangeError(`prepareDataSecondWord must be a u32, got ${word}.`);
  }
  if (!Number.isInteger(config.records) || config.records < 0 || config.records > 10_000_000) {
    throw new RangeError(`records must be an integer from 0 to 10,000,000, got ${config.records}.`);
  }
  return config;
}

/** Joins captured records into one buffer, refusing any that is not exactly whole records. */
function rawRecordBytes(raw: readonly Buffer[] | Buffer | undefined, size: number): Buffer {
  if (raw === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(raw)) {
    if (raw.length % size !== 0) {
      throw new RangeError(`rawRecords holds ${raw.length} bytes, not a whole number of ${size}-byte records.`);
    }
    return Buffer.from(raw);
  }
  raw.forEach((r, i) => {
    if (r.length !== size) throw new RangeError(`rawRecords[${i}] is ${r.length} bytes; records are ${size}.`);
  });
  return Buffer.concat(raw);
}

interface Bound {
  port: number;
  server: Server | undefined;
  udp: UdpSocket | undefined;
}

/** Binds TCP and/or UDP on one port; with port 0, retries until a port is free for both. */
async function bind(host: string, port: number, tcp: boolean, udp: boolean): Promise<Bound> {
  const attempts = port === 0 && tcp && udp ? 20 : 1;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    let server: Server | undefined;
    let socket: UdpSocket | undefined;
    try {
      let chosen = port;
      if (tcp) {
        server = createServer();
        server.listen(port, host);
        await once(server, "listening");
        const address = server.address();
        chosen = typeof address === "object" && address ? address.port : port;
      }
      if (udp) {
        socket = createSocket(host.includes(":") ? "udp6" : "udp4");
        socket.bind(chosen, host);
        await once(socket, "listening");
        chosen = socket.address().port;
        socket.on("error", () => undefined);
      }
      return { port: chosen, server, udp: socket };
    } catch (error) {
      lastError = error;
      server?.close();
      socket?.close();
    }
  }
  throw lastError;
}
