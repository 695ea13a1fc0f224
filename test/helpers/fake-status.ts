import type { ConnectorStatus, SourceStatus } from "../../src/status/status-api.ts";

/** A plausible status snapshot with `n` sources, for tests of the status server, metrics and page. */
export function fakeStatus(n: number, overrides: Partial<ConnectorStatus> = {}): ConnectorStatus {
  const now = Date.now();
  const sources: SourceStatus[] = Array.from({ length: n }, (_, i) => ({
    sourceId: `gate-${i}`,
    kind: i % 2 === 0 ? "zk" : "database",
    state: "running",
    startedAt: new Date(now - 60_000).toISOString(),
    restarts: 0,
    lastPollAt: new Date(now - 1000).toISOString(),
    lastPunchTime: "2026-11-26T09:00:00+05:30",
    emitted: 10,
    duplicates: 0,
    quarantined: 0,
    lastError: null,
    cursor: { [`SN${i}`]: i },
    device: i % 2 === 0 ? { serial: `SN${i}`, address: "10.0.0.1:4370/tcp", records: 10, clockDriftMs: 2000 } : null,
    backlog: i === 0 ? { done: 40, total: 100, ratePerSec: 20, etaSeconds: 3 } : null,
    lateRows: null,
    delivered: 10,
    lagMs: 1000,
  }));
  return {
    version: "0.1.0",
    nodeId: "00000000-0000-4000-8000-000000000001",
    pid: process.pid,
    startedAt: new Date(now - 60_000).toISOString(),
    memory: { rssMb: 60, heapUsedMb: 20, externalMb: 2 },
    connectivity: {
      state: "online",
      policy: "pause",
      history: [{ state: "online", at: new Date(now).toISOString(), reason: "cloud answered" }],
    },
    config: { version: 3, appliedAt: new Date(now).toISOString(), lastFetchAt: null, lastError: null },
    outbox: { depth: 5, oldestUnsentAgeMs: 1200, quarantined: 0 },
    shipper: { delivered: 10 * n, quarantined: 0, lastDeliveryAt: null, lastError: null, retryAt: null, unsaved: 0 },
    sinks: [
      {
        id: "cams-cloud",
        kind: "cams-cloud",
        backlog: 5,
        delivered: 10 * n,
        quarantined: 0,
        lastDeliveryAt: null,
        lastError: null,
        retryAt: null,
        unsaved: 0,
        details: {},
      },
    ],
    disk: { state: "ok", dataDir: "/var/lib/bioapi", volume: "/var/lib", since: null, freeBytes: 1e9 },
    sources,
    throughput: [],
    attention: [],
    ...overrides,
  };
}
