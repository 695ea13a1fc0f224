import { chmod, readFile, rm } from "node:fs/promises";
import { ConfigChannel } from "../config/config-channel.ts";
import { type ConnectorConfig, connectorConfigSchema, type SourceConfig } from "../config/config-schema.ts";
import { sleep } from "../core/abort.ts";
import { atomicWrite } from "../core/atomic-write.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { BioError, isDiskFullError } from "../core/errors.ts";
import type { Logger, Redactor } from "../core/logger.ts";
import { Notifier } from "../core/notifier.ts";
import { spawnTask, type TaskHandle } from "../core/task.ts";
import { VERSION } from "../core/version.ts";
import { CloudClient } from "../link/cloud-client.ts";
import { Connectivity } from "../link/connectivity.ts";
import { deriveNodeKeys } from "../link/node-keys.ts";
import { loadEnrollment } from "../secrets/enrollment.ts";
import type { SecretStore } from "../secrets/secret-store.ts";
import { Shipper } from "../shipper/shipper.ts";
import { CamsCloudSink } from "../sinks/cams-cloud/cams-cloud-sink.ts";
import { DatabaseSource } from "../sources/database/database-source.ts";
import { openSqlClient } from "../sources/database/open-client.ts";
import type { Source } from "../sources/source.ts";
import { ZkSource } from "../sources/zk/zk-source.ts";
import { attention, type SourceLimits } from "../status/attention.ts";
import { HealthChannel, healthChannelPath, writeHealthRecord } from "../status/health-channel.ts";
import { ConnectorMetrics } from "../status/metrics.ts";
import type { ConnectorStatus, StatusEndpointFile } from "../status/status-api.ts";
import { newStatusToken, StatusServer } from "../status/status-server.ts";
import { DiskSpace } from "../store/disk-space.ts";
import { InstanceLock } from "../store/instance-lock.ts";
import { Store } from "../store/store.ts";
import { type ActivityGate, Supervisor } from "../supervisor/supervisor.ts";
import { type DataDirLayout, ensureDataDir } from "./data-dir.ts";

export interface ConnectorOptions {
  readonly dataDir: string;
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly redactor: Redactor;
  readonly clock?: Clock;
  readonly statusHost?: string;
  /** 0: the OS picks a free port; the URL is written to `<dataDir>/status.json`. */
  readonly statusPort?: number;
  /** Windows service: narrows the health pipe's access list once it exists (see HealthChannelOptions.restrict). */
  readonly restrictHealthChannel?: (path: string) => Promise<void>;
}

/** Delivered ids are remembered this long, which bounds every source's lookback window. */
const DELIVERED_RETENTION_MS = 7 * 24 * 3600_000;
const DEFAULT_CONFIG: ConnectorConfig = connectorConfigSchema.parse({ schemaVersion: 1, sources: [] });

interface LiveConfig {
  config: ConnectorConfig;
  onApply: (config: ConnectorConfig) => void;
}

/**
 * Makes the sources of one connector. The supervisor makes a new source for every start of a worker; what a source
 * should say once per connector (a password sent without TLS) is remembered here, across those starts.
 */
export function sourceFactory(): (config: SourceConfig) => Source {
  const warned = new Set<string>();
  return (config) => {
    switch (config.kind) {
      case "database":
        return new DatabaseSource({ config, connect: openSqlClient, warned });
      case "zk":
        return new ZkSource(config);
    }
  };
}

/**
 * The composition root: store, cloud link, config channel, connectivity, supervisor, shipper and status endpoint,
 * started in order and stopped in reverse within a bound.
 */
export class Connector {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #redactor: Redactor;
  readonly #controller = new AbortController();
  readonly #tasks: TaskHandle[] = [];
  readonly #supervisor: Supervisor;
  readonly #connectivity: Connectivity;
  readonly #channel: ConfigChannel;
  readonly #shipper: Shipper;
  readonly #clock: Clock;
  readonly #nodeId: string;
  readonly #startedAt: number;
  readonly #statusFile: string;
  #statusServer: StatusServer | undefined;
  #health: HealthChannel | undefined;
  readonly #live: LiveConfig;
  readonly #heartbeatWake = new Notifier();
  readonly #metrics: ConnectorMetrics;
  readonly #lock: InstanceLock;
  readonly #deliveredBySource: Map<string, number>;
  readonly #space: DiskSpace;
  #applying: Promise<void> = Promise.resolve();
  #stopped = false;

  private constructor(args: {
    store: Store;
    logger: Logger;
    redactor: Redactor;
    supervisor: Supervisor;
    connectivity: Connectivity;
    channel: ConfigChannel;
    shipper: Shipper;
    clock: Clock;
    nodeId: string;
    statusFile: string;
    live: LiveConfig;
    metrics: ConnectorMetrics;
    lock: InstanceLock;
    deliveredBySource: Map<string, number>;
    space: DiskSpace;
  }) {
    this.#space = args.space;
    this.#metrics = args.metrics;
    this.#lock = args.lock;
    this.#deliveredBySource = args.deliveredBySource;
    this.#store = args.store;
    this.#logger = args.logger;
    this.#redactor = args.redactor;
    this.#supervisor = args.supervisor;
    this.#connectivity = args.connectivity;
    this.#channel = args.channel;
    this.#shipper = args.shipper;
    this.#clock = args.clock;
    this.#nodeId = args.nodeId;
    this.#startedAt = args.clock.now();
    this.#statusFile = args.statusFile;
    this.#live = args.live;
    this.#live.onApply = (config) => this.#apply(config);
  }

  static async start(options: ConnectorOptions): Promise<Connector> {
    const layout = ensureDataDir(options.dataDir);
    const space = new DiskSpace({
      dir: layout.root,
      clock: options.clock ?? systemClock,
      logger: options.logger.child("disk"),
    });
    // A start on a full disk ends in one line that says so, before anything is written or logged.
    const refused = space.tryWrite();
    if (isDiskFullError(refused)) throw space.startError(refused);
    try {
      // Before anything in the directory is read or written: a second connector must leave the first one's store,
      // status.json and health channel alone.
      const lock = InstanceLock.acquire(layout.root, "run");
      try {
        return await Connector.#start(options, layout, lock, space);
      } catch (error) {
        lock.release();
        throw error;
      }
    } catch (error) {
      // The disk filled between the probe and a write of the start (status.json, the store, the lock's label).
      throw isDiskFullError(error) ? space.startError(error) : error;
    }
  }

  static async #start(
    options: ConnectorOptions,
    layout: DataDirLayout,
    lock: InstanceLock,
    space: DiskSpace,
  ): Promise<Connector> {
    const clock = options.clock ?? systemClock;
    const logger = options.logger;
    const enrollment = await loadEnrollment(options.secrets);
    options.redactor.add(enrollment.nodeSecret);
    const keys = deriveNodeKeys(enrollment.nodeSecret);
    const store = Store.open(layout.store, { clock, space });
    const client = new CloudClient({ baseUrl: enrollment.cloudUrl, nodeId: enrollment.nodeId, keys, clock });
    const outboxChanged = new Notifier();
    const metrics = new ConnectorMetrics({ now: () => clock.now() });
    const deliveredBySource = new Map<string, number>();

    // Shared with the connector: the getters below always read whichever config is current.
    const live: LiveConfig = { config: DEFAULT_CONFIG, onApply: () => undefined };
    const config = () => live.config;
    const connectivity = new Connectivity({
      client,
      clock,
      logger: logger.child("connectivity"),
      config: () => config().connectivity,
    });
    const gate: ActivityGate = {
      blockedBy: () => {
        // Nothing read could be committed; what is not read stays safe in the device or database.
        if (space.isFull) return "paused";
        const { connectivity: c, outbox } = config();
        if (!connectivity.isOnline && c.policy === "pause") return "paused";
        return store.depth >= (connectivity.isOnline ? outbox.highWater : outbox.maxDepth) ? "throttled" : null;
      },
      waitOpen: async (signal) => {
        // Depth falls with every acknowledgement, so a short re-check beats wiring another notifier.
        while (gate.blockedBy()) await connectivity.waitChange(50, signal);
      },
    };
    const supervisor = new Supervisor({
      store,
      clock,
      logger: logger.child("supervisor"),
      gate,
      createSource: sourceFactory(),
      outboxChanged,
      metrics,
    });
    const sink = new CamsCloudSink({
      client,
      clock,
      timeoutMs: () => config().shipper.requestTimeoutMs,
      gzip: () => config().shipper.gzip,
    });
    const shipper = new Shipper({
      store,
      space,
      sink,
      connectivity,
      clock,
      logger: logger.child("shipper"),
      config: () => config().shipper,
      wake: outboxChanged,
      onSettled: (delivered, rejected) => {
        for (const [id, n] of delivered) deliveredBySource.set(id, (deliveredBySource.get(id) ?? 0) + n);
        metrics.delivered(delivered);
        metrics.rejected(rejected);
      },
    });
    const channel = new ConfigChannel({
      client,
      keys,
      store,
      clock,
      logger: logger.child("config"),
      onApply: (applied) => {
        // Database passwords arrive inside the config: from now on no log line may carry one.
        for (const source of applied.config.sources) {
          if (source.kind === "database" && "password" in source.connection)
            options.redactor.add(source.connection.password);
        }
        live.onApply(applied.config);
      },
      onUnreachable: (error) => connectivity.reportFailure(error),
    });
    const connector = new Connector({
      store,
      logger,
      redactor: options.redactor,
      supervisor,
      connectivity,
      channel,
      shipper,
      clock,
      nodeId: enrollment.nodeId,
      statusFile: layout.statusFile,
      live,
      metrics,
      lock,
      deliveredBySource,
      space,
    });
    try {
      await connector.#run(client, options);
    } catch (error) {
      // Not "Connector stopped.": it never started, and the caller reports why.
      await connector.#shutdown(10_000, false);
      throw error;
    }
    return connector;
  }

  async #run(client: CloudClient, options: ConnectorOptions): Promise<void> {
    const signal = this.#controller.signal;
    const logger = this.#logger;
    this.#channel.loadCached();
    // Fetch the config as soon as the cloud is seen, not at the next poll tick.
    this.#connectivity.subscribe((state) => {
      if (state !== "online") return;
      this.#channel.poke();
      this.#heartbeatWake.notify();
    });
    this.#statusServer = await StatusServer.start({
      host: options.statusHost ?? "127.0.0.1",
      port: options.statusPort ?? 0,
      status: () => this.status(),
      logger,
      metrics: this.#metrics,
      token: await statusToken(`${this.#statusFile.replace(/\.json$/, "")}.token`),
    });
    const endpoint: StatusEndpointFile = {
      url: this.#statusServer.url,
      token: this.#statusServer.token,
      pid: process.pid,
      startedAt: new Date(this.#startedAt).toISOString(),
    };
    // Atomic and 0600: a reader never sees half a file, and nothing left at the path lends it a wider mode (the
    // token opens the status API).
    await atomicWrite(this.#statusFile, `${JSON.stringify(endpoint)}\n`);
    // The monitor's private line (unix socket / named pipe): responsive and making progress, or not.
    this.#health = await HealthChannel.start({
      path: healthChannelPath(options.dataDir),
      status: () => this.status(),
      logger,
      ...(options.restrictHealthChannel ? { restrict: options.restrictHealthChannel } : {}),
    });
    // Written once the channel serves: the monitor trusts a channel only when this names the running connector.
    await writeHealthRecord(options.dataDir, {
      path: this.#health.path,
      pid: process.pid,
      startedAt: new Date(this.#startedAt).toISOString(),
    });

    const spawn = (name: string, loop: (s: AbortSignal) => Promise<void>) =>
      this.#tasks.push(spawnTask(name, loop, { logger: logger.child(name), signal }));
    spawn("connectivity", (s) => this.#connectivity.run(s));
    spawn("disk", (s) => this.#space.run(s));
    spawn("config", (s) =>
      this.#channel.run(
        s,
        () =>
          this.#channel.current
            ? this.#live.config.configPollIntervalMs
            : Math.min(5000, this.#live.config.configPollIntervalMs),
        () => this.#connectivity.isOnline,
      ),
    );
    spawn("shipper", (s) => this.#shipper.run(s));
    spawn("heartbeat", (s) => this.#heartbeatLoop(client, s));
    spawn("prune", (s) => this.#pruneLoop(s));
    logger.info("Connector started.", { version: VERSION, nodeId: this.#nodeId, status: this.#statusServer.url });
  }

  #apply(config: ConnectorConfig): void {
    this.#live.config = config;
    this.#connectivity.poke();
    this.#heartbeatWake.notify();
    // Applies are serialised: a second config arriving mid-restart waits for the first to settle.
    this.#applying = this.#applying
      .then(async () => {
        if (this.#stopped) return;
        await this.#supervisor.apply(config.sources);
      })
      .catch((error: unknown) => this.#logger.error("Applying the config failed.", { error }));
  }

  async #heartbeatLoop(client: CloudClient, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.#connectivity.isOnline) {
        const s = this.status();
        const response = await client
          .request({
            method: "POST",
            path: client.nodePath("status"),
            json: heartbeatBody(s),
            timeoutMs: 10_000,
            signal,
          })
          .catch((error: unknown) => {
            if (signal.aborted) throw error;
            this.#logger.debug("Heartbeat failed.", { error });
            return undefined;
          });
        if (response && response.status >= 300) this.#logger.debug("Heartbeat refused.", { status: response.status });
      }
      // Woken early by a new config (its interval may be shorter) and by the cloud coming back.
      await this.#heartbeatWake.wait(this.#live.config.heartbeatIntervalMs, signal);
    }
  }

  async #pruneLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const removed = this.#store.pruneDelivered(DELIVERED_RETENTION_MS);
        if (removed > 0) this.#logger.debug("Pruned delivered ids past retention.", { removed });
      } catch (error) {
        // A full disk is the disk task's to report; pruning waits for the next hour like everything else waits.
        if (!isDiskFullError(error)) throw error;
      }
      await sleep(3600_000, signal);
    }
  }

  get statusUrl(): string {
    if (!this.#statusServer) throw new BioError("USAGE", "The connector is not running.");
    return this.#statusServer.url;
  }

  get supervisor(): Supervisor {
    return this.#supervisor;
  }

  status(): ConnectorStatus {
    const now = this.#clock.now();
    const base = this.#baseStatus(now);
    const limits = new Map<string, SourceLimits>(
      this.#live.config.sources.map((c) => [
        c.id,
        {
          pollIntervalMs: c.pollIntervalMs,
          maxClockDriftMs: c.kind === "zk" ? c.maxClockDriftMs : undefined,
          timezone: c.timezone,
        },
      ]),
    );
    return { ...base, attention: attention(base, limits, now) };
  }

  #baseStatus(now: number): Omit<ConnectorStatus, "attention"> {
    const outbox = this.#store.outboxStats();
    const mem = process.memoryUsage();
    // Status goes to the page, the heartbeat and the cloud: error texts pass the redactor like log lines do, whatever
    // produced them.
    const scrub = (text: string) => this.#redactor.scrub(text);
    const scrubError = <E extends { message: string } | null>(e: E): E => (e ? { ...e, message: scrub(e.message) } : e);
    const config = this.#channel.status();
    const shipper = this.#shipper.status();
    const mb = (n: number) => Math.round(n / 1048576);
    return {
      version: VERSION,
      nodeId: this.#nodeId,
      pid: process.pid,
      startedAt: new Date(this.#startedAt).toISOString(),
      memory: { rssMb: mb(mem.rss), heapUsedMb: mb(mem.heapUsed), externalMb: mb(mem.external) },
      connectivity: {
        state: this.#connectivity.state,
        policy: this.#live.config.connectivity.policy,
        history: this.#connectivity.history().map((c) => ({ ...c, reason: scrub(c.reason) })),
      },
      config: { ...config, lastError: scrubError(config.lastError) },
      outbox: {
        depth: outbox.depth,
        oldestUnsentAgeMs:
          outbox.oldestEnqueuedAt === null ? null : Math.max(0, this.#clock.now() - outbox.oldestEnqueuedAt),
        quarantined: this.#store.quarantineCount(),
      },
      shipper: { ...shipper, lastError: scrubError(shipper.lastError) },
      disk: this.#space.status(),
      sources: this.#supervisor.status().map((w) => ({
        ...w,
        lastError: scrubError(w.lastError),
        delivered: this.#deliveredBySource.get(w.sourceId) ?? 0,
        lagMs: w.lastPollAt ? Math.max(0, now - Date.parse(w.lastPollAt)) : null,
      })),
      throughput: this.#metrics.perMinute(),
    };
  }

  /**
   * Graceful stop within `boundMs`: sources stop (an emit in progress commits first: it is one synchronous
   * transaction), background loops end, the status endpoint closes, the store closes last.
   */
  async stop(boundMs = 10_000): Promise<void> {
    await this.#shutdown(boundMs, true);
  }

  async #shutdown(boundMs: number, log: boolean): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const deadline = this.#clock.now() + boundMs;
    const clean = await this.#supervisor.stop(boundMs);
    this.#controller.abort(new DOMException("connector stopping", "AbortError"));
    const rest = Math.max(100, deadline - this.#clock.now());
    const all = Promise.all(this.#tasks.map((t) => t.done));
    await Promise.race([all, sleep(rest).catch(() => undefined)]);
    // An apply waiting on a worker that ignores its abort must not hold the stop past its bound.
    await Promise.race([this.#applying, sleep(Math.max(100, deadline - this.#clock.now())).catch(() => undefined)]);
    await this.#statusServer?.close();
    await this.#health?.close();
    await removeIfOurs(this.#statusFile);
    this.#store.close();
    this.#lock.release();
    if (log) this.#logger.info("Connector stopped.", { clean });
  }
}

/** status.json belongs to the process that wrote it: never delete another process's endpoint. */
async function removeIfOurs(statusFile: string): Promise<void> {
  const text = await readFile(statusFile, "utf8").catch(() => undefined);
  if (text === undefined) return;
  try {
    if ((JSON.parse(text) as Partial<StatusEndpointFile>).pid !== process.pid) return;
  } catch {
    // Unreadable: not a file anyone can use, so nobody loses anything by its removal.
  }
  await rm(statusFile, { force: true });
}

/**
 * The status token survives restarts, so a Prometheus scrape configured with `credentials_file` pointing at this
 * file keeps working; delete the file to rotate it. 0600, like every file in the data directory.
 */
async function statusToken(path: string): Promise<string> {
  try {
    const existing = (await readFile(path, "utf8")).trim();
    if (/^[A-Za-z0-9_-]{43}$/.test(existing)) {
      await chmod(path, 0o600);
      return existing;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = newStatusToken();
  await atomicWrite(path, `${token}\n`);
  return token;
}

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
    disk: { state: s.disk.state, since: s.disk.since, freeBytes: s.disk.freeBytes },
    attention: s.attention.map((a) => ({ severity: a.severity, subject: a.subject, message: a.message })),
  };
}
