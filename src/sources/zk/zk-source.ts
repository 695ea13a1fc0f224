import { createHash } from "node:crypto";
import type { ZkSourceConfig } from "../../config/config-schema.ts";
import { sleep } from "../../core/abort.ts";
import { driftAdvice, driftKey } from "../../core/clock-drift.ts";
import { BioError } from "../../core/errors.ts";
import { resolveTime, toLocal } from "../../core/local-time.ts";
import { makePunch, type Punch } from "../../core/punch.ts";
import type { CursorValue, QuarantineInput } from "../../store/store.ts";
import type { DeviceStatus, Source, SourceContext } from "../source.ts";
import { openZkSession, readClockDrift } from "./open-zk-session.ts";
import type { DeviceInfo, ZkClient } from "./zk-client.ts";
import type { DeviceTime } from "./zk-codec.ts";
import { EVENT_FLAG } from "./zk-commands.ts";
import {
  type AttendanceRecord,
  chooseRecordLayout,
  decodeAttendance,
  decodeAttendanceEvent,
  type FreeSizes,
  LAYOUT_LABEL,
  LAYOUT_SIZE,
  type LayoutEvidence,
  layoutsOfSize,
  RECORD_LAYOUTS,
  RECORD_SIZES,
  type RecordLayout,
  type RecordSize,
  recordProblem,
} from "./zk-records.ts";
import { UserTableReader } from "./zk-users.ts";

/**
 * Where reading a terminal's log stopped, per serial. `time` is the newest punch's device time (what an operator
 * asks for); `count` and `tail` are what make it safe: the log is append-only, so records at positions at or beyond
 * `count` are new whatever their time says — a clock set backwards or an old punch appended late is still
 * collected — and `tail` (a hash of record count−1) proves on every read that the log was not cleared or rewritten.
 * `layout` is the record layout chosen from the log's own evidence, kept so it is chosen (and logged) once.
 */
export interface ZkCursor {
  readonly time: DeviceTime | null;
  readonly count: number;
  readonly tail: string;
  /** Known whenever count > 0. */
  readonly size: RecordSize | undefined;
  /** Undefined for a cursor written before layouts were told apart by evidence: 8-byte logs are looked at again. */
  readonly layout: RecordLayout | undefined;
}

export function parseZkCursor(value: CursorValue | undefined): ZkCursor | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const v = value as Record<string, CursorValue>;
  if (typeof v.count !== "number" || typeof v.tail !== "string") return undefined;
  const time = typeof v.time === "string" ? v.time : null;
  const layout = RECORD_LAYOUTS.find((l) => l === v.format);
  if (layout) return { time, count: v.count, tail: v.tail, size: LAYOUT_SIZE[layout], layout };
  // Sizes alone, as cursors stored them before: 40 and 16 have one layout each, 8 has two.
  const size = RECORD_SIZES.find((n) => n === v.format);
  if (size) {
    const only = layoutsOfSize(size);
    return { time, count: v.count, tail: v.tail, size, layout: only.length === 1 ? only[0] : undefined };
  }
  return v.count === 0 ? { time, count: 0, tail: v.tail, size: undefined, layout: undefined } : undefined;
}

function cursorValue(cursor: ZkCursor): CursorValue {
  return { time: cursor.time, count: cursor.count, tail: cursor.tail, format: cursor.layout ?? cursor.size ?? null };
}

const recordHash = (raw: Buffer) => createHash("sha256").update(raw).digest("hex").slice(0, 16);

/** Seconds after which a terminal locked by disableDuringRead unlocks itself should the connector die mid-read. */
const DISABLE_SECONDS = 60;
const DRIFT_EVERY_MS = 60_000;
/** A terminal's clock may run a little ahead of what it wrote; beyond a day a time is not a punch. */
const LATEST_SLACK_MS = 86_400_000;
/** Records or users added between the size report and the set, on top of the reported capacity. */
const SET_SLACK = { records: 10_000, users: 1000 } as const;
const LARGEST_RECORD = 40;
const LARGEST_USER = 72;
/** Real-time punches being stored at once; a terminal flooding events beyond this waits for the next read. */
const MAX_PENDING_EVENTS = 1000;
/** A uid is a u16 in every record and user format, so no terminal can enrol more. */
const MAX_USERS = 0xffff;

const FORCED_LAYOUT: Readonly<Record<Exclude<ZkSourceConfig["recordFormat"], "auto">, RecordLayout>> = {
  40: "tft40",
  16: "extended16",
  8: "compact8",
  zem500: "zem500",
};

/** Bytes of a set the terminal's own report can explain: capacity (or count, if larger) plus slack. The client caps it. */
function setLimit(count: number, capacity: number, slack: number, recordBytes: number, most = Infinity): number {
  return 4 + Math.min(Math.max(count, capacity, 0) + slack, most) * recordBytes;
}

function describeEvidence(evidence: readonly LayoutEvidence[]): string {
  return evidence.map((e) => `${e.layout} ${e.plausible}/${e.sampled} plausible`).join(", ");
}

/** The log changed under the cursor: the record at the cursor's position is not the one we read last time. */
class LogRewritten extends Error {}

/**
 * Reads one terminal over the ZK protocol. Each poll costs one round trip (the record count); the log is read only
 * when the count moved, from just before the cursor's position, or in full when the log was cleared or rewritten.
 * Real-time events deliver punches within a second; the reads reconcile them (same punch, same id).
 */
export class ZkSource implements Source {
  readonly #config: ZkSourceConfig;

  constructor(config: ZkSourceConfig) {
    this.#config = config;
  }

  async run(ctx: SourceContext): Promise<void> {
    const config = this.#config;
    const address = `${config.host}:${config.port}/${config.transport}`;
    const client = await openZkSession(config, ctx.signal, config.serial ?? `${config.host}:${config.port}`);
    const events: Promise<void>[] = [];
    // A real-time punch that fails to commit ends the session like any other failure, at the next check.
    let eventFailure: unknown;
    try {
      const info = await client.info();
      const serial = info.serial ?? config.serial;
      if (!serial) {
        throw new BioError("DEVICE_PROTOCOL", `The terminal at ${address} does not report a serial number.`, {
          hint: "Set `serial` in this source's config (it is printed on the terminal's System Info page); punches are attributed to it.",
        });
      }
      if (config.serial && info.serial && info.serial !== config.serial) {
        throw new BioError(
          "DEVICE_MISMATCH",
          `The terminal at ${address} reports serial ${info.serial}, but source ${config.id} expects ${config.serial}.`,
          {
            hint: "The IP address now belongs to another terminal (DHCP?). Fix host, or serial if the terminal was replaced.",
          },
        );
      }
      client.setLabel(serial);
      const device = new DeviceSession(config, ctx, client, { ...info, serial }, address);
      const session = AbortSignal.any([ctx.signal, client.lost]);
      let realtime = false;
      if (config.realtime) {
        client.onEvent((event) => {
          if (event.flag !== EVENT_FLAG.ATTLOG) return;
          // A terminal flooding events cannot queue unbounded work; dropped ones are collected by the next read.
          if (events.length >= MAX_PENDING_EVENTS) return;
          events.push(
            device.onAttendanceEvent(event.data).catch((error: unknown) => {
              eventFailure ??= error;
            }),
          );
        });
        try {
          await client.registerEvents(EVENT_FLAG.ATTLOG);
          realtime = true;
        } catch (error) {
          if (!(error instanceof BioError) || error.code !== "DEVICE_PROTOCOL") throw error;
          // Some firmware has no real-time events; polling alone still collects every punch.
          ctx.logger.warn(
            "The terminal refused real-time events; collecting by polling only. Set realtime: false to skip asking.",
            {
              serial,
            },
          );
        }
      }
      device.realtime = realtime;
      await device.measureDrift();
      device.report(info.sizes);
      let lastRead = Number.NEGATIVE_INFINITY;
      let lastDrift = ctx.clock.now();
      // The count the terminal reported when its log was last read: a different count means new records.
      let readAtCount: number | undefined;
      let sizes = info.sizes;
      for (let first = true; !session.aborted; first = false) {
        await ctx.waitUntilActive();
        // Asked after the gate opened: a count from before a long pause would be stale.
        if (!first) sizes = await client.freeSizes();
        const started = ctx.clock.now();
        const due = started - lastRead >= config.reconcileIntervalMs;
        const changed = sizes.records !== readAtCount;
        if (due || changed) {
          await device.sync(sizes);
          readAtCount = sizes.records;
          lastRead = started;
        }
        // A read costs many round trips already; one more keeps the drift current when punches flow.
        if ((changed && !first) || started - lastDrift >= DRIFT_EVERY_MS) {
          await device.measureDrift();
          lastDrift = started;
        }
        // Events still being stored belong to this poll.
        await Promise.all(events.splice(0));
        if (eventFailure) throw eventFailure;
        device.report(sizes, started);
        await sleep(config.pollIntervalMs, session).catch(() => undefined);
        if (eventFailure) throw eventFailure;
      }
      if (!ctx.signal.aborted && client.lost.aborted) throw client.lost.reason;
    } finally {
      // Events arriving during the goodbye would start stores nobody waits for; the next read collects them.
      client.onEvent(undefined);
      await Promise.allSettled(events);
      await client.close();
    }
  }
}

/** State of one connected terminal while the source runs. */
class DeviceSession {
  readonly #config: ZkSourceConfig;
  readonly #ctx: SourceContext;
  readonly #client: ZkClient;
  readonly #info: DeviceInfo;
  readonly #address: string;
  readonly #serial: string;
  cursor: ZkCursor | undefined;
  realtime = false;
  #users: ReadonlyMap<number, string> | undefined;
  #driftMs: number | undefined;
  #warnedDrift: string | undefined;
  #lastPunchTime: string | undefined;

  constructor(
    config: ZkSourceConfig,
    ctx: SourceContext,
    client: ZkClient,
    info: DeviceInfo & { readonly serial: string },
    address: string,
  ) {
    this.#config = config;
    this.#ctx = ctx;
    this.#client = client;
    this.#info = info;
    this.#address = address;
    this.#serial = info.serial;
    this.cursor = parseZkCursor(ctx.cursors.get(info.serial));
  }

  report(sizes: FreeSizes, polledAt?: number): void {
    const device: DeviceStatus = {
      serial: this.#serial,
      address: this.#address,
      model: this.#info.deviceName ?? this.#info.platform,
      firmware: this.#info.firmware,
      records: sizes.records,
      users: sizes.users,
      recordCapacity: sizes.recordCapacity,
      recordSize: this.cursor?.size,
      recordLayout: this.cursor?.layout,
      clockDriftMs: this.#driftMs,
      realtime: this.realtime,
    };
    this.#ctx.progress({
      ...(polledAt === undefined ? {} : { lastPollAt: polledAt }),
      device,
      ...(this.#lastPunchTime ? { lastPunchTime: this.#lastPunchTime } : {}),
    });
  }

  /**
   * The newest time the terminal could have written: its own clock plus a day — or this machine's, when that is
   * later: a terminal whose clock reset to 2000 after a power cut still holds the punches it wrote before.
   */
  #latest(): DeviceTime {
    const ahead = Math.max(0, this.#driftMs ?? 0);
    return toLocal(this.#ctx.clock.now() + ahead + LATEST_SLACK_MS, this.#config.timezone);
  }

  async measureDrift(): Promise<void> {
    this.#driftMs = await readClockDrift(this.#client, this.#config.timezone, this.#ctx.clock);
    if (Math.abs(this.#driftMs) < this.#config.maxClockDriftMs) {
      this.#warnedDrift = undefined;
      return;
    }
    if (this.#config.syncClock) {
      const now = toLocal(this.#ctx.clock.now(), this.#config.timezone);
      await this.#client.setDeviceTime(now);
      this.#ctx.logger.warn("Terminal clock corrected (syncClock is on).", {
        serial: this.#serial,
        driftMs: this.#driftMs,
        setTo: now,
      });
      this.#driftMs = 0;
    } else if (driftKey(this.#driftMs) !== this.#warnedDrift) {
      // Measured every poll while punches flow: said again only when the rounded figure moves.
      this.#warnedDrift = driftKey(this.#driftMs);
      const advice = driftAdvice(this.#driftMs, this.#config.timezone);
      this.#ctx.logger.warn(`${advice.message} ${advice.fix}`, { serial: this.#serial, driftMs: this.#driftMs });
    }
  }

  async onAttendanceEvent(data: Buffer): Promise<void> {
    const event = decodeAttendanceEvent(data);
    if (!event) {
      this.#ctx.logger.warn("Unrecognised real-time event ignored; the next read collects the punch.", {
        serial: this.#serial,
        bytes: data.length,
      });
      return;
    }
    let userId: string | undefined = event.userId;
    // Only the cached table: loading it here could overlap a log read, and the device has one read buffer.
    if (userId.startsWith("#uid:")) userId = this.#users?.get(Number(userId.slice(5)));
    const record: AttendanceRecord = { ...event, uid: 0, userId, workCode: 0 };
    // Invalid events are left to the log read, which quarantines the record with its position.
    if (userId === undefined || recordProblem(record, this.#latest())) return;
    const punch = this.#punch(record, userId, new Date(this.#ctx.clock.now()).toISOString());
    await this.#ctx.emit([punch], null);
    this.#lastPunchTime = punch.time;
    this.#ctx.progress({ lastPunchTime: punch.time });
  }

  async sync(sizes: FreeSizes): Promise<void> {
    const cursor = this.cursor;
    if (!cursor && sizes.records === 0) return;
    try {
      await this.#read(sizes, cursor && sizes.records >= cursor.count ? cursor : undefined, cursor);
    } catch (error) {
      if (!(error instanceof LogRewritten)) throw error;
      this.#ctx.logger.warn(
        "The terminal's log no longer holds the record at the cursor (cleared, rewritten or rotated); reading it all again. Punches already delivered are not sent twice.",
        { serial: this.#serial, cursorCount: cursor?.count, records: sizes.records },
      );
      await this.#read(sizes, undefined, cursor);
    }
  }

  /**
   * One pass over the log. With `from`, reading starts `lookbackRecords` before its position and the record at
   * the position must match its tail hash; without, the whole log is read and every record counts as new.
   */
  async #read(sizes: FreeSizes, start: ZkCursor | undefined, previous: ZkCursor | undefined): Promise<void> {
    const config = this.#config;
    const forced = config.recordFormat === "auto" ? undefined : FORCED_LAYOUT[config.recordFormat];
    // A forced layout of another size makes the cursor's positions meaningless: read it all.
    const from = forced && start?.size && start.size !== LAYOUT_SIZE[forced] ? undefined : start;
    if (forced && start?.size && !from) {
      this.#ctx.logger.warn(
        `recordFormat ${config.recordFormat} does not match the ${start.size}-byte records the cursor was built on; the whole log is read again. Punches read before keep their ids only if the old layout was right.`,
        { serial: this.#serial },
      );
    }
    // A log read again (cleared, rewritten) is still written by the same firmware: its layout stays.
    const known = from?.layout ?? (from ? undefined : previous?.layout);
    let layout: RecordLayout | undefined = forced ?? known;
    let size: RecordSize | undefined = layout ? LAYOUT_SIZE[layout] : from?.size;
    // A cursor from before layouts were told apart was read as compact8: keep that unless the log says otherwise.
    const before = from ?? previous;
    const legacy: RecordLayout | undefined = before && !before.layout && before.size === 8 ? "compact8" : undefined;
    const startIndex = from && size ? Math.max(0, from.count - config.lookbackRecords) : 0;
    let index = startIndex;
    let carry = Buffer.alloc(0);
    let count = from?.count ?? 0;
    let tail = from?.tail ?? "";
    let time = from?.time ?? previous?.time ?? null;
    // Before the log read, never during it: the terminal has one read buffer. Read afresh each time, as pyzk does:
    // the user count alone cannot tell that a leaver was deleted and a new hire enrolled under the same uid.
    const users = size === 8 || size === undefined ? await this.#loadUsers(sizes) : undefined;
    const disabled = config.disableDuringRead;
    if (disabled) await this.#client.disable(DISABLE_SECONDS);
    try {
      await this.#client.readSet("attendance", {
        fromOffset: from && size ? 4 + startIndex * size : 0,
        ...(config.readAhead ? { readAhead: config.readAhead } : {}),
        ...(config.chunkBytes ? { chunkSize: config.chunkBytes } : {}),
        maxTotal: setLimit(sizes.records, sizes.recordCapacity, SET_SLACK.records, size ?? LARGEST_RECORD),
        signal: this.#ctx.signal,
        onData: async (chunk, offset, total) => {
          const data = offset === 0 ? chunk.subarray(4) : chunk;
          const dataBytes = total - 4;
          const latest = this.#latest();
          if (!layout) {
            // An empty log says nothing about its layout; the first records will.
            if (dataBytes <= 0) return;
            layout = this.#chooseLayout(dataBytes, sizes.records, data, latest, size, legacy);
            size = LAYOUT_SIZE[layout];
          }
          const recordBytes = LAYOUT_SIZE[layout];
          if (dataBytes % recordBytes !== 0) {
            throw new BioError(
              "DEVICE_FORMAT",
              `Terminal ${this.#serial} sent a ${dataBytes}-byte log for ${sizes.records} records, which ${LAYOUT_LABEL[layout]} records do not fill evenly.`,
              {
                hint: "Set recordFormat for this source if the model's layout is known (or back to auto), and report the model and firmware.",
              },
            );
          }
          if (from && offset > 0 && dataBytes / recordBytes < from.count) throw new LogRewritten();
          const bytes = carry.length > 0 ? Buffer.concat([carry, data]) : data;
          const whole = bytes.length - (bytes.length % recordBytes);
          carry = Buffer.from(bytes.subarray(whole));
          const punches: Punch[] = [];
          const quarantined: QuarantineInput[] = [];
          const collectedAt = new Date(this.#ctx.clock.now()).toISOString();
          for (let at = 0; at < whole; at += recordBytes, index++) {
            const raw = bytes.subarray(at, at + recordBytes);
            if (from && index === from.count - 1 && recordHash(raw) !== from.tail) throw new LogRewritten();
            const record = decodeAttendance(raw, 0, layout);
            // A uid missing from the freshly read user table (the user was deleted) keeps its number rather than
            // losing the punch.
            const userId = record.userId ?? users?.get(record.uid) ?? String(record.uid);
            const isNew = index >= count;
            if (isNew) {
              count = index + 1;
              tail = recordHash(raw);
            }
            // Records before the cursor were committed with it; they are read only to prove the log unchanged.
            if (!isNew) continue;
            const problem = recordProblem(record, latest);
            if (problem) {
              quarantined.push({
                reason: `${problem} (record ${index})`,
                payload: { serial: this.#serial, index, layout, raw: raw.toString("hex") },
              });
              continue;
            }
            time = record.time;
            punches.push(this.#punch(record, userId, collectedAt));
          }
          const next: ZkCursor = { time, count, tail, size: recordBytes, layout };
          await this.#ctx.emit(punches, { [this.#serial]: cursorValue(next) }, quarantined);
          this.cursor = next;
          // Positions in the log, both of them: the rate and ETA the status page derives stay true.
          this.#ctx.progress({ backlog: { done: index, total: Math.max(index, sizes.records) } });
          const last = punches.at(-1);
          if (last) this.#lastPunchTime = last.time;
        },
      });
    } finally {
      if (disabled) await this.#client.enable().catch(() => undefined);
    }
    if (from && index < from.count) throw new LogRewritten();
    this.#ctx.progress({ backlog: null });
  }

  /**
   * Decides the layout from the first chunk read, logs the choice once (the cursor keeps it), and refuses a log
   * that no layout reads as mostly plausible punches: delivering it would send payroll dates in 2087.
   */
  #chooseLayout(
    dataBytes: number,
    count: number,
    sample: Buffer,
    latest: DeviceTime,
    size: RecordSize | undefined,
    prefer: RecordLayout | undefined,
  ): RecordLayout {
    const candidates = size ? layoutsOfSize(size) : RECORD_LAYOUTS;
    const choice = chooseRecordLayout(dataBytes, count, sample, latest, candidates, prefer);
    if (!choice.layout) {
      const fits = choice.evidence.length > 0;
      const evidence = describeEvidence(choice.evidence);
      throw new BioError(
        "DEVICE_FORMAT",
        choice.ambiguous
          ? `Terminal ${this.#serial}'s log reads as plausible punches under more than one record layout (${evidence}), so its dates cannot be trusted. Nothing was delivered.`
          : fits
            ? `Terminal ${this.#serial}'s log fits no known record layout: under each, most times are impossible (${evidence}). Nothing was delivered.`
            : `Terminal ${this.#serial} sent a ${dataBytes}-byte log for ${count} records: no known record layout (8, 16 or 40 bytes) fits.`,
        {
          hint: choice.ambiguous
            ? 'Set recordFormat for this source to the model\'s layout (8 or "zem500"); more punches on the terminal may also settle it.'
            : fits
              ? "Check the terminal's date and time; if they are right, set recordFormat for this source to the model's layout, and report the model and firmware."
              : "Set recordFormat for this source if the model's layout is known, and report the model and firmware.",
        },
      );
    }
    this.#ctx.logger.info(`Terminal ${this.#serial} writes ${LAYOUT_LABEL[choice.layout]} records.`, {
      serial: this.#serial,
      layout: choice.layout,
      evidence: describeEvidence(choice.evidence),
    });
    return choice.layout;
  }

  #punch(record: AttendanceRecord, userId: string, collectedAt: string): Punch {
    const resolved = resolveTime(record.time, this.#config.timezone);
    return makePunch({
      deviceSerial: this.#serial,
      userId,
      local: resolved.local,
      iso: resolved.iso,
      stateCode: record.state,
      verifyCode: record.verify,
      workCode: record.workCode ? String(record.workCode) : undefined,
      source: "zk",
      collectedAt,
    });
  }

  /** uid → user id, needed where records or events carry only the internal index. */
  async #loadUsers(sizes: FreeSizes): Promise<ReadonlyMap<number, string>> {
    const table = new UserTableReader(sizes.users);
    await this.#client.readSet("users", {
      onData: (chunk, offset, total) => table.push(chunk, offset, total),
      maxTotal: setLimit(sizes.users, sizes.userCapacity, SET_SLACK.users, LARGEST_USER, MAX_USERS),
      signal: this.#ctx.signal,
    });
    this.#users = table.users;
    return table.users;
  }
}
