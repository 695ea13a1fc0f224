import { describeError } from "../core/errors.ts";
import type { Logger, Redactor } from "../core/logger.ts";
import { EVENT_IDS, type EventLog } from "../platform/event-log.ts";
import { koffiScm } from "../platform/windows/koffi-scm.ts";
import { hostWindowsService } from "../service/windows/service-host.ts";
import { CONNECTOR_SERVICE } from "../service/windows/service-names.ts";
import type { Connector } from "./connector.ts";
import { startReported } from "./start-reported.ts";

/** `bioapi run --service` on Windows: the connector inside the SCM protocol, with its Event Log entries. */
export async function runConnectorUnderScm(options: {
  start: () => Promise<Connector>;
  logger: Logger;
  eventLog: EventLog;
  redactor: Redactor;
  startDeadlineMs?: number;
}): Promise<number> {
  const { logger, eventLog, redactor } = options;
  const code = await hostWindowsService({
    name: CONNECTOR_SERVICE,
    scm: await koffiScm(),
    logger,
    ...(options.startDeadlineMs ? { startDeadlineMs: options.startDeadlineMs } : {}),
    start: async () => {
      const connector = await startReported(options.start, eventLog, redactor);
      let end: (code: number) => void = () => undefined;
      const ended = new Promise<number>((resolve) => {
        end = resolve;
      });
      const fatal = (error: unknown) => {
        logger.error("Unhandled failure; stopping with an error so the SCM's recovery actions restart the service.", {
          error,
        });
        void eventLog.write(
          "error",
          `Cams Bio API connector failed: ${redactor.scrub(describeError(error).message)}`,
          EVENT_IDS.fatal,
        );
        end(70);
      };
      process.on("unhandledRejection", fatal);
      process.on("uncaughtException", fatal);
      return {
        ended,
        stop: async () => {
          await connector.stop(10_000);
          await eventLog.write("info", "Cams Bio API connector stopped.", EVENT_IDS.stopped);
        },
      };
    },
  });
  return code;
}
