import type { ConfigChannelStatus } from "../config/config-channel.ts";
import type { ConnectivityChange, ConnectivityState } from "../link/connectivity.ts";
import type { SinkStatus } from "../shipper/deliveries.ts";
import type { ShipperStatus } from "../shipper/shipper.ts";
import type { DiskSpaceStatus } from "../store/disk-space.ts";
import type { WorkerStatus } from "../supervisor/supervisor.ts";

/** The one typed contract behind `GET /v1/status`, `bioapi status --json` and the heartbeat. No secrets in it. */
export interface ConnectorStatus {
  readonly version: string;
  readonly nodeId: string;
  readonly pid: number;
  readonly startedAt: string;
  /** Resident set and V8 heap in MiB, for spotting leaks from the status page. */
  readonly memory: { readonly rssMb: number; readonly heapUsedMb: number; readonly externalMb: number };
  readonly connectivity: {
    readonly state: ConnectivityState;
    readonly policy: "pause" | "buffer";
    readonly history: readonly ConnectivityChange[];
  };
  readonly config: ConfigChannelStatus;
  readonly outbox: {
    readonly depth: number;
    readonly oldestUnsentAgeMs: number | null;
    readonly quarantined: number;
  };
  /** The first sink of the config (the Cams cloud when the config names no sinks): what `delivered` counts. */
  readonly shipper: ShipperStatus;
  /** Every sink, in config order, each with its own backlog, errors and retries. */
  readonly sinks: readonly SinkStatus[];
  /** The data disk: `full` (STORE_FULL) pauses the sources and holds delivery until there is room. */
  readonly disk: DiskSpaceStatus;
  readonly sources: readonly SourceStatus[];
  /** Punches read from sources and delivered to the cloud per minute over the last hour, oldest first. */
  readonly throughput: ReadonlyArray<{ readonly at: string; readonly read: number; readonly delivered: number }>;
  /** Whatever needs a person, in words, each with the likely fix; empty when all is well. */
  readonly attention: readonly Attention[];
}

export interface SourceStatus extends WorkerStatus {
  /** Punches of this source the first sink (the Cams cloud by default) acknowledged since the connector started. */
  readonly delivered: number;
  /** Time since the start of the newest complete poll, or null before the first one. */
  readonly lagMs: number | null;
}

export interface Attention {
  readonly severity: "error" | "warning";
  /** "cloud", "config", "outbox", "sink:<id>" or a source id. */
  readonly subject: string;
  readonly message: string;
  readonly fix: string;
}

/** Where a running connector says its status endpoint is: `<dataDir>/status.json`. */
export interface StatusEndpointFile {
  readonly url: string;
  /** Bearer token for the status API, the page and /metrics; the file is 0600 like the data directory. */
  readonly token: string;
  readonly pid: number;
  readonly startedAt: string;
}
