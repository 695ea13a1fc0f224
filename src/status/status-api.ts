import type { ConfigChannelStatus } from "../config/config-channel.ts";
import type { ShipperStatus } from "../shipper/shipper.ts";
import type { ConnectivityChange, ConnectivityState } from "../supervisor/connectivity.ts";
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
  readonly shipper: ShipperStatus;
  readonly sources: readonly WorkerStatus[];
}

/** Where a running connector says its status endpoint is: `<dataDir>/status.json`. */
export interface StatusEndpointFile {
  readonly url: string;
  readonly pid: number;
  readonly startedAt: string;
}
