import type { Logger } from "../core/logger.ts";
import { koffiScm } from "../platform/windows/koffi-scm.ts";
import { hostWindowsService } from "../service/windows/service-host.ts";
import { MONITOR_SERVICE } from "../service/windows/service-names.ts";
import type { Monitor } from "./monitor.ts";
import type { ServiceController } from "./service-controller.ts";

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
