import type { SourceConfig } from "../config/config-schema.ts";
import type { Check } from "../core/check.ts";
import type { DeviceStatus } from "./source.ts";

/** What the running connector reports of a source (`bioapi status`), when one runs: what it sees, doctor may not. */
export interface RunningSource {
  readonly state: string;
  readonly lastPollAt: string | null;
  readonly lastError: { readonly code: string; readonly message: string } | null;
  readonly device: DeviceStatus | null;
}

export interface SourceCheckTarget<C extends SourceConfig> {
  readonly config: C;
  readonly running: RunningSource | undefined;
}

/** A source kind's health check: it reads the source as its worker would, and collects nothing. */
export type SourceCheck<C extends SourceConfig> = Check<SourceCheckTarget<C>>;
