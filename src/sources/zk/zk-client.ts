import { BioError } from "../../core/errors.ts";
import {
  commKeyBytes,
  type DeviceTime,
  decodeDeviceTime,
  decodePacket,
  encodeDeviceTime,
  encodePacket,
  type ZkPacket,
} from "./zk-codec.ts";
import { CMD, commandName } from "./zk-commands.ts";
import { decodeFreeSizes, type FreeSizes } from "./zk-records.ts";
import { openTcpTransport, openUdpTransport, type ZkTransport, type ZkTransportKind } from "./zk-transport.ts";

export const CHECKSUM_POLICIES = ["verify", "ignore"] as const;
export type ChecksumPolicy = (typeof CHECKSUM_POLICIES)[number];

export interface ZkClientOptions {
  readonly host: string;
  readonly port: number;
  readonly transport: ZkTransportKind;
  /** Numeric comm key set on the terminal; 0 = none. */
  readonly commKey: number;
  /** Per request; for bulk chunks, the longest silence tolerated between packets. */
  readonly timeoutMs: number;
  readonly connectTimeoutMs?: number;
  readonly signal: AbortSignal;
  /** Names the device in errors before its serial is known. Default host:port. */
  readonly label?: string;
  readonly checksum?: ChecksumPolicy;
}

export interface DeviceInfo {
  readonly serial: string | undefined;
  readonly deviceName: string | undefined;
  readonly platform: string | undefined;
  readonly firmware: string | undefined;
  readonly vendor: string | undefined;
  readonly sizes: FreeSizes;
}

export interface ZkEvent {
  readonly flag: number;
  readonly data: Buffer;
}

export interface ReadSetOptions {
  /** Byte offset into the set (which starts with a uint32 total) to read from; 0 reads it all. */
  readonly fromOffset?: number;
  readonly chunkSize?: number;
  /** Chunk requests kept in flight, so the link's round trip is paid once rather than once per chunk. */
  readonly readAhead?: number;
  /** Called in order with each chunk and its offset in the set. The next chunk is already being fetched. */
  readonly onData: (chunk: Buffer, offset: number, total: number) => Promise<void> | void;
  readonly signal?: AbortSignal;
  /**
   * The largest set (leading total included) the terminal's own counts and capacities can explain; a larger
   * announcement ends the session rather than a transfer of up to 4 GiB. Capped by MAX_SET_BYTES.
   */
  readonly maxTotal?: number;
}

export const SET_KINDS = {
  attendance: Buffer.from([0x01, 0x0d, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
  users: Buffer.from([0x01, 0x09, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0]),
} as const;
export type SetKind = keyof typeof SET_KINDS;

/**
 * pyzk asks TCP devices for 65,472-byte chunks. Over UDP a lost datagram costs its whole chunk, so chunks are
 * smaller there, yet not pyzk's 16 KB: with two in flight that leaves a 1 ms link a third idle.
 */
export const DEFAULT_CHUNK = { tcp: 0xffc0, udp: 0x8000 } as const;
/** UDP chunks are half the size, so one more in flight keeps a link as busy as TCP's two. */
export const DEFAULT_READ_AHEAD = { tcp: 2, udp: 3 } as const;
const CHUNK_ATTEMPTS = 3;
/** No terminal's log or user table comes near this (5 million 40-byte records); a hard stop under any capacity. */
const MAX_SET_BYTES = 4 + 5_000_000 * 40;
/**
 * The slowest a chunk may arrive once it has started: 256 kbit/s, far below any LAN or VPN that can carry a
 * terminal. Without it a device dripping a byte every few seconds re-arms the silence timer forever.
 */
const MIN_CHUNK_BYTES_PER_SECOND = 32 * 1024;
/** Each goodbye packet (unregister, EXIT) waits at most this long, so a stop never hangs on a dead terminal. */
const GOODBYE_STEP_MS = 300;
/** Acknowledgements a terminal has not read; beyond this it is flooding us without reading. */
const MAX_UNSENT_BYTES = 1 << 20;
/** After the session's signal aborts, the link is cut at the latest this long after, goodbye or not. */
const GOODBYE_LIMIT_MS = 1500;

/** What a request does with each packet carrying its reply id. */
type PacketHandler = (packet: ZkPacket) => void;

interface SendOptions {
  /** The longest silence before the first packet of the answer and between its packets. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** A bound on the whole answer, counted from its first packet; the error says which limit was broken. */
  readonly deadline?: { readonly ms: number; readonly error: () => BioError };
}

interface Pending {
  readonly onPacket: PacketHandler;
  fail(error: unknown): void;
}

/** Wire-cost figures for the benchmark (round trips per poll); with bytesSent/bytesReceived, all it reads. */
export interface ZkClientStats {
  requests: number;
}

/**
 * One session with one terminal over TCP or UDP. Requests are matched to replies by reply id, so several may be
 * in flight and events pushed by the device in between are routed apart. Every request has a timeout and follows
 * the session's signal; when the link ends, `lost` aborts with the reason.
 */
export class ZkClient {
  readonly #options: ZkClientOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #lost = new AbortController();
  #transport: ZkTransport | undefined;
  #replyId = 65534;
  #session = 0;
  #label: string;
  #onEvent: ((event: ZkEvent) => void) | undefined;
  #eventsRegistered = false;
  /** Set once the session's signal aborted: only the goodbye is left to send, each step briefly. */
  #stopping = false;
  #closing: Promise<void> | undefined;
  /** The terminal broke a bound; it may still be streaming, so the goodbye does not wait for answers. */
  #violated = false;
  readonly stats: ZkClientStats = { requests: 0 };

  private constructor(options: ZkClientOptions) {
    this.#options = options;
    this.#label = options.label ?? `${options.host}:${options.port}`;
  }

  /** Opens the link, connects and authenticates with the comm key when the device asks for one. */
  static async connect(options: ZkClientOptions): Promise<ZkClient> {
    const client = new ZkClient(options);
    const open = options.transport === "tcp" ? openTcpTransport : openUdpTransport;
    client.#transport = await open(
      {
        host: options.host,
        port: options.port,
        timeoutMs: options.connectTimeoutMs ?? options.timeoutMs,
        signal: options.signal,
        label: client.#label,
      },
      { onPacket: (packet) => client.#receive(packet), onClose: (error) => client.#end(error) },
    );
    const onAbort = () => client.#stop(options.signal.reason);
    options.signal.addEventListener("abort", onAbort, { once: true });
    client.#lost.signal.addEventListener("abort", () => options.signal.removeEventListener("abort", onAbort), {
      once: true,
    });
    // Aborted while the link was opening: the listener came too late to hear it.
    if (options.signal.aborted) onAbort();
    try {
      await client.#handshake();
      return client;
    } catch (error) {
      // A terminal that assigned a session (then refused the key, say) keeps it until told otherwise, and many
      // serve one session at a time.
      if (client.#session !== 0) await client.#goodbye();
      client.#end(error);
      throw error;
    }
  }

  /** Aborts when the link to the device ends; the reason says why. */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  get bytesReceived(): number {
    return this.#transport?.bytesReceived ?? 0;
  }

  get bytesSent(): number {
    return this.#transport?.bytesSent ?? 0;
  }

  /** Once the serial is known, errors name it rather than the address. */
  setLabel(label: string): void {
    this.#label = label;
  }

  onEvent(handler: ((event: ZkEvent) => void) | undefined): void {
    this.#onEvent = handler;
  }

  async #handshake(): Promise<void> {
    const reply = await this.request(CMD.CONNECT);
    this.#session = reply.session;
    if (reply.command === CMD.ACK_OK) return;
    if (reply.command === CMD.ACK_ERROR) {
      throw new BioError("DEVICE_BUSY", `Terminal ${this.#label} refused the session: it is busy.`, {
        hint: "Another program (attendance software, another connector) may hold the terminal's only connection; close it, or give this connector its own transport.",
      });
    }
    if (reply.command !== CMD.ACK_UNAUTH) throw this.#unexpected(CMD.CONNECT, reply);
    if (this.#options.commKey === 0) {
      throw new BioError("DEVICE_AUTH", `Terminal ${this.#label} requires a comm key and none is configured.`, {
        hint: "Set commKey in this source's config to the value under the terminal's Comm settings (COMM Key).",
      });
    }
    const auth = await this.request(CMD.AUTH, commKeyBytes(this.#options.commKey, this.#session));
    if (auth.command !== CMD.ACK_OK) {
      throw new BioError("DEVICE_AUTH", `Terminal ${this.#label} rejected the comm key.`, {
        hint: "The commKey in this source's config differs from the terminal's (Menu → Comm → COMM Key).",
      });
    }
  }

  /** Sends one command and resolves with the first packet answering it. */
  request(
    command: number,
    data?: Buffer,
    timeoutMs = this.#options.timeoutMs,
    signal?: AbortSignal,
  ): Promise<ZkPacket> {
    return this.#send(command, data, { timeoutMs, signal }, (resolve) => resolve);
  }

  /** Like request(), but rejects unless the device answers ACK_OK. */
  async command(command: number, data?: Buffer): Promise<ZkPacket> {
    const reply = await this.request(command, data);
    if (reply.command !== CMD.ACK_OK) throw this.#unexpected(command, reply);
    return reply;
  }

  #send(
    command: number,
    data: Buffer | undefined,
    options: SendOptions,
    make: (resolve: (packet: ZkPacket) => void, reject: (error: unknown) => void) => PacketHandler,
  ): Promise<ZkPacket> {
    const transport = this.#transport;
    if (!transport || this.#lost.signal.aborted) {
      return Promise.reject(
        this.#lost.signal.reason ?? new BioError("DEVICE_UNREACHABLE", `No session with terminal ${this.#label}.`),
      );
    }
    // A stopping session still says goodbye (and re-enables a locked keypad), but never waits long for it.
    const timeoutMs = this.#stopping ? Math.min(options.timeoutMs, GOODBYE_STEP_MS) : options.timeoutMs;
    const { signal, deadline } = options;
    this.#replyId = (this.#replyId + 1) % 0xffff;
    const replyId = this.#replyId;
    this.stats.requests++;
    return new Promise<ZkPacket>((resolve, reject) => {
      let timer: NodeJS.Timeout;
      let deadlineTimer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          finish();
          reject(
            new BioError(
              "DEVICE_TIMEOUT",
              `Terminal ${this.#label} did not answer ${commandName(command)} within ${timeoutMs} ms.`,
              {
                hint: "The terminal may be busy, stalled or on a slow link; the connector retries. If it persists, check the network or raise requestTimeoutMs.",
              },
            ),
          );
        }, timeoutMs);
      };
      const onAbort = () => {
        finish();
        reject(signal?.reason);
      };
      const finish = () => {
        clearTimeout(timer);
        clearTimeout(deadlineTimer);
        this.#pending.delete(replyId);
        signal?.removeEventListener("abort", onAbort);
      };
      const handle = make(
        (packet) => {
          finish();
          resolve(packet);
        },
        (error) => {
          finish();
          reject(error);
        },
      );
      this.#pending.set(replyId, {
        // Each packet of an answer restarts the timer: it bounds the silence; the deadline bounds the whole.
        onPacket: (packet) => {
          if (deadline && !deadlineTimer) {
            deadlineTimer = setTimeout(() => {
              finish();
              reject(deadline.error());
            }, deadline.ms);
          }
          arm();
          handle(packet);
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      });
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      arm();
      transport.send(encodePacket(command, this.#session, replyId, data));
    });
  }

  #receive(raw: Buffer): void {
    const packet = decodePacket(raw);
    if (!packet) return;
    if (!packet.checksumOk) {
      if (this.#options.checksum !== "ignore") {
        // The packet cannot be trusted, not even its reply id; fail the request it claims to answer so the
        // caller retries, and let anything else time out.
        this.#pending.get(packet.replyId)?.fail(
          new BioError("DEVICE_PROTOCOL", `Terminal ${this.#label} sent a packet with a bad checksum.`, {
            hint: 'Usually line noise, retried. If it repeats on every read, set checksum: "ignore" for this terminal.',
          }),
        );
        return;
      }
    }
    if (packet.command === CMD.REG_EVENT) {
      // Unasked-for events are not acknowledged, so a device cannot make us write without end.
      if (!this.#eventsRegistered) return;
      if ((this.#transport?.pendingBytes ?? 0) > MAX_UNSENT_BYTES) {
        this.#end(
          this.#violation(
            "pushes events faster than it reads their acknowledgements.",
            "The session was ended so the terminal cannot fill this machine's memory; it reconnects with backoff.",
          ),
        );
        return;
      }
      // Acknowledged with our session and reply id 0; the session field of the event carries its flag instead.
      this.#transport?.send(encodePacket(CMD.ACK_OK, this.#session, 0));
      this.#onEvent?.({ flag: packet.session, data: packet.data });
      return;
    }
    const pending = this.#pending.get(packet.replyId);
    if (!pending) {
      // A late answer to a request that timed out and was retried.
      return;
    }
    pending.onPacket(packet);
  }

  /**
   * The session's signal aborted: whatever waits on the terminal gives up now, but the link stays open for the
   * goodbye that close() sends. Should nobody call close(), the link is cut shortly anyway.
   */
  #stop(reason: unknown): void {
    if (this.#stopping || this.#lost.signal.aborted) return;
    this.#stopping = true;
    for (const pending of [...this.#pending.values()]) pending.fail(reason);
    this.#pending.clear();
    setTimeout(() => {
      if (this.#lost.signal.aborted) return;
      // Whoever owns the session never got to close(): the EXIT still goes out, unanswered, before the link ends.
      this.#replyId = (this.#replyId + 1) % 0xffff;
      this.#transport?.send(encodePacket(CMD.EXIT, this.#session, this.#replyId));
      this.#end(reason);
    }, GOODBYE_LIMIT_MS).unref();
  }

  #end(reason: unknown): void {
    if (this.#lost.signal.aborted) return;
    this.#lost.abort(reason);
    this.#transport?.close();
    for (const pending of [...this.#pending.values()]) pending.fail(reason);
    this.#pending.clear();
  }

  #unexpected(command: number, reply: ZkPacket): BioError {
    if (reply.command === CMD.ACK_UNAUTH) {
      return new BioError(
        "DEVICE_AUTH",
        `Terminal ${this.#label} refused ${commandName(command)}: not authenticated.`,
        {
          hint: "Check commKey in this source's config.",
        },
      );
    }
    return new BioError(
      "DEVICE_PROTOCOL",
      `Terminal ${this.#label} answered ${commandName(command)} with ${commandName(reply.command)}.`,
      {
        hint:
          reply.command === CMD.ACK_ERROR
            ? "The terminal refused the command; it may be busy (menu open, enrolling) or not support it."
            : "Unexpected reply; the terminal's firmware may speak a variant of the protocol. Report the model and firmware.",
      },
    );
  }

  /**
   * The terminal broke a bound of the protocol (a size it cannot back, more bytes than announced, a chunk too
   * slow): the session ends rather than retrying, since a device doing this once will do it again, and the
   * supervisor reconnects with backoff.
   */
  #violation(message: string, hint: string): BioError {
    this.#violated = true;
    return new BioError("DEVICE_PROTOCOL", `Terminal ${this.#label} ${message}`, {
      hint,
      context: { violation: true },
    });
  }

  /** A device option such as "~SerialNumber"; undefined when the device does not know it. */
  async option(name: string): Promise<string | undefined> {
    const reply = await this.request(CMD.OPTIONS_RRQ, Buffer.from(`${name}\0`, "latin1"));
    if (reply.command !== CMD.ACK_OK) return undefined;
    const text = reply.data.toString("latin1");
    const value = text.slice(text.indexOf("=") + 1).split("\0")[0] ?? "";
    return value.replaceAll("=", "").trim() || undefined;
  }

  async freeSizes(): Promise<FreeSizes> {
    const reply = await this.command(CMD.FREE_SIZES);
    const sizes = decodeFreeSizes(reply.data);
    if (!sizes) {
      throw new BioError(
        "DEVICE_PROTOCOL",
        `Terminal ${this.#label} sent a ${reply.data.length}-byte size report; 80 or 92 expected.`,
        {
          hint: "This firmware may not serve attendance over port 4370 (newer face terminals use push).",
        },
      );
    }
    return sizes;
  }

  /** `serial` is undefined when the firmware does not report one; the caller decides what stands in for it. */
  async info(): Promise<DeviceInfo> {
    const serial = await this.option("~SerialNumber");
    const version = await this.request(CMD.GET_VERSION);
    return {
      serial,
      deviceName: await this.option("~DeviceName"),
      platform: await this.option("~Platform"),
      vendor: await this.option("~OEMVendor"),
      firmware:
        version.command === CMD.ACK_OK
          ? version.data.toString("latin1").split("\0")[0]?.trim() || undefined
          : undefined,
      sizes: await this.freeSizes(),
    };
  }

  async deviceTime(): Promise<DeviceTime> {
    const reply = await this.command(CMD.GET_TIME);
    if (reply.data.length < 4) throw this.#unexpected(CMD.GET_TIME, reply);
    return decodeDeviceTime(reply.data.readUInt32LE(0));
  }

  async setDeviceTime(time: DeviceTime): Promise<void> {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(encodeDeviceTime(time), 0);
    await this.command(CMD.SET_TIME, data);
  }

  /** Blocks punching until enable() or `seconds` pass, so a crash cannot leave the terminal locked. */
  async disable(seconds: number): Promise<void> {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(seconds, 0);
    await this.command(CMD.DISABLE_DEVICE, data);
  }

  async enable(): Promise<void> {
    await this.command(CMD.ENABLE_DEVICE);
  }

  async registerEvents(mask: number): Promise<void> {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(mask >>> 0, 0);
    // Set before asking: the first event can arrive in the same read as the acknowledgement.
    const before = this.#eventsRegistered;
    this.#eventsRegistered = mask !== 0;
    try {
      await this.command(CMD.REG_EVENT, data);
    } catch (error) {
      this.#eventsRegistered = before;
      throw error;
    }
  }

  /**
   * The buffered bulk read (1503, then 1504 per chunk, then 1502). Chunks are handed over in order as they arrive,
   * so a large log is never held whole; a chunk that times out or fails its checksum is asked for again. What the
   * terminal announces is bounded: the set by `maxTotal`, each chunk by the length asked for and by a deadline.
   */
  async readSet(kind: SetKind, options: ReadSetOptions): Promise<{ total: number }> {
    // Ends the chunk requests still queued or retrying when the read stops early (a failed chunk, a consumer error).
    const reading = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, reading.signal]) : reading.signal;
    const maxTotal = Math.min(options.maxTotal ?? MAX_SET_BYTES, MAX_SET_BYTES);
    let failure: unknown;
    try {
      const prepared = await this.request(CMD.DATA_WRRQ, SET_KINDS[kind]);
      const from = Math.max(0, options.fromOffset ?? 0);
      if (prepared.command === CMD.DATA) {
        // A small set comes back whole; the caller still sees it from the offset it asked for.
        const total = prepared.data.length;
        if (total > maxTotal) throw this.#oversized(kind, total, maxTotal);
        if (from < total) await options.onData(prepared.data.subarray(from), from, total);
        return { total };
      }
      if (prepared.command !== CMD.ACK_OK || prepared.data.length < 5) throw this.#unexpected(CMD.DATA_WRRQ, prepared);
      const total = prepared.data.readUInt32LE(1);
      if (total > maxTotal) throw this.#oversized(kind, total, maxTotal);
      const chunkSize = options.chunkSize ?? DEFAULT_CHUNK[this.#options.transport];
      let ahead = Math.max(1, options.readAhead ?? DEFAULT_READ_AHEAD[this.#options.transport]);
      // Firmware that mishandles queued requests shows it as a chunk that had to be asked again: from then on the
      // rest of the log is read one chunk at a time, as pyzk does.
      const sequential = () => {
        ahead = 1;
      };
      const queue: Array<{ offset: number; data: Promise<Buffer> }> = [];
      let next = from;
      const fill = () => {
        while (queue.length < ahead && next < total) {
          const length = Math.min(chunkSize, total - next);
          const data = this.#chunk(next, length, signal, sequential);
          // Awaited in order below; until then a rejection must not count as unhandled.
          data.catch(() => undefined);
          queue.push({ offset: next, data });
          next += length;
        }
      };
      fill();
      for (let head = queue.shift(); head; head = queue.shift()) {
        const chunk = await head.data;
        fill();
        await options.onData(chunk, head.offset, total);
      }
      return { total };
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      reading.abort(new BioError("ABORTED", "Log read ended."));
      // After a broken bound the device may still be streaming; the goodbye that follows frees its buffer.
      const violated = failure instanceof BioError && failure.context.violation === true;
      if (!this.#lost.signal.aborted && !this.#stopping && !violated) {
        const timeoutMs = failure === undefined ? this.#options.timeoutMs : GOODBYE_STEP_MS;
        await this.request(CMD.FREE_DATA, undefined, timeoutMs).catch(() => undefined);
      }
    }
  }

  #oversized(kind: SetKind, total: number, maxTotal: number): BioError {
    return this.#violation(
      `announced a ${total}-byte ${kind === "users" ? "user table" : "attendance log"}; its own counts and capacities allow at most ${maxTotal} bytes.`,
      "The read was refused so the terminal cannot exhaust this machine's memory or link. Restart the terminal; if it persists, report the model and firmware.",
    );
  }

  async #chunk(offset: number, length: number, signal: AbortSignal, onRetry: () => void): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const data = await this.#fetchChunk(offset, length, signal);
        // Every later record's position depends on this chunk being whole.
        if (data.length !== length) {
          throw new BioError(
            "DEVICE_PROTOCOL",
            `Terminal ${this.#label} sent ${data.length} bytes for a ${length}-byte chunk at offset ${offset}.`,
            { hint: "Asked again; if it persists, lower chunkBytes for this terminal." },
          );
        }
        return data;
      } catch (error) {
        // A timeout or a garbled chunk is asked for again; a lost link, a broken bound or a refusal is not.
        const again =
          error instanceof BioError &&
          (error.code === "DEVICE_TIMEOUT" || error.code === "DEVICE_PROTOCOL") &&
          error.context.violation !== true;
        if (!again || attempt >= CHUNK_ATTEMPTS || this.#lost.signal.aborted || signal.aborted) throw error;
        onRetry();
      }
    }
  }

  #fetchChunk(offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    const request = Buffer.alloc(8);
    request.writeUInt32LE(offset, 0);
    request.writeUInt32LE(length, 4);
    const timeoutMs = this.#options.timeoutMs;
    const deadline = {
      ms: timeoutMs + Math.ceil((length * 1000) / MIN_CHUNK_BYTES_PER_SECOND),
      error: () =>
        this.#violation(
          `sent a ${length}-byte chunk at offset ${offset} slower than ${MIN_CHUNK_BYTES_PER_SECOND / 1024} KiB/s.`,
          "A terminal this slow would hold its source for hours. Check the link; on a slow one lower chunkBytes for this terminal.",
        ),
    };
    return this.#send(CMD.DATA_RDY, request, { timeoutMs, signal, deadline }, (resolve, reject) => {
      // Copied into one buffer of the size asked: holding each packet's slice could pin far larger socket buffers.
      let chunk: Buffer | undefined;
      let received = 0;
      const done = () => {
        const data = chunk?.subarray(0, received) ?? Buffer.alloc(0);
        resolve({ command: CMD.DATA, session: this.#session, replyId: 0, data, checksumOk: true });
      };
      return (packet) => {
        switch (packet.command) {
          case CMD.PREPARE_DATA: {
            // The size we asked for is the only one we accept: trusting the device's would let it decide how much
            // this process buffers. Its second word varies by firmware (0, 1008, 65536, 65528) and means nothing here.
            const announced = packet.data.length >= 4 ? packet.data.readUInt32LE(0) : length;
            if (announced !== length) {
              reject(
                this.#violation(
                  `announced ${announced} bytes for a ${length}-byte chunk at offset ${offset}.`,
                  "The read was refused; the connector reconnects with backoff. If it persists, report the model and firmware.",
                ),
              );
            }
            return;
          }
          case CMD.DATA:
            if (packet.data.length === 0) {
              // Empty packets would re-arm the silence timer without end while carrying nothing.
              reject(
                this.#violation(
                  `sent an empty data packet in a chunk at offset ${offset}.`,
                  "The connector reconnects with backoff.",
                ),
              );
              return;
            }
            if (received + packet.data.length > length) {
              const message = `sent ${received + packet.data.length} bytes for a ${length}-byte chunk at offset ${offset}.`;
              // Over UDP a datagram can arrive twice: that chunk is asked for again. Over TCP it is the device.
              reject(
                this.#options.transport === "udp"
                  ? new BioError("DEVICE_PROTOCOL", `Terminal ${this.#label} ${message}`, {
                      hint: "A duplicated datagram; the chunk is read again.",
                    })
                  : this.#violation(message, "A firmware quirk; the connector reconnects with backoff."),
              );
              return;
            }
            chunk ??= Buffer.allocUnsafe(length);
            packet.data.copy(chunk, received);
            received += packet.data.length;
            if (received === length) done();
            return;
          case CMD.ACK_OK:
            if (received === length) done();
            else
              reject(
                new BioError(
                  "DEVICE_PROTOCOL",
                  `Terminal ${this.#label} ended a chunk after ${received} of ${length} bytes.`,
                  { hint: "Part of the chunk was lost in transit; it is read again." },
                ),
              );
            return;
          default:
            reject(this.#unexpected(CMD.DATA_RDY, packet));
        }
      };
    }).then((packet) => packet.data);
  }

  /**
   * Says goodbye and closes the link: unregisters real-time events and sends CMD_EXIT, each waiting at most
   * GOODBYE_STEP_MS, so a terminal that allows one session at a time is free for the next client at once, and a
   * dead one never holds up a stop. Call it on every path out: stop, abort and error alike.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#lost.signal.aborted) return;
      await this.#goodbye();
      this.#end(new BioError("ABORTED", `Session with terminal ${this.#label} closed.`));
    })();
    return this.#closing;
  }

  async #goodbye(): Promise<void> {
    // Both go out at once: the terminal answers in order, and EXIT must leave even if the first gets no answer.
    const unregister = this.#eventsRegistered
      ? this.request(CMD.REG_EVENT, Buffer.alloc(4), GOODBYE_STEP_MS).catch(() => undefined)
      : undefined;
    this.#eventsRegistered = false;
    const exit = this.request(CMD.EXIT, undefined, GOODBYE_STEP_MS).catch(() => undefined);
    // A device that broke a bound may be mid-stream: the goodbye is on the wire, its answer not worth the wait.
    if (this.#violated) return;
    await Promise.all([unregister, exit]);
  }
}
