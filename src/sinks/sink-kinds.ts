import type { ShipperConfig } from "../config/config-schema.ts";
import type { Clock } from "../core/clock.ts";
import type { CloudClient } from "../link/cloud-client.ts";
import { CamsCloudSink } from "./cams-cloud/cams-cloud-sink.ts";
import type { Sink } from "./sink.ts";

/** What a sink may use from the connector it runs in. */
export interface SinkContext {
  readonly client: CloudClient;
  readonly clock: Clock;
  readonly shipper: () => ShipperConfig;
}

/** One line per sink kind: a new kind adds its folder, its config schema and its line here. */
const SINK_KINDS = {
  "cams-cloud": (ctx: SinkContext): Sink =>
    new CamsCloudSink({
      client: ctx.client,
      clock: ctx.clock,
      timeoutMs: () => ctx.shipper().requestTimeoutMs,
      gzip: () => ctx.shipper().gzip,
    }),
} as const satisfies Record<string, (ctx: SinkContext) => Sink>;

export type SinkKind = keyof typeof SINK_KINDS;

export function createSink(kind: SinkKind, ctx: SinkContext): Sink {
  return SINK_KINDS[kind](ctx);
}
