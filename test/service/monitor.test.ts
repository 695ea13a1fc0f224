import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { type MonitorRecord, readMonitorRecord } from "../../src/monitor/monitor-state.ts";
import { healthChannelPath, probeHealth } from "../../src/status/health-channel.ts";
import { BIN, ConnectorProcess } from "../helpers/connector-process.ts";
import { e2e } from "../helpers/e2e-harness.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** The monitor's test-sized budgets, measured on this machine in this run rather than guessed. */
interface Budgets {
  /** How long a check may take. */
  readonly probeTimeoutMs: number;
  /** How long a starting connector may stay silent. */
  readonly startGraceMs: number;
}

/**
 * Budgets from a connector started and asked here, now: the time until its health channel first answers, and its
 * slowest answer after that. Guessed budgets held only for the load they were guessed at: a healthy connector on two
 * busy cores took over 400 ms to answer, and over 4 s to start listening, and was restarted as hung.
 */
async function measuredBudgets(dataDir: string): Promise<Budgets> {
  const spawned = performance.now();
  const connector = await ConnectorProcess.started(dataDir);
  try {
    const path = healthChannelPath(dataDir);
    await waitFor("the health channel", () => probeHealth(path, 60_000), 60_000);
    const startupMs = performance.now() - spawned;
    let slowest = 0;
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await probeHealth(path, 60_000);
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }
    return fromMeasured(startupMs, slowest);
  } finally {
    await connector.kill("SIGTERM");
  }
}

/** Budgets for a connector that never answers (not enrolled): only its way to exit 1 is measured. */
async function exitBudgets(dataDir: string): Promise<Budgets> {
  const spawned = performance.now();
  const run = await bioapi(["run", "--data-dir", dataDir]);
  assert.equal(run.code, 1, run.out);
  return fromMeasured(performance.now() - spawned, 0);
}

// Several times what was measured: a restart counted below is the monitor's mistake, not this run's load.
const fromMeasured = (startupMs: number, slowestAnswerMs: number): Budgets => ({
  probeTimeoutMs: Math.max(1500, Math.ceil(10 * slowestAnswerMs)),
  startGraceMs: Math.max(4000, Math.ceil(4 * startupMs)),
});

/** `bioapi monitor --manager process`: the real monitor starting a real connector, with test-sized timings. */
function startMonitor(
  dataDir: string,
  budgets: Budgets,
  extra: readonly string[] = [],
  runExtra: readonly string[] = [],
): { child: ChildProcess; output: string[] } {
  const output: string[] = [];
  const child = spawn(
    process.execPath,
    [
      BIN,
      "monitor",
      "--manager",
      "process",
      "--data-dir",
      dataDir,
      "--interval-ms",
      "150",
      // A SIGSTOPped connector never answers, so a longer wait only slows the hung case.
      "--probe-timeout-ms",
      String(budgets.probeTimeoutMs),
      "--strikes",
      "2",
      "--start-grace-ms",
      String(budgets.startGraceMs),
      "--restart-delay-ms",
      "100",
      "--restart-max-delay-ms",
      "400",
      "--log-format",
      "json",
      ...extra,
      "--",
      "--log-format",
      "json",
      ...runExtra,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (d: Buffer) => output.push(d.toString()));
  child.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
  return { child, output };
}

async function stopMonitor(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

const healthyRecord = (dataDir: string, budgets: Budgets, notPid?: number) => {
  const since = Date.now();
  return waitFor(
    "a healthy connector under the monitor",
    async () => {
      const r = await readMonitorRecord(dataDir);
      return r?.state === "supervising" &&
        r.connectorPid &&
        r.connectorPid !== notPid &&
        r.lastHealthyAt &&
        Date.parse(r.lastHealthyAt) > since
        ? r
        : undefined;
    },
    // A hang is found once the start grace has passed and two probes timed out; then a restart and a start.
    30_000 + 2 * budgets.startGraceMs + 4 * budgets.probeTimeoutMs,
    50,
  );
};

function bioapi(args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("exit", (code) => resolve({ code: code ?? -1, out }));
  });
}

// Its waits scale with the measured budgets; at load 18 it took 230 s of the suite's default 240.
test("the monitor restarts a killed connector and a hung (SIGSTOP) one, and leaves an administrator's stop alone", {
  timeout: 900_000,
}, async (t) => {
  await using h = await e2e();
  const budgets = await measuredBudgets(h.connectorDir);
  t.diagnostic(`budgets: ${JSON.stringify(budgets)}`);
  const logDir = join(h.connectorDir, "logs");
  const { child, output } = startMonitor(h.connectorDir, budgets, [], ["--log-dir", logDir]);
  // Declared after h, so disposed before it: the monitor writes its record into h's directory until it stops, and
  // removing the directory under it failed with ENOTEMPTY.
  await using _monitor = { [Symbol.asyncDispose]: () => stopMonitor(child) };
  try {
    const first = await healthyRecord(h.connectorDir, budgets);
    const pid1 = first.connectorPid as number;

    process.kill(pid1, "SIGKILL");
    const second = await healthyRecord(h.connectorDir, budgets, pid1);
    assert.match(second.actions.at(-1)?.reason ?? "", /exited \(signal SIGKILL\)/);

    const pid2 = second.connectorPid as number;
    process.kill(pid2, "SIGSTOP");
    const third = await healthyRecord(h.connectorDir, budgets, pid2);
    assert.ok(
      third.actions.some((a) => a.action === "kill" && /unresponsive/.test(a.reason)),
      JSON.stringify(third.actions),
    );
    assert.throws(() => process.kill(pid2, 0), "the hung connector was ended");

    const stop = await bioapi(["service", "stop", "--manager", "process", "--data-dir", h.connectorDir]);
    assert.equal(stop.code, 0, stop.out);
    const stopped = await waitFor("stopped-by-admin", async () => {
      const r = await readMonitorRecord(h.connectorDir);
      return r?.state === "stopped-by-admin" ? r : undefined;
    });
    // Several monitor intervals later it is still stopped: no restart behind the administrator's back.
    await new Promise((r) => setTimeout(r, 1200));
    const later = (await readMonitorRecord(h.connectorDir)) as MonitorRecord;
    assert.equal(later.state, "stopped-by-admin");
    assert.equal(later.restartsTotal, stopped.restartsTotal);
    assert.equal(later.restartsTotal, 2);
    // bioapi run --log-dir (what both service definitions pass): three connector runs appended to one file.
    const log = await readFile(join(logDir, "connector.log"), "utf8");
    assert.ok(log.split("\n").filter((l) => l.includes('"level"')).length >= 3, log.slice(0, 500));
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- monitor output ---\n${output.join("").slice(-3000)}`);
  }
});

test("a crash loop: the monitor gives up with a clear status and log line, shown by bioapi status", async (t) => {
  await using dir = await tempDir();
  const dataDir = join(dir.path, "never-enrolled");
  const logDir = join(dir.path, "logs");
  // Within the start grace the connector's exit is what the monitor sees, not a silent health channel.
  const budgets = await exitBudgets(dataDir);
  t.diagnostic(`budgets: ${JSON.stringify(budgets)}`);
  const { child, output } = startMonitor(dataDir, budgets, [
    "--max-restarts",
    "3",
    "--window-ms",
    "60000",
    "--log-dir",
    logDir,
  ]);
  try {
    // Four starts, each about a quarter of the grace on this machine now.
    const record = await waitFor(
      "the monitor to give up",
      async () => {
        const r = await readMonitorRecord(dataDir);
        return r?.state === "gave-up" ? r : undefined;
      },
      30_000 + 2 * budgets.startGraceMs,
    );
    assert.match(
      record.message,
      /gave up after 3 restarts in 1 min; last failure: the connector exited \(exit code 1\)/,
    );
    assert.match(record.message, /bioapi service start/);
    assert.match(record.lastConnectorOutput.join("\n"), /not enrolled/i);
    await waitFor("the log line", () => output.join("").includes("Monitor gave up restarting the connector"));
    // --log-dir (what the Windows service passes): the same line in monitor.log.
    assert.match(await readFile(join(logDir, "monitor.log"), "utf8"), /Monitor gave up restarting the connector/);

    const status = await bioapi(["status", "--data-dir", dataDir]);
    assert.equal(status.code, 1);
    assert.match(status.out, /connector: not running/);
    assert.match(status.out, /monitor \(process, pid \d+\): gave-up — gave up after 3 restarts/);
    assert.match(status.out, /connector.s last output: .*not enrolled/i);
  } finally {
    await stopMonitor(child);
  }
});
