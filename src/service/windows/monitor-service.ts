import type { Logger } from "../../core/logger.ts";
import type { Monitor } from "../../monitor/monitor.ts";
import type { ServiceController } from "../../monitor/service-controller.ts";
import { MONITOR_SERVICE } from "./connector-service.ts";
import { hostWindowsService } from "./service-host.ts";
import { koffiScm } from "./win32.ts";

/** `bioapi monitor --service` on Windows: the monitor loop as the CamsBioApiMonitor service. */
export async function runMonitorUnderScm(options: {
  monitor: Monitor;
  controller: ServiceController;
  logger: Logger;
  abort: AbortController;
}): Promise<number> {
  return hostWindowsService({
    name: MONITOR_SERVICE,
    scm: await koffiScm(),
    logger: options.logger,
    start: async () => {
      const done = options.monitor.run(options.abort.signal);
      return {
        // A monitor loop that died must end the service (exit 1, so recovery restarts it), not leave it RUNNING.
        ended: done.then(
          () => 0,
          () => 1,
        ),
        stop: async () => {
          options.abort.abort(new DOMException("monitor stopping", "AbortError"));
          await done;
          await options.controller.close();
        },
      };
    },
  });
}
