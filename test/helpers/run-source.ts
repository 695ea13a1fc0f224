import { join } from "node:path";
import type { SourceConfig } from "../../src/config/config-schema.ts";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import { type Logger, silentLogger } from "../../src/core/logger.ts";
import { Notifier } from "../../src/core/notifier.ts";
import { sourceFactory } from "../../src/sources/source-kinds.ts";
import { Store } from "../../src/store/store.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";

/** A real store and supervisor with the gate open: sources run exactly as in the connector, minus the cloud. */
/** A logger that keeps its warnings, in order, for tests of what a source tells the operator. */
export function warningsLogger(): Logger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  const logger = {
    warnings,
    debug: () => undefined,
    info: () => undefined,
    warn: (m: string) => void warnings.push(m),
    error: () => undefined,
    child: () => logger,
  };
  return logger;
}

export function sourceHarness(dir: string, options: { clock?: Clock; logger?: Logger } = {}) {
  const store = Store.open(join(dir, "connector.db"));
  const supervisor = new Supervisor({
    store,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    gate: { blockedBy: () => null, waitOpen: async () => undefined },
    createSource: sourceFactory(),
    outboxChanged: new Notifier(),
  });
  const userIds = () =>
    store.peek(1_000_000).map((e) => JSON.parse(e.body) as { userId: string; deviceSerial: string; time: string });
  return {
    store,
    supervisor,
    userIds,
    run: (sources: SourceConfig[]) => supervisor.apply(sources),
    async [Symbol.asyncDispose]() {
      await supervisor.stop();
      store.close();
    },
  };
}
