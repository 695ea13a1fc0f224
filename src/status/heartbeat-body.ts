import type { ConnectorStatus } from "./status-api.ts";

/** POST status (docs/protocol.md): versions, per-source state, backlog and outbox. Never a secret or a cursor's raw row. */
export function heartbeatBody(s: ConnectorStatus) {
  return {
    version: s.version,
    versions: { connector: s.version, node: process.versions.node, platform: `${process.platform}-${process.arch}` },
    configVersion: s.config.version,
    startedAt: s.startedAt,
    connectivity: s.connectivity.state,
    sources: s.sources.map((w) => ({
      id: w.sourceId,
      kind: w.kind,
      state: w.state,
      cursor: w.cursor,
      lastError: w.lastError,
      lastPollAt: w.lastPollAt,
      lastPunchTime: w.lastPunchTime,
      lagMs: w.lagMs,
      emitted: w.emitted,
      delivered: w.delivered,
      backlog: w.backlog ? { done: w.backlog.done, total: w.backlog.total, etaSeconds: w.backlog.etaSeconds } : null,
      device: w.device
        ? {
            serial: w.device.serial,
            model: w.device.model ?? null,
            firmware: w.device.firmware ?? null,
            records: w.device.records ?? null,
            clockDriftMs: w.device.clockDriftMs ?? null,
          }
        : null,
    })),
    outbox: {
      depth: s.outbox.depth,
      oldestAgeMs: s.outbox.oldestUnsentAgeMs,
      quarantined: s.outbox.quarantined,
    },
    sinks: s.sinks.map((k) => ({
      id: k.id,
      kind: k.kind,
      backlog: k.backlog,
      delivered: k.delivered,
      quarantined: k.quarantined,
      lastDeliveryAt: k.lastDeliveryAt,
      lastError: k.lastError,
      retryAt: k.retryAt,
      details: k.details,
    })),
    disk: { state: s.disk.state, since: s.disk.since, freeBytes: s.disk.freeBytes },
    attention: s.attention.map((a) => ({ severity: a.severity, subject: a.subject, message: a.message })),
  };
}
