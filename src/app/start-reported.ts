import { describeError } from "../core/errors.ts";
import type { Redactor } from "../core/logger.ts";
import { EVENT_IDS, type EventLog } from "../platform/event-log.ts";
import type { Connector } from "./connector.ts";

/**
 * Starts the connector and says so in the Event Log, where Windows administrators look first: started, or could
 * not start and why (redacted like every log line). The error still reaches the caller.
 */
export async function startReported(
  start: () => Promise<Connector>,
  eventLog: EventLog,
  redactor: Redactor,
): Promise<Connector> {
  const connector = await start().catch(async (error: unknown) => {
    await eventLog.write(
      "error",
      `Cams Bio API connector could not start: ${redactor.scrub(describeError(error).message)}`,
      EVENT_IDS.fatal,
    );
    throw error;
  });
  await eventLog.write("info", "Cams Bio API connector started.", EVENT_IDS.started);
  return connector;
}
