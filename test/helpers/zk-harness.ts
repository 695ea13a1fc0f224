import { ZkSimulator as Sim, type ZkSimulator, type ZkSimulatorOptions } from "../../sim/zk/zk-simulator.ts";
import { type SourceConfig, sourceSchema } from "../../src/config/config-schema.ts";
import { punchId } from "../../src/core/punch.ts";
import type { sourceHarness } from "./run-source.ts";
import { waitFor } from "./wait-for.ts";

/** Starts a simulated terminal; disposing it closes it. */
export async function terminal(options: ZkSimulatorOptions = {}): Promise<ZkSimulator & AsyncDisposable> {
  const sim = await Sim.start({ timeZone: "Asia/Kolkata", ...options });
  return Object.assign(sim, { [Symbol.asyncDispose]: () => sim.close() });
}

/**
 * A zk source pointed at a simulator, with intervals short enough for tests. Every field is a real config field.
 * The timeouts are long: a test about a timeout sets its own. In the others a chunk that a busy machine answered
 * after a short one would restart the session, and several count what that adds (a second log read, a reconnect).
 */
export function zkSourceFor(sim: ZkSimulator, overrides: Record<string, unknown> = {}): SourceConfig {
  return sourceSchema.parse({
    id: "gate",
    kind: "zk",
    host: sim.host,
    port: sim.port,
    pollIntervalMs: 200,
    requestTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
    timezone: "Asia/Kolkata",
    ...overrides,
  });
}

/** The punch ids the terminal's log should produce, computed from the simulator's own view of its records. */
export function expectedIds(sim: ZkSimulator, from = 0): string[] {
  return sim.records(from).map((r) => punchId(sim.serial, r.userId, r.time.replace(" ", "T"), r.state));
}

type Harness = ReturnType<typeof sourceHarness>;

export function outboxIds(h: Harness): string[] {
  return h.store.peek(10_000_000).map((e) => e.id);
}

/** Waits until the outbox holds exactly the expected ids (and fails on any stray one). */
export async function collected(h: Harness, expected: readonly string[], timeoutMs = 30_000): Promise<void> {
  const want = new Set(expected);
  await waitFor(`${want.size} punches in the outbox`, () => h.store.depth >= want.size, timeoutMs, 50);
  const got = outboxIds(h);
  const have = new Set(got);
  const missing = expected.filter((id) => !have.has(id));
  const stray = got.filter((id) => !want.has(id));
  if (missing.length > 0 || stray.length > 0 || got.length !== want.size) {
    throw new Error(`outbox has ${got.length} ids; missing ${missing.length}, stray ${stray.length}`);
  }
}
