/**
 * `npm run bench:zk`: terminals over the ZK protocol.
 *
 * 1. Reading a 100,000-record log (40-byte records) over TCP and over UDP through a simulated 100 Mbit/s link with a
 *    1 ms round trip, against the link's own limit for the same bytes, and node-zklib on the same link (on the
 *    largest log it reads correctly).
 * 2. What an unchanged terminal costs per poll.
 * 3. Real-time event → reference cloud latency, through a real `bioapi run` process.
 * 4. 200 simulated terminals polled by one connector process: peak RSS and idle CPU.
 * 5. 20 healthy terminals beside hostile ones (a 4 GiB log, a 4 GiB chunk, a 1,000,000-user table, a chunk dripped a
 *    byte at a time) in one connector: its peak RSS, and the healthy terminals' poll latency against the same 20 alone.
 *
 * BENCH_ZK_RECORDS (100,000), BENCH_ZK_TERMINALS (200), BENCH_ZK_EVENTS (200) override the sizes.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startCloud } from "../cloud/cloud-server.ts";
import { ZkSimulator } from "../sim/zk/zk-simulator.ts";
import { ensureDataDir } from "../src/app/data-dir.ts";
import { sourceSchema } from "../src/config/config-schema.ts";
import { punchId } from "../src/core/punch.ts";
import { saveEnrollment } from "../src/secrets/enrollment.ts";
import { openSecretStore } from "../src/secrets/open-secret-store.ts";
import { ZkClient } from "../src/sources/zk/zk-client.ts";
import { decodeAttendance } from "../src/sources/zk/zk-records.ts";
import { ConnectorProcess } from "../test/helpers/connector-process.ts";
import { sourceHarness } from "../test/helpers/run-source.ts";
import { tempDir } from "../test/helpers/temp-dir.ts";
import { waitFor } from "../test/helpers/wait-for.ts";
import { log, peakRssMb, percentile } from "./bench-kit.ts";

const RECORDS = Number(process.env.BENCH_ZK_RECORDS ?? 100_000);
const TERMINALS = Number(process.env.BENCH_ZK_TERMINALS ?? 200);
const EVENTS = Number(process.env.BENCH_ZK_EVENTS ?? 200);
const BANDWIDTH = 100_000_000;
const RTT_MS = 1;

interface LinkRead {
  transport: string;
  records: number;
  seconds: number;
  recordsPerSec: number;
  roundTrips: number;
  wireBytesPerRecord: number;
  linkLimitSeconds: number;
  vsLinkLimit: number;
}

/**
 * A simulated terminal in its own process (`bioapi sim zk`), as a real terminal has its own CPU: the reader under
 * test does not share a thread with the device it reads.
 */
async function terminalProcess(args: readonly string[]): Promise<{ port: number; stop: () => Promise<void> }> {
  const bin = new URL("../bin/bioapi.mjs", import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, "sim", "zk", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const port = await waitFor("the simulated terminal", () => Number(/:(\d+) /.exec(out)?.[1] ?? 0), 30_000, 10);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const linkArgs = ["--bandwidth", String(BANDWIDTH), "--latency-ms", String(RTT_MS / 2)];

/** Our client: the buffered read of the whole log, every record decoded. */
async function ourRead(transport: "tcp" | "udp"): Promise<LinkRead> {
  const sim = await terminalProcess(["--records", String(RECORDS), "--transport", transport, ...linkArgs]);
  try {
    const client = await ZkClient.connect({
      host: "127.0.0.1",
      port: sim.port,
      transport,
      commKey: 0,
      timeoutMs: 5000,
      signal: AbortSignal.timeout(120_000),
    });
    const before = client.stats.requests;
    const bytesBefore = client.bytesReceived + client.bytesSent;
    let decoded = 0;
    let carry = Buffer.alloc(0);
    const t0 = performance.now();
    await client.readSet("attendance", {
      onData: (chunk, offset) => {
        const bytes = Buffer.concat([carry, offset === 0 ? chunk.subarray(4) : chunk]);
        const whole = bytes.length - (bytes.length % 40);
        for (let at = 0; at < whole; at += 40) if (decodeAttendance(bytes, at, "tft40").userId) decoded++;
        carry = bytes.subarray(whole);
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const roundTrips = client.stats.requests - before;
    const wire = client.bytesReceived + client.bytesSent - bytesBefore;
    await client.close();
    if (decoded !== RECORDS) throw new Error(`read ${decoded} of ${RECORDS} records over ${transport}`);
    // The link's own limit: every byte that crossed it, at its bandwidth, plus the one round trip any request needs.
    const linkLimitSeconds = (wire * 8) / BANDWIDTH + RTT_MS / 1000;
    return {
      transport,
      records: decoded,
      seconds,
      recordsPerSec: Math.round(decoded / seconds),
      roundTrips,
      wireBytesPerRecord: Number((wire / decoded).toFixed(3)),
      linkLimitSeconds: Number(linkLimitSeconds.toFixed(4)),
      vsLinkLimit: Number((seconds / linkLimitSeconds).toFixed(3)),
    };
  } finally {
    await sim.stop();
  }
}

function nodeZklibOnce(port: number): Promise<{ records: number; seconds: number; error: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [new URL("./node-zklib-read.ts", import.meta.url).pathname, String(port), "10000"],
      {
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", () => {
      clearTimeout(timer);
      const line = out.trim().split("\n").at(-1) ?? "";
      try {
        resolve(JSON.parse(line) as { records: number; seconds: number; error: string | null });
      } catch {
        resolve({ records: 0, seconds: 0, error: `no result (${out.slice(0, 200)})` });
      }
    });
  });
}

/** node-zklib on the same link, on the largest log it reads correctly (it needs each reply packet written apart). */
async function nodeZklibRead(): Promise<{ largestCorrect: number; recordsPerSec: number; attempts: string[] }> {
  const attempts: string[] = [];
  for (const n of [RECORDS, 50_000, 10_000, 5_000, 1_600, 1_000, 500]) {
    if (n > RECORDS) continue;
    const sim = await terminalProcess([
      "--records",
      String(n),
      "--transport",
      "tcp",
      "--write-mode",
      "paced",
      ...linkArgs,
    ]);
    try {
      const result = await nodeZklibOnce(sim.port);
      attempts.push(`${n}: ${result.records} records${result.error ? ` (${result.error.slice(0, 80)})` : ""}`);
      if (result.records === n && !result.error) {
        return { largestCorrect: n, recordsPerSec: Math.round(n / result.seconds), attempts };
      }
    } finally {
      await sim.stop();
    }
  }
  return { largestCorrect: 0, recordsPerSec: 0, attempts };
}

/** An unchanged terminal, polled by the real source: what each poll costs once the log is read. */
async function idleCost(): Promise<{ roundTripsPerPoll: number; bytesPerPoll: number; fullReadBytes: number }> {
  const sim = await ZkSimulator.start({ records: RECORDS, recordSize: 40 });
  await using dir = await tempDir("bioapi-bench-zk-");
  await using h = sourceHarness(dir.path);
  try {
    await h.run([
      sourceSchema.parse({
        id: "gate",
        kind: "zk",
        host: sim.host,
        port: sim.port,
        pollIntervalMs: 200,
        realtime: false,
      }),
    ]);
    await waitFor("the log read", () => h.store.depth >= RECORDS, 120_000, 50);
    const fullReadBytes = sim.stats().bytesSent;
    const readDone = Date.now();
    await waitFor("a later poll", () => Date.parse(h.supervisor.status()[0]?.lastPollAt ?? "") > readDone, 10_000);
    sim.resetStats();
    await new Promise((r) => setTimeout(r, 3000));
    const s = sim.stats();
    const polls = s.commands[50] ?? 0;
    return {
      roundTripsPerPoll: Number((s.requests / polls).toFixed(2)),
      bytesPerPoll: Math.round((s.bytesSent + s.bytesReceived) / polls),
      fullReadBytes,
    };
  } finally {
    await sim.close();
  }
}

async function enrolledConnector(dir: string, sources: unknown[]) {
  const cloud = await startCloud({ dataDir: join(dir, "cloud") });
  const node = cloud.addNode();
  cloud.setConfig(node.nodeId, { schemaVersion: 1, sources });
  const layout = ensureDataDir(join(dir, "connector"));
  await saveEnrollment(openSecretStore(layout), { cloudUrl: cloud.url, nodeId: node.nodeId, nodeSecret: node.secret });
  return { cloud, nodeId: node.nodeId, dataDir: layout.root };
}

const zkSource = (sim: ZkSimulator, i: number) => ({
  id: `t${i}`,
  kind: "zk",
  host: sim.host,
  port: sim.port,
  serial: sim.serial,
  timezone: "Asia/Kolkata",
});

/** Real-time punches through a real connector process into the reference cloud, each timed from the punch. */
async function realtimeLatency(): Promise<{ samples: number; p50Ms: number; p99Ms: number }> {
  await using dir = await tempDir("bioapi-bench-zk-rt-");
  const sim = await ZkSimulator.start({ records: 1000, serial: "RT-BENCH-1", timeZone: "Asia/Kolkata" });
  const { cloud, nodeId, dataDir } = await enrolledConnector(dir.path, [
    { ...zkSource(sim, 0), pollIntervalMs: 60_000 },
  ]);
  const connector = await ConnectorProcess.started(dataDir, ["--log-level", "warn"]);
  try {
    await waitFor("the log in the cloud", () => cloud.count(nodeId) >= 1000, 60_000, 20);
    const sent = new Map<string, number>();
    for (let i = 0; i < EVENTS; i++) {
      const record = sim.addPunch({ userId: String(50_000 + i), state: i % 2 });
      sent.set(punchId(sim.serial, record.userId, record.time.replace(" ", "T"), record.state), Date.now());
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
    await waitFor("every event in the cloud", () => cloud.count(nodeId) >= 1000 + EVENTS, 30_000, 20);
    const latencies: number[] = [];
    for (const p of cloud.punches(nodeId, 1_000_000)) {
      const at = sent.get(p.id);
      if (at !== undefined) latencies.push(Date.parse(p.firstReceivedAt) - at);
    }
    return {
      samples: latencies.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
    };
  } finally {
    await connector.kill("SIGTERM");
    await sim.close();
    await cloud.close();
  }
}

function cpuSeconds(stat: string): number {
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Many terminals, one connector: its peak memory, and its CPU while every terminal is idle. */
async function manyTerminals(): Promise<{
  terminals: number;
  peakRssMb: number;
  idleCpuPercent: number;
  idleWindowS: number;
}> {
  await using dir = await tempDir("bioapi-bench-zk-many-");
  const sims: ZkSimulator[] = [];
  for (let i = 0; i < TERMINALS; i++) {
    sims.push(await ZkSimulator.start({ records: 500, serial: `FLEET${String(i).padStart(4, "0")}`, seed: i + 1 }));
  }
  const { cloud, nodeId, dataDir } = await enrolledConnector(dir.path, sims.map(zkSource));
  const connector = await ConnectorProcess.started(dataDir, ["--log-level", "warn"]);
  const pid = connector.child.pid as number;
  try {
    await waitFor("every log in the cloud", () => cloud.count(nodeId) >= TERMINALS * 500, 300_000, 100);
    // Let the first reads' garbage be collected and the polls settle before measuring idle.
    await new Promise((r) => setTimeout(r, 5000));
    const windowS = 30;
    const before = cpuSeconds(await readFile(`/proc/${pid}/stat`, "utf8"));
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const after = cpuSeconds(await readFile(`/proc/${pid}/stat`, "utf8"));
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const peakKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return {
      terminals: TERMINALS,
      peakRssMb: Number((peakKb / 1024).toFixed(1)),
      idleCpuPercent: Number((((after - before) / windowS) * 100).toFixed(2)),
      idleWindowS: windowS,
    };
  } finally {
    await connector.kill("SIGTERM");
    await Promise.all(sims.map((s) => s.close()));
    await cloud.close();
  }
}

const HEALTHY = 20;
const POLL_SAMPLES = 5;

/** The terminals a hostile neighbour can be, each as a simulator option set. */
const HOSTILE_KINDS = [
  { name: "4 GiB log", options: { hostile: { announceBytes: 0xffff_ffff } } },
  { name: "4 GiB chunk", options: { hostile: { prepareBytes: 0xffff_ffff } } },
  { name: "1,000,000 users", options: { recordSize: 8 as const, hostile: { userTableRecords: 1_000_000 } } },
  { name: "trickle", options: { trickle: { bytesPerPacket: 1, intervalMs: 3000 } } },
] as const;

/**
 * Punch → cloud latency on `HEALTHY` polled terminals (real-time off, so it is the poll that finds each punch), with
 * or without hostile neighbours in the same connector process; and that process's peak RSS.
 */
async function pollLatency(withHostile: boolean): Promise<{
  p50Ms: number;
  p99Ms: number;
  peakRssMb: number;
  /** Per hostile terminal: sessions it was given and CMD_EXITs it received (each refusal ends one session). */
  hostileSessions: Array<{ kind: string; sessions: number; exits: number }>;
}> {
  await using dir = await tempDir("bioapi-bench-zk-hostile-");
  const healthy: ZkSimulator[] = [];
  for (let i = 0; i < HEALTHY; i++) {
    healthy.push(await ZkSimulator.start({ records: 500, serial: `CALM${String(i).padStart(4, "0")}`, seed: i + 1 }));
  }
  const hostile: ZkSimulator[] = [];
  if (withHostile) {
    for (const [i, kind] of HOSTILE_KINDS.entries()) {
      hostile.push(await ZkSimulator.start({ records: 500, serial: `HOSTILE${i}`, ...kind.options }));
    }
  }
  const source = (sim: ZkSimulator, i: number) => ({ ...zkSource(sim, i), realtime: false, pollIntervalMs: 1000 });
  const { cloud, nodeId, dataDir } = await enrolledConnector(dir.path, [
    ...healthy.map(source),
    ...hostile.map((sim, i) => source(sim, HEALTHY + i)),
  ]);
  const connector = await ConnectorProcess.started(dataDir, ["--log-level", "warn"]);
  try {
    await waitFor("every healthy log in the cloud", () => cloud.count(nodeId) >= HEALTHY * 500, 120_000, 50);
    const sent = new Map<string, number>();
    for (let round = 0; round < POLL_SAMPLES; round++) {
      for (const [i, sim] of healthy.entries()) {
        const record = sim.addPunch({ userId: String(60_000 + round * HEALTHY + i), state: round % 2 });
        sent.set(punchId(sim.serial, record.userId, record.time.replace(" ", "T"), record.state), Date.now());
        await new Promise((r) => setTimeout(r, 1000 / HEALTHY));
      }
    }
    const expected = HEALTHY * 500 + sent.size;
    await waitFor("every healthy punch in the cloud", () => cloud.count(nodeId) >= expected, 60_000, 20);
    const latencies: number[] = [];
    for (const p of cloud.punches(nodeId, 1_000_000)) {
      const at = sent.get(p.id);
      if (at !== undefined) latencies.push(Date.parse(p.firstReceivedAt) - at);
    }
    const hostileSessions = hostile.map((sim, i) => ({
      kind: HOSTILE_KINDS[i]?.name ?? "?",
      sessions: sim.stats().connectionsAccepted,
      exits: sim.stats().exits,
    }));
    // A hostile terminal that was never refused would prove nothing about its neighbours.
    for (const h of hostileSessions) if (h.exits === 0) throw new Error(`the ${h.kind} terminal was never refused`);
    return {
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      peakRssMb: Number((await peakRssMb(connector.child.pid as number)).toFixed(1)),
      hostileSessions,
    };
  } finally {
    await connector.kill("SIGTERM");
    await Promise.all([...healthy, ...hostile].map((s) => s.close()));
    await cloud.close();
  }
}

async function main(): Promise<void> {
  log(`Reading ${RECORDS.toLocaleString()} records through a ${BANDWIDTH / 1e6} Mbit/s, ${RTT_MS} ms round-trip link…`);
  const tcp = await ourRead("tcp");
  log(`  ours, TCP: ${tcp.recordsPerSec.toLocaleString()} records/s, ${tcp.vsLinkLimit}× the link limit`);
  const udp = await ourRead("udp");
  log(`  ours, UDP: ${udp.recordsPerSec.toLocaleString()} records/s, ${udp.vsLinkLimit}× the link limit`);
  const zklib = await nodeZklibRead();
  log(`  node-zklib: ${zklib.recordsPerSec.toLocaleString()} records/s on ${zklib.largestCorrect} records`);
  const idle = await idleCost();
  log(`  unchanged terminal: ${idle.roundTripsPerPoll} round trips, ${idle.bytesPerPoll} bytes per poll`);
  const rt = await realtimeLatency();
  log(`  real-time event → cloud: p99 ${rt.p99Ms} ms`);
  const many = await manyTerminals();
  log(`  ${many.terminals} terminals: peak RSS ${many.peakRssMb} MB, idle CPU ${many.idleCpuPercent}%`);
  const calm = await pollLatency(false);
  log(`  ${HEALTHY} terminals alone: poll latency p99 ${calm.p99Ms} ms, peak RSS ${calm.peakRssMb} MB`);
  const stormy = await pollLatency(true);
  log(`  …beside ${HOSTILE_KINDS.length} hostile ones: p99 ${stormy.p99Ms} ms, peak RSS ${stormy.peakRssMb} MB`);
  const latencyRatio = Number((stormy.p99Ms / Math.max(1, calm.p99Ms)).toFixed(2));

  const result = {
    link: { bandwidthBitsPerSec: BANDWIDTH, roundTripMs: RTT_MS },
    ours: { tcp, udp },
    nodeZklib: zklib,
    unchangedTerminal: idle,
    realtime: { ...rt, targetP99Ms: 300 },
    manyTerminals: { ...many, targetRssMb: 200, targetIdleCpuPercent: 3 },
    hostileNeighbours: {
      healthy: HEALTHY,
      hostile: HOSTILE_KINDS.map((k) => k.name),
      alone: calm,
      beside: stormy,
      p99Ratio: latencyRatio,
      targetRssMb: 200,
      targetP99Ratio: 1.5,
    },
  };
  const pass = (ok: boolean) => (ok ? "PASS" : "FAIL");
  const rows: Array<[string, string, string]> = [
    [
      "read, TCP",
      `${tcp.recordsPerSec.toLocaleString()} rec/s, ${tcp.roundTrips} round trips, ${tcp.wireBytesPerRecord} B/rec`,
      `${tcp.vsLinkLimit}× link limit (${tcp.linkLimitSeconds} s; target ≤ 1.25) ${pass(tcp.vsLinkLimit <= 1.25)}`,
    ],
    [
      "read, UDP",
      `${udp.recordsPerSec.toLocaleString()} rec/s, ${udp.roundTrips} round trips, ${udp.wireBytesPerRecord} B/rec`,
      `${udp.vsLinkLimit}× link limit (${udp.linkLimitSeconds} s; target ≤ 1.25) ${pass(udp.vsLinkLimit <= 1.25)}`,
    ],
    [
      "node-zklib, TCP",
      `${zklib.recordsPerSec.toLocaleString()} rec/s on ${zklib.largestCorrect.toLocaleString()} records`,
      `ours ≥ it ${pass(Math.min(tcp.recordsPerSec, udp.recordsPerSec) >= zklib.recordsPerSec)}`,
    ],
    [
      "unchanged terminal, per poll",
      `${idle.roundTripsPerPoll} round trip, ${idle.bytesPerPoll} B`,
      `vs ${idle.fullReadBytes.toLocaleString()} B for a log read ${pass(idle.roundTripsPerPoll <= 1)}`,
    ],
    ["real-time event → cloud", `p99 ${rt.p99Ms} ms (p50 ${rt.p50Ms})`, `target < 300 ms ${pass(rt.p99Ms < 300)}`],
    [
      `${many.terminals} terminals, one connector`,
      `peak RSS ${many.peakRssMb} MB, idle CPU ${many.idleCpuPercent}%`,
      `targets < 200 MB, < 3% ${pass(many.peakRssMb < 200 && many.idleCpuPercent < 3)}`,
    ],
    [
      `${HEALTHY} terminals beside ${HOSTILE_KINDS.length} hostile`,
      `poll p99 ${stormy.p99Ms} ms vs ${calm.p99Ms} ms alone (${latencyRatio}×), peak RSS ${stormy.peakRssMb} MB`,
      `targets ≤ 1.5×, < 200 MB ${pass(latencyRatio <= 1.5 && stormy.peakRssMb < 200)}`,
    ],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write(
    `\n${rows.map(([a, b, c]) => `${a.padEnd(width)}  ${b.padEnd(valueWidth)}  ${c}`).join("\n")}\n\n`,
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
