import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { ERROR_CODES } from "../core/errors.ts";
import type { Settled } from "../shipper/deliveries.ts";
import type { WorkerMetrics } from "../supervisor/supervisor.ts";
import type { ConnectorStatus } from "./status-api.ts";

/**
 * Sources that get series of their own. A site has 1–500 sources; past this many, a source's counts go to the
 * series labelled `source="_other"`, so one scrape stays below ~15 series per labelled source however large the
 * config grows. Slots go to sources in the order they are first seen and are freed when a source leaves the config.
 */
export const MAX_LABELLED_SOURCES = 200;
export const OTHER_SOURCES = "_other";

const HISTORY_MINUTES = 60;
const KNOWN_CODES = new Set<string>([...ERROR_CODES, "INTERNAL"]);

/**
 * Prometheus metrics of one connector. Counters move as things happen (reads, emits, deliveries, errors); gauges
 * are set from the status snapshot at scrape time, so they can never disagree with `bioapi status`. No label ever
 * holds a secret: labels are source ids (chosen by the operator in the config), error codes and quarantine stages.
 */
export class ConnectorMetrics implements WorkerMetrics {
  readonly registry = new Registry();
  readonly #slots = new Set<string>();
  readonly #read: Counter<"source">;
  readonly #emitted: Counter<"source">;
  readonly #duplicates: Counter<"source">;
  readonly #quarantined: Counter<"source" | "stage">;
  readonly #delivered: Counter<"source">;
  readonly #errors: Counter<"source" | "code">;
  readonly #pollDuration: Histogram<"source">;
  readonly #lag: Gauge<"source">;
  readonly #backlog: Gauge<"source">;
  readonly #up: Gauge<"source">;
  readonly #drift: Gauge<"source">;
  readonly #outboxDepth: Gauge;
  readonly #outboxAge: Gauge;
  readonly #quarantineRows: Gauge;
  readonly #cloudUp: Gauge;
  readonly #diskFull: Gauge;
  readonly #configVersion: Gauge;
  readonly #sinkDelivered: Counter<"sink">;
  readonly #sinkQuarantined: Counter<"sink">;
  readonly #sinkBacklog: Gauge<"sink">;
  readonly #sinkFailing: Gauge<"sink">;
  readonly #sinks = new Set<string>();
  readonly #info: Gauge<"version">;
  /** Punches read and delivered per minute, newest last, for the status page's chart. */
  readonly #minutes: Array<{ minute: number; read: number; delivered: number }> = [];
  readonly #now: () => number;

  constructor(options: { defaultMetrics?: boolean; now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Gauge<L>({ name, help, labelNames, registers });
    this.#read = counter(
      "bioapi_source_read_total",
      "Records or rows read from the source (punches and unreadable rows).",
      ["source"],
    );
    this.#emitted = counter("bioapi_source_emitted_total", "New punches committed to the outbox.", ["source"]);
    this.#duplicates = counter(
      "bioapi_source_duplicates_total",
      "Punches read again (lookback window, re-read log) and dropped by id.",
      ["source"],
    );
    this.#quarantined = counter(
      "bioapi_source_quarantined_total",
      "Rows set aside: stage=source (could not become a punch) or stage=sink (rejected by the cloud).",
      ["source", "stage"],
    );
    this.#delivered = counter("bioapi_source_delivered_total", "Punches acknowledged by the cloud.", ["source"]);
    this.#errors = counter("bioapi_source_errors_total", "Failed source runs, by error code.", ["source", "code"]);
    this.#pollDuration = new Histogram({
      name: "bioapi_source_poll_duration_seconds",
      help: "Time from the start of a poll to the moment it had read everything new.",
      labelNames: ["source"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    });
    this.#lag = gauge(
      "bioapi_source_lag_seconds",
      "Age of the newest complete poll: how far behind the source the connector may be.",
      ["source"],
    );
    this.#backlog = gauge("bioapi_source_backlog", "Records or rows known to be still unread (0 when caught up).", [
      "source",
    ]);
    this.#up = gauge("bioapi_source_up", "1 when the source's worker is running (or paused by policy), else 0.", [
      "source",
    ]);
    this.#drift = gauge("bioapi_device_clock_drift_seconds", "Terminal clock minus host clock.", ["source"]);
    this.#outboxDepth = gauge("bioapi_outbox_depth", "Punches waiting for the cloud's acknowledgement.", []);
    this.#outboxAge = gauge("bioapi_outbox_oldest_age_seconds", "Age of the oldest unsent punch (0 when empty).", []);
    this.#quarantineRows = gauge("bioapi_quarantine_rows", "Rows held in the local quarantine table.", []);
    this.#cloudUp = gauge("bioapi_cloud_up", "1 when the cloud answers, else 0.", []);
    this.#diskFull = gauge(
      "bioapi_disk_full",
      "1 while the data disk is full (STORE_FULL: sources paused, delivery held), else 0.",
      [],
    );
    this.#configVersion = gauge("bioapi_config_version", "The applied config version (0: none yet).", []);
    this.#info = gauge("bioapi_info", "Always 1; the version is a label.", ["version"]);
    // Sinks are few (at most 32, named by the operator): each gets its own series.
    this.#sinkDelivered = counter("bioapi_sink_delivered_total", "Punches the sink acknowledged.", ["sink"]);
    this.#sinkQuarantined = counter(
      "bioapi_sink_quarantined_total",
      "Punches the sink rejected for good (in quarantine).",
      ["sink"],
    );
    this.#sinkBacklog = gauge("bioapi_sink_backlog", "Punches the sink has still to settle.", ["sink"]);
    this.#sinkFailing = gauge("bioapi_sink_failing", "1 while the sink's last attempt failed, else 0.", ["sink"]);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "bioapi_" });
  }

  /** The label for a source: its own id while slots last, else the shared `_other`. */
  label(sourceId: string): string {
    if (this.#slots.has(sourceId)) return sourceId;
    if (this.#slots.size < MAX_LABELLED_SOURCES) {
      this.#slots.add(sourceId);
      return sourceId;
    }
    return OTHER_SOURCES;
  }

  read(sourceId: string, n: number): void {
    if (n <= 0) return;
    this.#read.inc({ source: this.label(sourceId) }, n);
    this.#bucket().read += n;
  }

  #bucket(): { minute: number; read: number; delivered: number } {
    const minute = Math.floor(this.#now() / 60_000);
    const last = this.#minutes.at(-1);
    if (last && last.minute === minute) return last;
    const fresh = { minute, read: 0, delivered: 0 };
    this.#minutes.push(fresh);
    while (this.#minutes.length > HISTORY_MINUTES) this.#minutes.shift();
    return fresh;
  }

  /** The last hour, one point per minute (zeros where nothing happened), oldest first. */
  perMinute(): Array<{ at: string; read: number; delivered: number }> {
    const now = Math.floor(this.#now() / 60_000);
    const byMinute = new Map(this.#minutes.map((m) => [m.minute, m]));
    const out: Array<{ at: string; read: number; delivered: number }> = [];
    for (let m = now - HISTORY_MINUTES + 1; m <= now; m++) {
      const b = byMinute.get(m);
      out.push({ at: new Date(m * 60_000).toISOString(), read: b?.read ?? 0, delivered: b?.delivered ?? 0 });
    }
    return out;
  }

  emitted(sourceId: string, enqueued: number, duplicates: number, quarantined: number): void {
    const source = this.label(sourceId);
    if (enqueued > 0) this.#emitted.inc({ source }, enqueued);
    if (duplicates > 0) this.#duplicates.inc({ source }, duplicates);
    if (quarantined > 0) this.#quarantined.inc({ source, stage: "source" }, quarantined);
  }

  delivered(bySource: ReadonlyMap<string, number>): void {
    for (const [id, n] of bySource) {
      this.#delivered.inc({ source: this.label(id) }, n);
      this.#bucket().delivered += n;
    }
  }

  /** What one sink settled; the first sink's answers are also what the sources' series count. */
  settled(s: Settled): void {
    let d = 0;
    let r = 0;
    for (const n of s.delivered.values()) d += n;
    for (const n of s.rejected.values()) r += n;
    if (d > 0) this.#sinkDelivered.inc({ sink: s.sinkId }, d);
    if (r > 0) this.#sinkQuarantined.inc({ sink: s.sinkId }, r);
    if (!s.first) return;
    this.delivered(s.delivered);
    this.rejected(s.rejected);
  }

  rejected(bySource: ReadonlyMap<string, number>): void {
    for (const [id, n] of bySource) this.#quarantined.inc({ source: this.label(id), stage: "sink" }, n);
  }

  error(sourceId: string, code: string): void {
    this.#errors.inc({ source: this.label(sourceId), code: KNOWN_CODES.has(code) ? code : "INTERNAL" });
  }

  pollDuration(sourceId: string, seconds: number): void {
    if (seconds >= 0) this.#pollDuration.observe({ source: this.label(sourceId) }, seconds);
  }

  /** Sets every gauge from one status snapshot and drops the series of sources no longer configured. */
  update(s: ConnectorStatus, nowMs: number): void {
    this.#info.reset();
    this.#info.set({ version: s.version }, 1);
    this.#outboxDepth.set(s.outbox.depth);
    this.#outboxAge.set((s.outbox.oldestUnsentAgeMs ?? 0) / 1000);
    this.#quarantineRows.set(s.outbox.quarantined);
    this.#cloudUp.set(s.connectivity.state === "online" ? 1 : 0);
    this.#diskFull.set(s.disk.state === "full" ? 1 : 0);
    this.#configVersion.set(s.config.version ?? 0);
    const sinks = new Set(s.sinks.map((k) => k.id));
    for (const id of [...this.#sinks]) {
      if (sinks.has(id)) continue;
      this.#sinks.delete(id);
      for (const metric of [this.#sinkDelivered, this.#sinkQuarantined, this.#sinkBacklog, this.#sinkFailing])
        metric.remove({ sink: id });
    }
    for (const k of s.sinks) {
      this.#sinks.add(k.id);
      this.#sinkBacklog.set({ sink: k.id }, k.backlog);
      this.#sinkFailing.set({ sink: k.id }, k.lastError ? 1 : 0);
    }
    const live = new Set(s.sources.map((w) => w.sourceId));
    for (const id of [...this.#slots]) {
      if (live.has(id)) continue;
      this.#slots.delete(id);
      for (const metric of [this.#read, this.#emitted, this.#duplicates, this.#delivered, this.#pollDuration])
        metric.remove({ source: id });
      for (const g of [this.#lag, this.#backlog, this.#up, this.#drift]) g.remove({ source: id });
      for (const stage of ["source", "sink"]) this.#quarantined.remove({ source: id, stage });
      for (const code of KNOWN_CODES) this.#errors.remove({ source: id, code });
    }
    // Gauges of sources beyond the slots would overwrite each other under `_other`: those report sums and maxima.
    const other = { lag: 0, backlog: 0, up: 0, drift: 0, any: false };
    for (const w of s.sources) {
      const lag = w.lastPollAt ? Math.max(0, nowMs - Date.parse(w.lastPollAt)) / 1000 : 0;
      const backlog = w.backlog ? w.backlog.total - w.backlog.done : 0;
      const up = w.state === "running" || w.state === "paused" || w.state === "throttled" ? 1 : 0;
      const drift = (w.device?.clockDriftMs ?? 0) / 1000;
      const source = this.label(w.sourceId);
      if (source === OTHER_SOURCES) {
        other.any = true;
        other.lag = Math.max(other.lag, lag);
        other.backlog += backlog;
        other.up += up;
        if (Math.abs(drift) > Math.abs(other.drift)) other.drift = drift;
        continue;
      }
      this.#lag.set({ source }, lag);
      this.#backlog.set({ source }, backlog);
      this.#up.set({ source }, up);
      if (w.device?.clockDriftMs !== undefined) this.#drift.set({ source }, drift);
    }
    if (other.any) {
      this.#lag.set({ source: OTHER_SOURCES }, other.lag);
      this.#backlog.set({ source: OTHER_SOURCES }, other.backlog);
      this.#up.set({ source: OTHER_SOURCES }, other.up);
      this.#drift.set({ source: OTHER_SOURCES }, other.drift);
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
