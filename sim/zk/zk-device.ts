import { AttendanceLog, type DataSet, dataSet } from "./attendance-log.ts";
import { isCommKeyValid } from "./comm-key.ts";
import { DeviceClock } from "./device-clock.ts";
import type { FaultBook } from "./fault-book.ts";
import {
  checkHostile,
  checkTrickle,
  type HostileOptions,
  oversizedSet,
  syntheticUserSet,
  type TrickleOptions,
} from "./hostile.ts";
import { ReceivedLog } from "./received-log.ts";
import {
  type EventFormat,
  encodeAttendanceEvent,
  encodeUser,
  type RawRecord,
  type RecordLayout,
  type RecordSize,
  type SimUser,
  type UserSize,
} from "./record-codec.ts";
import { chunkPackets, type ReplyStream } from "./reply-stream.ts";
import { SeededRandom } from "./seeded-random.ts";
import { EF_ATTLOG, TCP_MAX_CHUNK, UDP_MAX_DATA, ZK_CMD } from "./zk-commands.ts";
import { decodeZkPacket, type ZkPacket, zkPacket } from "./zk-packet.ts";
import type { ZkSimStats } from "./zk-stats.ts";
import {
  decodeZkTime,
  encodeZkTime,
  formatWallClock,
  naiveMsToWallClock,
  parseWallClock,
  type WallClock,
} from "./zk-time.ts";

export type Transport = "tcp" | "udp";

/** Everything the device needs, with defaults already applied. */
export interface DeviceConfig {
  readonly serial: string;
  readonly deviceName: string;
  readonly platform: string;
  readonly firmware: string;
  readonly oemVendor: string;
  readonly mac: string;
  readonly ipAddress: string;
  readonly pin2Width: number;
  readonly commKey: number;
  readonly recordSize: RecordSize;
  readonly recordLayout: RecordLayout;
  readonly userSize: UserSize;
  readonly users: number;
  /** Whole records, stored verbatim ahead of the generated ones. */
  readonly rawRecords: Buffer;
  readonly records: number;
  readonly seed: number;
  readonly timeZone: string;
  readonly clockOffsetMs: number;
  readonly eventFormat: EventFormat;
  readonly singleConnection: boolean;
  readonly inlineThreshold: number;
  readonly liveRate: number;
  /** Data of the CONNECT acknowledgement (empty for none). */
  readonly connectReplyData: Buffer;
  /** Largest CMD_DATA of a 1504 answer over TCP. */
  readonly tcpDataPacketSize: number;
  /** The session field of a 1504 answer's TCP CMD_DATA packets counts 1, 2, 3, ... */
  readonly dataPacketSessionCounter: boolean;
  readonly prepareDataSecondWord: number;
  readonly hostile: HostileOptions | undefined;
  readonly trickle: TrickleOptions | undefined;
}

/** Per TCP connection or per UDP peer. */
export interface SessionState {
  readonly transport: Transport;
  sessionId: number;
  isConnected: boolean;
  isAuthenticated: boolean;
  eventMask: number;
  dataSet: DataSet | undefined;
}

/**
 * What one request produces; `isBulk` marks PREPARE_DATA, CMD_DATA..., ACK_OK answers. A `stream`
 * follows `packets` when the answer is too big or too slow to build up front (hostile and trickle).
 */
export interface Reply {
  readonly packets: readonly ZkPacket[];
  readonly isBulk?: boolean;
  readonly closeAfter?: boolean;
  readonly stream?: ReplyStream;
}

/** How #bulk cuts one chunk. */
interface BulkShape {
  readonly tcpPacketSize: number;
  readonly countSessions?: boolean;
  /** What PREPARE_DATA claims, when it lies about the chunk's length. */
  readonly announce?: number;
}

/** A connection the device can push events to. */
export interface EventTarget {
  readonly state: SessionState;
  pushEvent(packet: ZkPacket): void;
}

/** A decoded attendance record as tests compare it with what a client downloaded. */
export interface SimRecord {
  readonly uid: number;
  readonly userId: string;
  /** Device-local wall clock, "YYYY-MM-DD HH:mm:ss". */
  readonly time: string;
  readonly state: number;
  readonly verify: number;
  readonly workCode: number;
}

export interface PunchInput {
  readonly userId?: string;
  /** Device-local "YYYY-MM-DD HH:mm:ss"; default: the device clock now. */
  readonly time?: string;
  readonly state?: number;
  readonly verify?: number;
  readonly workCode?: number;
}

/** Gap between generated records; also keeps (user, time, state) unique by construction. */
const GENERATED_STEP_MS = 7000;
const ADMIN_PRIVILEGE = 14;
const STATE_IDLE = 0;
/** CMD_DATA size of a hostile flood over TCP: big packets, so the client's memory is what runs out first. */
const FLOOD_TCP_PACKET = 60 * 1024;

/** The device's state and its answer to every command; transports and faults live elsewhere. */
export class ZkDevice {
  readonly config: DeviceConfig;
  readonly clock: DeviceClock;
  readonly log: AttendanceLog;
  readonly stats: ZkSimStats;
  readonly received = new ReceivedLog();
  readonly #faults: FaultBook;
  readonly #random: SeededRandom;
  #users: SimUser[];
  #uidToUserId = new Map<number, string>();
  #userIdToUid = new Map<string, number>();
  readonly #options = new Map<string, string>();
  readonly #targets = new Set<EventTarget>();
  #nextSession: number;
  #isDisabled = false;
  #reenableTimer: NodeJS.Timeout | undefined;
  #liveTimer: NodeJS.Timeout | undefined;
  #liveSecond = "";
  readonly #liveUsed = new Set<string>();
  #hostile: HostileOptions | undefined;
  #trickle: TrickleOptions | undefined;

  constructor(config: DeviceConfig, stats: ZkSimStats, faults: FaultBook) {
    this.config = config;
    this.stats = stats;
    this.#faults = faults;
    this.#random = new SeededRandom(config.seed);
    this.setHostile(config.hostile);
    this.setTrickle(config.trickle);
    this.clock = new DeviceClock(config.timeZone, config.clockOffsetMs);
    // Looks like a seconds counter on real units; any non-zero 16-bit value will do.
    this.#nextSession = this.#random.int(1, 0xfff0);
    this.#users = generateUsers(config.users);
    this.#indexUsers();
    const rawCount = config.rawRecords.length / config.recordSize;
    this.log = new AttendanceLog(config.recordSize, Math.max(1024, rawCount + config.records), config.recordLayout);
    this.log.appendRaw(config.rawRecords);
    this.#preload(config.records);
  }

  get users(): readonly SimUser[] {
    return this.#users;
  }

  get isDisabled(): boolean {
    return this.#isDisabled;
  }

  /** Takes effect from the next 1503/1504; a set already prepared keeps what it announced. */
  setHostile(h: HostileOptions | undefined): void {
    this.#hostile = checkHostile(h, this.config.userSize);
  }

  setTrickle(t: TrickleOptions | undefined): void {
    this.#trickle = checkTrickle(t);
  }

  register(target: EventTarget): void {
    this.#targets.add(target);
  }

  unregister(target: EventTarget): void {
    this.#targets.delete(target);
  }

  newSession(transport: Transport): SessionState {
    return { transport, sessionId: 0, isConnected: false, isAuthenticated: false, eventMask: 0, dataSet: undefined };
  }

  startLive(): void {
    const rate = this.config.liveRate;
    if (rate <= 0 || this.#liveTimer) return;
    const started = performance.now();
    let emitted = 0;
    this.#liveTimer = setInterval(
      () => {
        const due = Math.floor(((performance.now() - started) * rate) / 1000) - emitted;
        for (let i = 0; i < due; i++) {
          emitted++;
          // A disabled terminal blocks punching; the punches are lost, not queued.
          if (!this.#isDisabled) this.#livePunch();
        }
      },
      Math.max(10, Math.floor(1000 / rate)),
    );
  }

  close(): void {
    clearInterval(this.#liveTimer);
    clearTimeout(this.#reenableTimer);
    this.#liveTimer = undefined;
  }

  record(index: number): SimRecord {
    const d = this.log.at(index);
    const uid = d.uid ?? this.#userIdToUid.get(d.userId ?? "") ?? 0;
    const userId = d.userId ?? this.#uidToUserId.get(uid) ?? String(uid);
    return {
      uid,
      userId,
      time: formatWallClock(decodeZkTime(d.time)),
      state: d.state,
      verify: d.verify,
      workCode: d.workCode,
    };
  }

  addPunch(input: PunchInput = {}): SimRecord {
    const user = input.userId === undefined ? this.#randomUser() : this.#userFor(input.userId);
    const wall = input.time === undefined ? this.clock.now() : parseWallClock(input.time);
    const raw: RawRecord = {
      uid: user.uid,
      userId: user.userId,
      time: encodeZkTime(wall),
      state: input.state ?? 0,
      verify: input.verify ?? 1,
      workCode: input.workCode ?? 0,
    };
    const index = this.log.append(raw);
    this.#pushAttendanceEvent(raw, wall);
    return this.record(index);
  }

  /** Logs a packet the moment it is framed, before anything can delay or swallow it. */
  noteReceived(transport: Transport, raw: Buffer): void {
    const p = decodeZkPacket(raw);
    if (!p) return;
    this.received.add({ command: p.command, transport, at: performance.now(), data: Buffer.from(p.data) });
    if (p.command === ZK_CMD.EXIT) this.stats.exits++;
    else if (p.command === ZK_CMD.REG_EVENT && eventMask(p.data) === 0) this.stats.eventUnregisters++;
  }

  /** Answers one request; undefined when the protocol wants silence (an event acknowledgement). */
  handle(s: SessionState, p: ZkPacket): Reply | undefined {
    this.stats.commands[p.command] = (this.stats.commands[p.command] ?? 0) + 1;
    if (p.command === ZK_CMD.ACK_OK) {
      // The client acknowledging a pushed event; devices send nothing back.
      this.stats.eventAcks++;
      return undefined;
    }
    this.stats.requests++;
    const sessionId = s.isConnected ? s.sessionId : p.session;
    const ack = (command: number, data?: Buffer, session = sessionId): Reply => ({
      packets: [zkPacket(command, session, p.replyId, data)],
    });
    if (this.#faults.take("reply-error") || this.#faults.refuses(p.command)) return ack(ZK_CMD.ACK_ERROR);

    switch (p.command) {
      case ZK_CMD.CONNECT:
        return this.#connect(s, p);
      case ZK_CMD.EXIT:
        s.isConnected = false;
        s.eventMask = 0;
        return { ...ack(ZK_CMD.ACK_OK), closeAfter: true };
      case ZK_CMD.AUTH:
        if (this.config.commKey === 0 || isCommKeyValid(this.config.commKey, s.sessionId, p.data)) {
          s.isAuthenticated = true;
          return ack(ZK_CMD.ACK_OK);
        }
        this.stats.authFailures++;
        return ack(ZK_CMD.ACK_UNAUTH);
    }
    if (this.config.commKey !== 0 && !s.isAuthenticated) return ack(ZK_CMD.ACK_UNAUTH);

    switch (p.command) {
      case ZK_CMD.ENABLEDEVICE:
        this.#enable();
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.DISABLEDEVICE:
        this.#disable(p.data.length >= 4 ? p.data.readUInt32LE(0) : 0);
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.GET_VERSION:
        return ack(ZK_CMD.ACK_OK, cString(this.config.firmware));
      case ZK_CMD.OPTIONS_RRQ: {
        const name = readCString(p.data);
        const value = this.#option(name);
        return value === undefined ? ack(ZK_CMD.ACK_ERROR) : ack(ZK_CMD.ACK_OK, cString(`${name}=${value}`));
      }
      case ZK_CMD.OPTIONS_WRQ: {
        const text = readCString(p.data);
        const eq = text.indexOf("=");
        if (eq > 0) this.#options.set(text.slice(0, eq), text.slice(eq + 1));
        return ack(ZK_CMD.ACK_OK);
      }
      case ZK_CMD.GET_TIME: {
        const out = Buffer.alloc(4);
        out.writeUInt32LE(encodeZkTime(this.clock.now()), 0);
        return ack(ZK_CMD.ACK_OK, out);
      }
      case ZK_CMD.SET_TIME:
        this.stats.setTime++;
        if (p.data.length < 4) return ack(ZK_CMD.ACK_ERROR);
        this.clock.set(decodeZkTime(p.data.readUInt32LE(0)));
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.GET_FREE_SIZES:
        return ack(ZK_CMD.ACK_OK, this.#freeSizes());
      case ZK_CMD.DATA_WRRQ:
        return this.#prepareSet(s, p, ack);
      case ZK_CMD.DATA_RDY:
        return this.#readChunk(s, p, sessionId, ack);
      case ZK_CMD.FREE_DATA:
        s.dataSet = undefined;
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.ATTLOG_RRQ:
        this.stats.bulkChunks++;
        return this.#bulk(s, this.log.snapshot().read(0, Number.MAX_SAFE_INTEGER), sessionId, p.replyId, {
          tcpPacketSize: TCP_MAX_CHUNK,
        });
      case ZK_CMD.REG_EVENT:
        s.eventMask = eventMask(p.data);
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.CLEAR_ATTLOG:
        this.stats.clearAttlog++;
        this.log.clear();
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.CLEAR_DATA:
        this.stats.clearData++;
        this.#clearData(p.data[0]);
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.REFRESHDATA:
      case ZK_CMD.REFRESHOPTION:
      case ZK_CMD.CANCELCAPTURE:
      case ZK_CMD.STARTVERIFY:
        return ack(ZK_CMD.ACK_OK);
      case ZK_CMD.STATE_RRQ:
        // The state travels in the session field, per the ZKAccess captures.
        return ack(ZK_CMD.ACK_OK, undefined, STATE_IDLE);
      case ZK_CMD.GET_PINWIDTH:
        // One binary byte: pyzk (and its Java/JS ports) ask for a 9-byte reply, cut the data at the
        // first NUL and take byte 0 as the number, so neither ASCII nor a u32 would read right over TCP.
        return ack(ZK_CMD.ACK_OK, Buffer.from([this.config.pin2Width]));
      default:
        // pyzk's "clear error" ritual sends 2001 and 65535 as commands and waits for an 8-byte answer.
        return ack(ZK_CMD.ACK_UNKNOWN);
    }
  }

  /** Forgets the connection's registration; called when its socket closes or the peer exits. */
  release(s: SessionState): void {
    s.isConnected = false;
    s.eventMask = 0;
    s.dataSet = undefined;
  }

  #connect(s: SessionState, p: ZkPacket): Reply {
    if (s.transport === "tcp" && this.config.singleConnection && !s.isConnected) {
      for (const t of this.#targets) {
        if (t.state !== s && t.state.transport === "tcp" && t.state.isConnected) {
          this.stats.busyRejections++;
          return { packets: [zkPacket(ZK_CMD.ACK_ERROR, 0, p.replyId)], closeAfter: true };
        }
      }
    }
    // A repeated CONNECT on an open connection keeps its session id, as [Z] observed.
    if (!s.isConnected) {
      s.sessionId = this.#nextSession;
      this.#nextSession = (this.#nextSession % 0xfff0) + 1;
      s.isConnected = true;
      s.isAuthenticated = this.config.commKey === 0;
    }
    const code = s.isAuthenticated ? ZK_CMD.ACK_OK : ZK_CMD.ACK_UNAUTH;
    return { packets: [zkPacket(code, s.sessionId, p.replyId, this.config.connectReplyData)] };
  }

  #prepareSet(s: SessionState, p: ZkPacket, ack: (command: number, data?: Buffer) => Reply): Reply {
    const sub = p.data.length >= 3 ? p.data.readUInt16LE(1) : -1;
    let set: DataSet;
    if (sub === ZK_CMD.ATTLOG_RRQ) set = this.#attendanceSet();
    else if (sub === ZK_CMD.USERTEMP_RRQ) set = this.#userSet();
    else if (sub === ZK_CMD.DB_RRQ)
      set = dataSet(Buffer.alloc(0)); // no fingerprint templates enrolled
    else return ack(ZK_CMD.ACK_ERROR);
    this.stats.bulkPrepares++;
    if (set.size <= this.config.inlineThreshold) {
      s.dataSet = undefined;
      const whole = set.read(0, set.size);
      // A dripping terminal drips this too, framed like a chunk so the drip has a length to announce.
      if (this.#trickle) return this.#bulk(s, whole, s.sessionId, p.replyId, { tcpPacketSize: TCP_MAX_CHUNK });
      return { packets: [zkPacket(ZK_CMD.DATA, s.sessionId, p.replyId, whole)] };
    }
    s.dataSet = set;
    const info = Buffer.alloc(13);
    info.writeUInt32LE(set.size, 1);
    info.writeUInt32LE(set.size, 5);
    return ack(ZK_CMD.ACK_OK, info);
  }

  #readChunk(s: SessionState, p: ZkPacket, session: number, ack: (command: number) => Reply): Reply {
    if (!s.dataSet || p.data.length < 8) return ack(ZK_CMD.ACK_ERROR);
    this.stats.bulkChunks++;
    const chunk = s.dataSet.read(p.data.readUInt32LE(0), p.data.readUInt32LE(4));
    // By default one CMD_DATA per chunk, since pyzk times out when it is split; some firmware splits anyway.
    const c = this.config;
    return this.#bulk(s, chunk, session, p.replyId, {
      tcpPacketSize: c.tcpDataPacketSize,
      countSessions: c.dataPacketSessionCounter,
      ...(this.#hostile?.prepareBytes === undefined ? {} : { announce: this.#hostile.prepareBytes }),
    });
  }

  /** PREPARE_DATA, CMD_DATA packet(s), ACK_OK, all with the request's reply id. */
  #bulk(s: SessionState, chunk: Buffer, session: number, replyId: number, shape: BulkShape): Reply {
    const announced = shape.announce ?? chunk.length;
    const packets = [zkPacket(ZK_CMD.PREPARE_DATA, session, replyId, this.#prepareData(announced))];
    const tcp = s.transport === "tcp";
    const trickle = this.#trickle;
    // pyzk reads datagrams with a 1,032-byte buffer, so UDP data packets stay at 1,024 bytes or less.
    if (trickle || announced !== chunk.length) {
      const wanted = trickle?.bytesPerPacket ?? (tcp ? FLOOD_TCP_PACKET : UDP_MAX_DATA);
      const size = tcp ? wanted : Math.min(wanted, UDP_MAX_DATA);
      const stream: ReplyStream = {
        packets: chunkPackets(chunk, announced, size, session, replyId),
        pace: trickle ? { kind: "interval", ms: trickle.intervalMs } : { kind: "flood" },
      };
      return { packets, isBulk: true, stream };
    }
    const step = tcp ? shape.tcpPacketSize : UDP_MAX_DATA;
    let at = 0;
    let n = 0;
    do {
      // Captured firmware numbers the packets of a chunk in the session field instead of the session id.
      const field = tcp && shape.countSessions ? ++n : session;
      packets.push(zkPacket(ZK_CMD.DATA, field, replyId, chunk.subarray(at, at + step)));
      at += step;
    } while (at < chunk.length);
    packets.push(zkPacket(ZK_CMD.ACK_OK, session, replyId));
    return { packets, isBulk: true };
  }

  /** u32 chunk length, then a second u32 whose meaning nobody has pinned down (0, 1008, 65536 and 65528 were seen). */
  #prepareData(length: number): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(length, 0);
    out.writeUInt32LE(this.config.prepareDataSecondWord, 4);
    return out;
  }

  #freeSizes(): Buffer {
    const out = Buffer.alloc(92);
    const users = this.#users.length;
    const records = this.log.count;
    const userCapacity = Math.max(10_000, users * 2);
    const recordCapacity = Math.max(100_000, this.config.records * 2, records);
    const fingerCapacity = 3000;
    out.writeInt32LE(users, 16);
    out.writeInt32LE(0, 24);
    out.writeInt32LE(records, 32);
    out.writeInt32LE(fingerCapacity, 56);
    out.writeInt32LE(userCapacity, 60);
    out.writeInt32LE(recordCapacity, 64);
    out.writeInt32LE(fingerCapacity, 68);
    out.writeInt32LE(userCapacity - users, 72);
    out.writeInt32LE(recordCapacity - records, 76);
    return out;
  }

  #option(name: string): string | undefined {
    const stored = this.#options.get(name);
    if (stored !== undefined) return stored;
    const c = this.config;
    const builtIn: Record<string, string> = {
      "~SerialNumber": c.serial,
      "~DeviceName": c.deviceName,
      "~Platform": c.platform,
      "~OEMVendor": c.oemVendor,
      "~ZKFPVersion": "10",
      "~ExtendFmt": c.recordSize === 40 ? "1" : "0",
      "~UserExtFmt": c.userSize === 72 ? "1" : "0",
      "~PIN2Width": String(c.pin2Width),
      MAC: c.mac,
      IPAddress: c.ipAddress,
      "~ProductTime": "2015-04-28 10:00:00",
      WorkCode: "0",
      FaceFunOn: "0",
    };
    return builtIn[name];
  }

  #attendanceSet(): DataSet {
    const announce = this.#hostile?.announceBytes;
    return announce === undefined ? this.log.snapshot() : oversizedSet(this.log.snapshot(), announce);
  }

  #userSet(): DataSet {
    const size = this.config.userSize;
    const hostileCount = this.#hostile?.userTableRecords;
    if (hostileCount !== undefined) return syntheticUserSet(this.#users, hostileCount, size);
    const body = Buffer.alloc(this.#users.length * size);
    this.#users.forEach((u, i) => {
      encodeUser(size, u, body, i * size);
    });
    return dataSet(body);
  }

  #clearData(type: number | undefined): void {
    // No type byte means "erase everything", which is why the connector must never send it.
    if (type === undefined || type === 1) this.log.clear();
    if (type === undefined || type === 5) {
      this.#users = [];
      this.#indexUsers();
    }
  }

  #enable(): void {
    clearTimeout(this.#reenableTimer);
    this.#isDisabled = false;
  }

  #disable(seconds: number): void {
    this.stats.disableDevice++;
    this.#isDisabled = true;
    clearTimeout(this.#reenableTimer);
    if (seconds > 0) this.#reenableTimer = setTimeout(() => this.#enable(), seconds * 1000);
  }

  #indexUsers(): void {
    this.#uidToUserId = new Map(this.#users.map((u) => [u.uid, u.userId]));
    this.#userIdToUid = new Map(this.#users.map((u) => [u.userId, u.uid]));
  }

  #randomUser(): SimUser {
    const user = this.#users[this.#random.int(0, this.#users.length - 1)];
    return user ?? this.#userFor("1");
  }

  #userFor(userId: string): SimUser {
    const uid = this.#userIdToUid.get(userId);
    const known = uid === undefined ? undefined : this.#users.find((u) => u.uid === uid);
    if (known) return known;
    // The 8-byte format can only name users by uid, so an unknown user cannot be written there.
    if (this.config.recordSize === 8)
      throw new RangeError(`User "${userId}" is not enrolled; 8-byte records need a uid.`);
    return { uid: 0, userId, name: "", privilege: 0, password: "", card: 0 };
  }

  #livePunch(): void {
    const wall = this.clock.now();
    const second = formatWallClock(wall);
    if (second !== this.#liveSecond) {
      this.#liveSecond = second;
      this.#liveUsed.clear();
    }
    const n = this.#users.length;
    if (n === 0) return;
    const state = this.#random.int(0, 5);
    let index = this.#random.int(0, n - 1);
    // Keep (user, time, state) unique even at rates above one punch per user per second.
    for (let tries = 0; tries < n; tries++, index = (index + 1) % n) {
      const user = this.#users[index];
      if (user && !this.#liveUsed.has(user.userId)) {
        this.#liveUsed.add(user.userId);
        this.addPunch({ userId: user.userId, time: second, state });
        return;
      }
    }
  }

  #pushAttendanceEvent(raw: RawRecord, wall: WallClock): void {
    // A hung terminal still records the punch; it just tells nobody.
    if (this.#faults.isSilent) return;
    const data = encodeAttendanceEvent(this.config.eventFormat, raw, wall);
    for (const t of this.#targets) {
      if (!t.state.isConnected || (t.state.eventMask & EF_ATTLOG) === 0) continue;
      if (this.config.commKey !== 0 && !t.state.isAuthenticated) continue;
      this.stats.eventsPushed++;
      // Events carry the event flag in the session field and reply id 0.
      t.pushEvent(zkPacket(ZK_CMD.REG_EVENT, EF_ATTLOG, 0, data));
    }
  }

  /** Preloads `count` records ending a minute before the device clock's now, 7 s apart. */
  #preload(count: number): void {
    if (count <= 0) return;
    const users = this.#users;
    if (users.length === 0) throw new RangeError("Preloaded records need at least one user.");
    const end = Math.floor(this.clock.nowNaiveMs() / 1000) * 1000 - 60_000;
    const first = end - (count - 1) * GENERATED_STEP_MS;
    const userOffset = this.#random.int(0, users.length - 1);
    const stateOffset = this.#random.int(0, 5);
    const dayBase = new Map<number, number>();
    this.log.appendMany(count, (i) => {
      const ms = first + i * GENERATED_STEP_MS;
      const day = Math.floor(ms / 86_400_000);
      let base = dayBase.get(day);
      if (base === undefined) {
        base = encodeZkTime(naiveMsToWallClock(day * 86_400_000));
        dayBase.set(day, base);
      }
      const user = users[(i + userOffset) % users.length] as SimUser;
      return {
        uid: user.uid,
        userId: user.userId,
        time: base + (ms - day * 86_400_000) / 1000,
        state: (i + stateOffset) % 6,
        verify: 1,
        workCode: 0,
      };
    });
  }
}

/** uid 1..n with user IDs "1001", "1002", ...; numeric so every record and user format can hold them. */
function generateUsers(count: number): SimUser[] {
  const max = 65_534; // uid is a u16 in every format
  if (count > max) throw new RangeError(`At most ${max} users; asked for ${count}.`);
  const users: SimUser[] = [];
  for (let uid = 1; uid <= count; uid++) {
    users.push({
      uid,
      userId: String(1000 + uid),
      name: `User ${1000 + uid}`,
      privilege: uid === 1 ? ADMIN_PRIVILEGE : 0,
      password: "",
      card: 0,
    });
  }
  return users;
}

/** CMD_REG_EVENT's mask; short forms are read as far as they go, and no data means 0 (unregister). */
function eventMask(data: Buffer): number {
  if (data.length >= 4) return data.readUInt32LE(0);
  return data.length > 0 ? data.readUIntLE(0, data.length) : 0;
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, "latin1");
}

function readCString(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.subarray(0, nul < 0 ? data.length : nul).toString("latin1");
}
