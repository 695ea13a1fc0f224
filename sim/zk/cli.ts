import { parseArgs } from "node:util";
import {
  RECORD_LAYOUTS,
  RECORD_SIZES,
  type RecordLayout,
  type RecordSize,
  USER_SIZES,
  type UserSize,
} from "./record-codec.ts";
import { WRITE_MODES, type WriteMode } from "./zk-connection.ts";
import { type Transport, type TrickleOptions, ZkSimulator, type ZkSimulatorOptions } from "./zk-simulator.ts";

export const USAGE = `bioapi sim zk — run simulated ZK terminals (TCP/UDP, protocol port 4370)

  --host ADDR            listen address (default 127.0.0.1)
  --port N               first port (default 4370; 0 = any free port)
  --transport T          tcp | udp | both (default both)
  --count K              K terminals on consecutive ports, serial suffix incremented (default 1)
  --serial S             serial of the first terminal (default SIM0000001)
  --comm-key N           comm key the client must prove (default 0 = none)
  --records N            preloaded attendance records (default 0)
  --users N              enrolled users (default 100)
  --record-size N        8 | 16 | 40 (default 40)
  --record-layout L      standard | zem500: byte order of 8-byte records (default standard)
  --user-size N          28 | 72 (default 72)
  --rate N               live punches per second (default 0)
  --tz ZONE              device time zone, IANA name (default UTC)
  --clock-offset-ms N    device clock minus host clock (default 0)
  --bandwidth BITS       simulated link bandwidth in bits/s (needs --latency-ms or uses 0)
  --latency-ms N         simulated one-way delay (fractions allowed: 0.5)
  --single-connection    turn away a second TCP client while one is connected
  --write-mode M         normal | paced | merged | split (default normal)
  --seed N               seed for generated data (default 1)

Replies seen from real firmware:
  --connect-reply-byte B the CONNECT acknowledgement carries this one data byte (0-255)
  --tcp-data-packet-size N
                         split each TCP chunk into CMD_DATA packets of at most N bytes (real: 1008)
  --session-counter      those CMD_DATA packets count 1, 2, 3, ... in the session field
  --prepare-second-word N
                         second u32 of PREPARE_DATA (default 0; seen: 1008, 65536, 65528)

Hostile terminals:
  --hostile-announce N   the attendance set claims N bytes in its 1503 size info (e.g. 4294967295)
  --hostile-prepare N    every chunk's PREPARE_DATA claims N bytes, then that much filler streams
  --hostile-users N      the user table holds N users, beyond the capacity the terminal reports
  --trickle BYTES:MS     bulk answers drip BYTES of CMD_DATA every MS milliseconds

  --help                 show this text

Runs until SIGINT or SIGTERM.`;

/** What the command needs from outside; tests pass their own and stop it with `signal`. */
export interface SimCliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly signal?: AbortSignal;
}

const processIo: SimCliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

class UsageError extends Error {}

function int(
  name: string,
  value: string | undefined,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^-?\d+(\.\d+)?(e\d+)?$/i.test(value) || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got "${value}".`);
  }
  return n;
}

function oneOf<T extends string | number>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  const found = allowed.find((a) => String(a) === value);
  if (found === undefined) throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got "${value}".`);
  return found;
}

const U32_MAX = 0xffff_ffff;

/** An optional integer flag: absent stays absent, so the simulator keeps its own default. */
function optionalInt(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = int(name, value, 0, min, max);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number, got "${value}".`);
  return n;
}

/** "BYTES:MS" → a trickle; both parts are required so a typo cannot mean "as fast as possible". */
function trickle(value: string | undefined): TrickleOptions | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+):(\d+(?:\.\d+)?)$/.exec(value);
  const bytes = Number(m?.[1]);
  const ms = Number(m?.[2]);
  if (!m || !(bytes >= 1 && bytes <= 1 << 20) || !(ms >= 0 && ms <= 3_600_000)) {
    throw new UsageError(
      `--trickle must be BYTES:MS, e.g. 1:3000 (1 to 1048576 bytes, 0 to 3600000 ms), got "${value}".`,
    );
  }
  return { bytesPerPacket: bytes, intervalMs: ms };
}

interface RealismFlags {
  readonly "record-layout"?: string | undefined;
  readonly "connect-reply-byte"?: string | undefined;
  readonly "tcp-data-packet-size"?: string | undefined;
  readonly "session-counter"?: boolean | undefined;
  readonly "prepare-second-word"?: string | undefined;
  readonly "hostile-announce"?: string | undefined;
  readonly "hostile-prepare"?: string | undefined;
  readonly "hostile-users"?: string | undefined;
  readonly trickle?: string | undefined;
}

/** The real-firmware and hostile switches; only flags that were given become options. */
function realismOptions(v: RealismFlags): ZkSimulatorOptions {
  const connectByte = optionalInt("connect-reply-byte", v["connect-reply-byte"], 0, 255);
  const packetSize = optionalInt("tcp-data-packet-size", v["tcp-data-packet-size"], 1, 1 << 20);
  const secondWord = optionalInt("prepare-second-word", v["prepare-second-word"], 0, U32_MAX);
  const announce = optionalInt("hostile-announce", v["hostile-announce"], 4, U32_MAX);
  const prepare = optionalInt("hostile-prepare", v["hostile-prepare"], 0, U32_MAX);
  const users = optionalInt("hostile-users", v["hostile-users"], 0, 50_000_000);
  const hostile = {
    ...(announce === undefined ? {} : { announceBytes: announce }),
    ...(prepare === undefined ? {} : { prepareBytes: prepare }),
    ...(users === undefined ? {} : { userTableRecords: users }),
  };
  const drip = trickle(v.trickle);
  return {
    recordLayout: oneOf<RecordLayout>("record-layout", v["record-layout"], RECORD_LAYOUTS, "standard"),
    ...(connectByte === undefined ? {} : { connectReplyData: Buffer.from([connectByte]) }),
    ...(packetSize === undefined ? {} : { tcpDataPacketSize: packetSize }),
    ...(v["session-counter"] ? { dataPacketSessionCounter: true } : {}),
    ...(secondWord === undefined ? {} : { prepareDataSecondWord: secondWord }),
    ...(Object.keys(hostile).length > 0 ? { hostile } : {}),
    ...(drip ? { trickle: drip } : {}),
  };
}

/** "SIM0000001" + 2 → "SIM0000003", keeping the digit width. */
export function nthSerial(serial: string, n: number): string {
  const m = /^(.*?)(\d+)$/.exec(serial);
  if (!m) return n === 0 ? serial : `${serial}-${n + 1}`;
  const [, head = "", digits = ""] = m;
  return `${head}${String(Number(digits) + n).padStart(digits.length, "0")}`;
}

function parse(argv: string[]): { options: ZkSimulatorOptions[]; help: boolean } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      transport: { type: "string" },
      count: { type: "string" },
      serial: { type: "string" },
      "comm-key": { type: "string" },
      records: { type: "string" },
      users: { type: "string" },
      "record-size": { type: "string" },
      "user-size": { type: "string" },
      rate: { type: "string" },
      tz: { type: "string" },
      "clock-offset-ms": { type: "string" },
      bandwidth: { type: "string" },
      "latency-ms": { type: "string" },
      "single-connection": { type: "boolean" },
      "write-mode": { type: "string" },
      seed: { type: "string" },
      "record-layout": { type: "string" },
      "connect-reply-byte": { type: "string" },
      "tcp-data-packet-size": { type: "string" },
      "session-counter": { type: "boolean" },
      "prepare-second-word": { type: "string" },
      "hostile-announce": { type: "string" },
      "hostile-prepare": { type: "string" },
      "hostile-users": { type: "string" },
      trickle: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return { options: [], help: true };
  const transport = oneOf("transport", values.transport, ["tcp", "udp", "both"] as const, "both");
  const transports: Transport[] = transport === "both" ? ["tcp", "udp"] : [transport];
  const port = int("port", values.port, 4370, 0, 65_535);
  const count = int("count", values.count, 1, 1, 1000);
  if (port !== 0 && port + count - 1 > 65_535) throw new UsageError("--port plus --count runs past port 65535.");
  const timeZone = values.tz ?? "UTC";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    throw new UsageError(`--tz "${timeZone}" is not a known IANA time zone.`);
  }
  const bandwidth = values.bandwidth === undefined ? undefined : int("bandwidth", values.bandwidth, 0, 1);
  // Fractional: a LAN round trip is often under a millisecond.
  const latencyText = values["latency-ms"];
  const latency = latencyText === undefined ? undefined : Number(latencyText);
  if (latency !== undefined && !(latency >= 0 && latency <= 60_000)) {
    throw new UsageError(`--latency-ms must be a number of milliseconds from 0 to 60000, not "${latencyText}".`);
  }
  const base = {
    host: values.host ?? "127.0.0.1",
    transports,
    commKey: int("comm-key", values["comm-key"], 0, 0, 0xffff_ffff),
    records: int("records", values.records, 0, 0, 10_000_000),
    users: int("users", values.users, 100, 0, 65_534),
    recordSize: oneOf<RecordSize>("record-size", values["record-size"], RECORD_SIZES, 40),
    userSize: oneOf<UserSize>("user-size", values["user-size"], USER_SIZES, 72),
    liveRate: int("rate", values.rate, 0, 0, 100_000),
    timeZone,
    clockOffsetMs: int("clock-offset-ms", values["clock-offset-ms"], 0, -1e12, 1e12),
    singleConnection: values["single-connection"] ?? false,
    writeMode: oneOf<WriteMode>("write-mode", values["write-mode"], WRITE_MODES, "normal"),
    seed: int("seed", values.seed, 1, 0, 0xffff_ffff),
    ...realismOptions(values),
    ...(bandwidth !== undefined || latency !== undefined
      ? { link: { bandwidthBitsPerSec: bandwidth ?? 0, latencyMs: latency ?? 0 } }
      : {}),
  } satisfies ZkSimulatorOptions;
  if (base.recordLayout !== "standard" && base.recordSize !== 8) {
    throw new UsageError(`--record-layout ${base.recordLayout} describes 8-byte records; add --record-size 8.`);
  }
  const serial = values.serial ?? "SIM0000001";
  const options = Array.from({ length: count }, (_, i) => ({
    ...base,
    port: port === 0 ? 0 : port + i,
    serial: nthSerial(serial, i),
    seed: base.seed + i,
  }));
  return { options, help: false };
}

/** `bioapi sim zk …`: starts the terminals, prints one line each, runs until a signal, returns the exit code. */
export async function main(argv: string[], io: SimCliIo = processIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.err(`bioapi sim zk: ${message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.out(USAGE);
    return 0;
  }
  const sims: ZkSimulator[] = [];
  try {
    for (const options of parsed.options) {
      const sim = await ZkSimulator.start(options);
      sims.push(sim);
      io.out(`${sim.serial} ${sim.host}:${sim.port} ${sim.transports.join("+")}`);
    }
  } catch (error) {
    await Promise.all(sims.map((s) => s.close()));
    io.err(`bioapi sim zk: could not start: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  await untilStopped(io.signal);
  await Promise.all(sims.map((s) => s.close()));
  return 0;
}

function untilStopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      signal?.removeEventListener("abort", stop);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
  });
}
